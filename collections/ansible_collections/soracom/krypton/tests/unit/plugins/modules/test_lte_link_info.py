# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import email.utils
import http.client
import io
import json
import socket
import time
import urllib.error

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.modules import lte_link_info

UTC = datetime.timezone.utc
LAB_GATEWAY = '10.213.0.1'
PI_ADDRESS = '10.213.0.11'
METADATA_URL = 'http://metadata.soracom.io/v1/subscriber'

# "ip -j addr show dev ppp0" in the lab, where ppp0 is a veth: no POINTOPOINT flag.
VETH_PPP0 = [{
    'ifindex': 2, 'ifname': 'ppp0', 'flags': ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], 'mtu': 1500,
    'operstate': 'UP', 'link_type': 'ether',
    'addr_info': [{'family': 'inet', 'local': PI_ADDRESS, 'address': LAB_GATEWAY, 'prefixlen': 32, 'scope': 'global'}],
}]
# A real PPP link as pppd sets it up.
REAL_PPP0 = [{
    'ifindex': 5, 'ifname': 'ppp0', 'flags': ['POINTOPOINT', 'MULTICAST', 'NOARP', 'UP', 'LOWER_UP'],
    'operstate': 'UNKNOWN', 'link_type': 'ppp',
    'addr_info': [{'family': 'inet', 'local': '10.160.1.2', 'address': '10.64.64.64', 'prefixlen': 32}],
}]
DOWN_PPP0 = [{'ifindex': 2, 'ifname': 'ppp0', 'flags': ['BROADCAST', 'MULTICAST'], 'operstate': 'DOWN',
              'addr_info': []}]

SUBSCRIBER = {
    'imsi': '440103000000001', 'simId': '8981100000000000001', 'iccid': '8981100000000000001',
    'groupId': 'group-1', 'operatorId': 'OP0099000001', 'ipAddress': PI_ADDRESS, 'speedClass': 's1.standard',
    'tags': {'name': 'pi01', 'DeviceType': 'RaspberryPi'},
}


class FakeSystem:
    """Returns canned output for the commands that lte_link_info runs, configured per test."""

    def __init__(self):
        self.interfaces = {'ppp0': VETH_PPP0}
        self.routes = {}
        self.default_route = 'ppp0'
        self.timedatectl = (0, 'yes\n', '')
        self.commands = []

    def run_command(self, args, **kwargs):
        self.commands.append(list(args))
        name = args[0].rsplit('/', 1)[-1]
        if name == 'ip':
            if args[2:4] == ['addr', 'show']:
                data = self.interfaces.get(args[5])
                if data is None:
                    return 1, '', 'Device "%s" does not exist.\n' % args[5]
                return 0, json.dumps(data), ''
            if args[2:4] == ['route', 'get']:
                device = self.routes.get(args[4], self.default_route)
                if device is None:
                    return 2, '', 'RTNETLINK answers: Network is unreachable\n'
                return 0, json.dumps([{'dst': args[4], 'dev': device, 'prefsrc': PI_ADDRESS}]), ''
        raise AssertionError('unexpected command %r' % (args,))

    def run_limited(self, args, limit):
        self.commands.append(list(args))
        assert args[0].rsplit('/', 1)[-1] == 'timedatectl', args
        return self.timedatectl[:2]


class FakeMetadata:
    def __init__(self, status=200, body=None, date=None, error=None):
        self.status = status
        self.body = json.dumps(SUBSCRIBER).encode() if body is None else body
        self.date = date
        self.error = error
        self.calls = []

    def __call__(self, url, **kwargs):
        self.calls.append(dict(kwargs, url=url))
        if self.error is not None:
            raise self.error
        headers = http.client.HTTPMessage()
        headers['Date'] = self.date or email.utils.format_datetime(datetime.datetime.now(UTC), usegmt=True)
        if self.status >= 400:
            raise urllib.error.HTTPError(url, self.status, 'Forbidden', headers, io.BytesIO(b'{"code":"x"}'))
        return FakeResponse(self.status, self.body, headers)


class FakeResponse:
    def __init__(self, status, body, headers):
        self.status = status
        self._body = body
        self.headers = headers

    def getcode(self):
        return self.status

    def read(self):
        return self._body

    def close(self):
        pass


def fake_getaddrinfo(table):
    def getaddrinfo(host, port, family=0, socktype=0, *args):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, '', (table[host], 0))]
    return getaddrinfo


@pytest.fixture
def system(monkeypatch):
    fake = FakeSystem()
    monkeypatch.setattr(AnsibleModule, 'run_command', lambda self, args, **kwargs: fake.run_command(args, **kwargs))
    monkeypatch.setattr(AnsibleModule, 'get_bin_path',
                        lambda self, name, required=False, opt_dirs=None: '/usr/bin/%s' % name)
    monkeypatch.setattr(lte_link_info, 'interface_exists', lambda name: name in fake.interfaces)
    monkeypatch.setattr(lte_link_info, 'run_with_time_limit', fake.run_limited)
    monkeypatch.setattr(lte_link_info.socket, 'getaddrinfo', fake_getaddrinfo({
        'krypton.soracom.io': LAB_GATEWAY, 'metadata.soracom.io': LAB_GATEWAY, 'api.soracom.io': '192.0.2.10'}))
    return fake


@pytest.fixture
def metadata(monkeypatch):
    fake = FakeMetadata()
    monkeypatch.setattr(lte_link_info, 'open_url', fake)
    return fake


def run_module(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            lte_link_info.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = excinfo.value.code
    return result


def warning_texts(result):
    texts = []
    for warning in result.get('warnings', []):
        if isinstance(warning, dict):
            warning = warning.get('event', {}).get('msg', '')
        texts.append(warning)
    return texts


def test_ready_on_lab_veth(capsys, system, metadata):
    result = run_module(capsys)
    assert result['rc'] == 0
    assert result['changed'] is False
    assert result['ready'] is True, result['problems']
    assert result['problems'] == []
    link = result['link']
    assert link['interface'] == 'ppp0'
    assert link['exists'] is True
    assert link['up'] is True
    assert link['ipv4_address'] == PI_ADDRESS
    assert link['peer'] == LAB_GATEWAY
    assert 'POINTOPOINT' not in link['flags']
    assert [route['host'] for route in result['routes']] == ['krypton.soracom.io', 'metadata.soracom.io']
    assert all(route['via_link'] for route in result['routes'])
    assert result['routes'][0]['address'] == LAB_GATEWAY


def test_real_ppp_link_is_up(capsys, system, metadata):
    system.interfaces['ppp0'] = REAL_PPP0
    result = run_module(capsys)
    assert result['link']['up'] is True
    assert result['link']['operstate'] == 'UNKNOWN'
    assert result['link']['peer'] == '10.64.64.64'
    assert result['ready'] is True


def test_auto_picks_wwan0(capsys, system, metadata):
    wwan = json.loads(json.dumps(VETH_PPP0))
    wwan[0]['ifname'] = 'wwan0'
    wwan[0]['addr_info'][0].pop('address')
    system.interfaces = {'wwan0': wwan}
    system.default_route = 'wwan0'
    result = run_module(capsys)
    assert result['link']['interface'] == 'wwan0'
    assert result['link']['peer'] is None
    assert result['ready'] is True


def test_no_cellular_interface_is_not_a_failure(capsys, system, metadata):
    system.interfaces = {}
    system.default_route = 'eth0'
    result = run_module(capsys)
    assert result['rc'] == 0
    assert 'failed' not in result
    assert result['ready'] is False
    assert result['link']['interface'] is None
    assert result['link']['exists'] is False
    assert 'Neither ppp0 nor wwan0 exists' in result['problems'][0]


def test_given_interface_missing(capsys, system, metadata):
    result = run_module(capsys, interface='wwan1')
    assert result['ready'] is False
    assert result['link']['interface'] == 'wwan1'
    assert 'Interface wwan1 does not exist' in result['problems'][0]


def test_link_down_reports_problems(capsys, system, metadata):
    system.interfaces['ppp0'] = DOWN_PPP0
    system.default_route = None
    metadata.error = urllib.error.URLError(OSError(101, 'Network is unreachable'))
    result = run_module(capsys)
    assert result['rc'] == 0
    assert result['ready'] is False
    assert result['link']['up'] is False
    text = ' '.join(result['problems'])
    assert 'is down' in text
    assert 'no IPv4 address' in text
    assert 'route lookup failed' in text
    assert result['subscriber'] is None
    assert 'did not respond' in result['metadata_service']['reason']


def test_route_through_other_interface(capsys, system, metadata):
    system.routes[LAB_GATEWAY] = 'eth0'
    result = run_module(capsys, check_hosts=['krypton.soracom.io'])
    assert result['ready'] is False
    assert result['routes'][0]['interface'] == 'eth0'
    assert result['routes'][0]['via_link'] is False
    assert 'routes through eth0, not ppp0' in result['problems'][0]


def test_unresolvable_host(capsys, system, metadata):
    result = run_module(capsys, check_hosts=['unknown.soracom.invalid'])
    assert result['ready'] is False
    assert result['routes'][0]['address'] is None
    assert 'name resolution failed' in result['routes'][0]['error']
    assert 'resolv.conf' in result['problems'][0]


def test_empty_check_hosts(capsys, system, metadata):
    result = run_module(capsys, check_hosts=[])
    assert result['routes'] == []
    assert result['ready'] is True


def test_subscriber_from_metadata(capsys, system, metadata):
    result = run_module(capsys)
    subscriber = result['subscriber']
    assert subscriber['imsi'] == '440103000000001'
    assert subscriber['sim_id'] == '8981100000000000001'
    assert subscriber['group_id'] == 'group-1'
    assert subscriber['tags'] == {'name': 'pi01', 'DeviceType': 'RaspberryPi'}
    assert result['metadata_service']['enabled'] is True
    assert result['metadata_service']['status'] == 200
    assert result['metadata_service']['reason'] is None
    assert metadata.calls[0]['url'] == METADATA_URL
    assert metadata.calls[0]['use_proxy'] is False


def test_metadata_not_enabled_is_not_a_failure(capsys, system, metadata):
    metadata.status = 403
    result = run_module(capsys)
    assert result['rc'] == 0
    assert result['subscriber'] is None
    assert result['metadata_service']['enabled'] is False
    assert result['metadata_service']['status'] == 403
    assert 'not enabled' in result['metadata_service']['reason']
    assert result['ready'] is True
    assert result['clock']['skew_seconds'] is not None


def test_metadata_body_not_json(capsys, system, metadata):
    metadata.body = b'<html></html>'
    result = run_module(capsys)
    assert result['subscriber'] is None
    assert 'not JSON' in result['metadata_service']['reason']


def test_metadata_disabled(capsys, system, metadata):
    system.timedatectl = (0, 'no\n', '')
    result = run_module(capsys, metadata=False)
    assert metadata.calls == []
    assert result['metadata_service']['queried'] is False
    assert result['subscriber'] is None
    assert result['clock']['skew_seconds'] is None
    assert result['clock']['synchronized'] is False
    assert result['ready'] is True
    assert any('not synchronised' in text for text in warning_texts(result))


def test_clock_skew_from_metadata_date(capsys, system, metadata):
    metadata.date = email.utils.format_datetime(datetime.datetime.now(UTC) + datetime.timedelta(hours=1),
                                                usegmt=True)
    result = run_module(capsys)
    clock = result['clock']
    assert -3610 < clock['skew_seconds'] < -3590
    assert clock['skew_source'] == METADATA_URL
    assert result['ready'] is False
    assert 'seconds behind the clock of %s' % METADATA_URL in result['problems'][0]


def test_clock_source_timedatectl(capsys, system, metadata):
    result = run_module(capsys)
    assert result['clock']['synchronized'] is True
    assert result['clock']['sync_source'] == 'timedatectl'
    assert result['clock']['plausible'] is True


def test_clock_fallbacks():
    def failing_run(args, limit):
        return 1, ''

    assert lte_link_info.clock_synchronization(failing_run, '/usr/bin/timedatectl', flag_exists=lambda path: True,
                                               kernel_state=lambda: False) == (True, 'timesyncd', None)
    assert lte_link_info.clock_synchronization(failing_run, None, flag_exists=lambda path: False,
                                               kernel_state=lambda: False) == (False, 'adjtimex', None)
    assert lte_link_info.clock_synchronization(failing_run, None, flag_exists=lambda path: False,
                                               kernel_state=lambda: None) == (None, None, None)


def test_unresponsive_timedatectl_warns(capsys, system, metadata, monkeypatch):
    system.timedatectl = (None, '', '')
    monkeypatch.setattr(lte_link_info, 'kernel_clock_synchronized', lambda: True)
    monkeypatch.setattr(lte_link_info.os.path, 'exists', lambda path: False)
    result = run_module(capsys)
    assert result['clock']['synchronized'] is True
    assert result['clock']['sync_source'] == 'adjtimex'
    assert result['ready'] is True
    assert any('timedatectl did not respond within 3 seconds' in text for text in warning_texts(result))


def test_time_limit_stops_hanging_command(tmp_path):
    hanging = tmp_path / 'timedatectl'
    hanging.write_text('#!/bin/sh\nexec sleep 30\n')
    hanging.chmod(0o755)
    started = time.monotonic()
    assert lte_link_info.run_with_time_limit([str(hanging)], 0.5) == (None, '')
    assert time.monotonic() - started < 5
    assert lte_link_info.run_with_time_limit(['/bin/echo', 'yes'], 5) == (0, 'yes\n')
    assert lte_link_info.run_with_time_limit([str(tmp_path / 'missing')], 5) == (127, '')


def test_kernel_clock_state_is_bool_or_none():
    assert lte_link_info.kernel_clock_synchronized() in (True, False, None)


def test_implausible_clock_is_a_problem(system):
    params = {'interface': 'auto', 'check_hosts': [], 'metadata': False, 'metadata_url': METADATA_URL, 'timeout': 5}
    result, warnings = lte_link_info.gather(params, system.run_command, '/usr/sbin/ip', '/usr/bin/timedatectl',
                                            now=datetime.datetime(2019, 6, 1, tzinfo=UTC))
    assert result['clock']['plausible'] is False
    assert result['ready'] is False
    assert 'before 2025-01-01' in result['problems'][0]


def test_missing_ip_command(system):
    params = {'interface': 'auto', 'check_hosts': ['krypton.soracom.io'], 'metadata': False,
              'metadata_url': METADATA_URL, 'timeout': 5}
    result, warnings = lte_link_info.gather(params, system.run_command, None, None)
    assert result['ready'] is False
    assert any('iproute2' in problem for problem in result['problems'])


def test_resolve_timeout():
    import threading
    release = threading.Event()

    def hanging(*args):
        release.wait(5)
        return []

    try:
        address, error = lte_link_info.resolve_ipv4('slow.example', 0.05, getaddrinfo=hanging)
    finally:
        release.set()
    assert address is None
    assert 'timed out' in error


@pytest.mark.parametrize('args,message', [
    ({'interface': 'ppp0; rm -rf /'}, 'not a valid interface name'),
    ({'interface': 'a' * 16}, 'not a valid interface name'),
    ({'timeout': 0}, 'timeout'),
    ({'check_hosts': ['bad host']}, 'invalid host name'),
    ({'metadata_url': 'file:///etc/passwd'}, 'metadata_url'),
])
def test_invalid_options_fail(capsys, system, metadata, args, message):
    result = run_module(capsys, **args)
    assert result['rc'] == 1
    assert message in result['msg']
    assert system.commands == []
