#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: lte_link_info
short_description: Report the cellular link, routes, clock and SIM identity of a device
version_added: 0.1.0
description:
  - Inspects the cellular interface of a device on SORACOM Air, such as a Raspberry Pi with a USB modem.
  - Reports whether the interface exists, is up and has an IPv4 address.
  - Resolves each host in O(check_hosts) and asks the kernel with C(ip route get) which interface its traffic leaves
    through. SORACOM Krypton identifies the SIM by the cellular session, so its requests must leave through the
    cellular interface.
  - Reports whether the system clock is synchronised and how far it is from the clock of the SORACOM metadata service.
  - Reads the SIM's subscriber record from the SORACOM metadata service when the SIM's group enables it.
  - Never fails because the link is down. It returns RV(ready) and a list of RV(problems) instead, and the play
    decides what to do with them.
author:
  - soracom.krypton contributors (@soracom-krypton)
requirements:
  - C(ip) from iproute2 4.13 or later (for JSON output), present on Raspberry Pi OS and Debian.
extends_documentation_fragment:
  - soracom.krypton.attributes
  - soracom.krypton.attributes.INFO_MODULE
options:
  interface:
    description:
      - Name of the cellular network interface.
      - V(auto) picks the first existing interface of V(ppp0) (a PPP link set up by wvdial or pppd) and V(wwan0)
        (a modem driven by ModemManager or qmi).
    type: str
    default: auto
  check_hosts:
    description:
      - Host names or IPv4 addresses whose route must go through the cellular interface.
      - Each host is resolved to its first IPv4 address before the route lookup.
      - An empty list skips the route check.
    type: list
    elements: str
    default: [krypton.soracom.io, metadata.soracom.io]
  metadata:
    description:
      - Whether to read the SIM's subscriber record from O(metadata_url).
      - The metadata service responds only over the SIM's own session and only when the SIM's group enables it
        (group configuration C(SoracomAir) key C(metadata)).
      - The Date header of its response also measures the clock skew, so V(false) leaves RV(clock.skew_seconds) empty.
    type: bool
    default: true
  metadata_url:
    description:
      - URL of the metadata service's subscriber record.
    type: str
    default: http://metadata.soracom.io/v1/subscriber
  timeout:
    description:
      - Timeout in seconds for each name resolution and for the metadata request.
    type: int
    default: 10
notes:
  - Only IPv4 is checked, because SORACOM Air sessions are IPv4.
  - The module does not require the C(POINTOPOINT) flag on the interface. Some setups, and test labs built on veth
    pairs, show a cellular interface as an Ethernet-like link.
  - A clock difference of more than 300 seconds from the metadata service's Date header, or a system time before
    2025-01-01, is a problem that sets RV(ready) to V(false). An unsynchronised clock alone only adds a warning when
    no skew could be measured.
  - The module waits 3 seconds for C(timedatectl), which itself waits much longer for C(systemd-timedated) when
    that service cannot start. After 3 seconds the module reads the clock state from the next source and warns.
  - The route check reads the kernel's routing decision and sends no traffic to the checked hosts. The metadata
    request is the only traffic the module sends, apart from DNS lookups.
seealso:
  - module: soracom.krypton.krypton_bootstrap
    description: Fetches the device certificate from SORACOM Krypton over the link this module checks.
  - module: soracom.krypton.mqtt_check
    description: Verifies the certificate with an MQTT publish to AWS IoT Core.
  - name: SORACOM Air metadata service
    description: How a SIM reads its own subscriber record, and how a group enables it.
    link: https://users.soracom.io/ja-jp/docs/air/metadata-service/
"""

EXAMPLES = r"""
- name: Check the cellular link before provisioning
  soracom.krypton.lte_link_info:
  register: link

- name: Stop when the device cannot reach SORACOM over the cellular link
  ansible.builtin.assert:
    that: link.ready
    fail_msg: "{{ link.problems | join(' ') }}"

- name: Check a ModemManager device and skip the metadata service
  soracom.krypton.lte_link_info:
    interface: wwan0
    metadata: false
    check_hosts:
      - krypton.soracom.io
      - api.soracom.io
  register: link

- name: Show the SIM's IMSI when the group enables the metadata service
  ansible.builtin.debug:
    msg: "IMSI {{ link.subscriber.imsi }}"
  when: link.subscriber is not none
"""

RETURN = r"""
link:
  description: State of the cellular interface.
  returned: always
  type: dict
  contains:
    interface:
      description: Name of the interface checked. V(null) when O(interface=auto) found none of the candidates.
      type: str
      sample: ppp0
    exists:
      description: Whether the interface exists.
      type: bool
      sample: true
    up:
      description: Whether the interface is administratively up and has a carrier (flags C(UP) and C(LOWER_UP)).
      type: bool
      sample: true
    operstate:
      description: Operational state reported by the kernel. PPP links usually report V(UNKNOWN) while they work.
      type: str
      sample: UNKNOWN
    flags:
      description: Interface flags reported by C(ip).
      type: list
      elements: str
      sample: [POINTOPOINT, MULTICAST, NOARP, UP, LOWER_UP]
    ipv4_address:
      description: First IPv4 address on the interface, without prefix length. V(null) when there is none.
      type: str
      sample: 10.213.0.11
    peer:
      description: IPv4 peer address of a point-to-point address. V(null) when the address has no peer.
      type: str
      sample: 10.64.64.64
routes:
  description: One entry for each host in O(check_hosts), in the same order.
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: Host name or address as given.
      type: str
      sample: krypton.soracom.io
    address:
      description: IPv4 address the host resolved to. V(null) when resolution failed.
      type: str
      sample: 100.127.10.16
    interface:
      description: Interface that the kernel routes the address through. V(null) when there is no route.
      type: str
      sample: ppp0
    gateway:
      description: Next hop of the route. V(null) for a direct route.
      type: str
      sample: null
    via_link:
      description: Whether the route goes through RV(link.interface).
      type: bool
      sample: true
    error:
      description: Why resolution or the route lookup failed. V(null) when both worked.
      type: str
      sample: null
clock:
  description: State of the system clock.
  returned: always
  type: dict
  contains:
    system_time:
      description: System time when the module ran, ISO 8601 in UTC.
      type: str
      sample: '2026-03-01T09:30:12Z'
    synchronized:
      description:
        - Whether the clock is synchronised by NTP. V(null) when no source could tell.
      type: bool
      sample: true
    sync_source:
      description:
        - Where RV(clock.synchronized) comes from. V(timedatectl) (C(NTPSynchronized) property),
          V(timesyncd) (the file C(/run/systemd/timesync/synchronized)) or V(adjtimex) (the kernel's clock state).
        - V(null) when none was available.
      type: str
      sample: timedatectl
    skew_seconds:
      description:
        - System time minus the time in the Date header of the metadata service's response, in seconds.
        - Accurate to about one second plus the request's round trip. V(null) when no response with a Date header
          arrived.
      type: float
      sample: 0.4
    skew_source:
      description: URL whose Date header gave RV(clock.skew_seconds). V(null) when there was none.
      type: str
      sample: http://metadata.soracom.io/v1/subscriber
    plausible:
      description: Whether the system time is on or after 2025-01-01 UTC. A Raspberry Pi without a real-time clock
        boots with an old time until NTP sets it.
      type: bool
      sample: true
metadata_service:
  description: Outcome of the metadata request.
  returned: always
  type: dict
  contains:
    queried:
      description: Whether the module sent the request. V(false) when O(metadata=false).
      type: bool
      sample: true
    url:
      description: URL requested.
      type: str
      sample: http://metadata.soracom.io/v1/subscriber
    status:
      description: HTTP status of the response. V(null) when no response arrived.
      type: int
      sample: 200
    enabled:
      description:
        - V(true) when the service returned the subscriber, V(false) when it responded with a 4xx status
          (the group does not enable it). V(null) when it was not queried or did not respond.
      type: bool
      sample: true
    reason:
      description: Why RV(subscriber) is V(null). V(null) when the subscriber was returned.
      type: str
      sample: null
subscriber:
  description:
    - The SIM's subscriber record from the metadata service, with keys converted to snake_case (tag names keep their
      case).
    - V(null) when the service was not queried, is not enabled for the SIM's group, or did not respond.
      RV(metadata_service.reason) says which.
  returned: always
  type: dict
  sample:
    imsi: '440103000000001'
    sim_id: '8981100000000000001'
    iccid: '8981100000000000001'
    group_id: 0b0a4a9e-7d1c-4b9e-9d7e-2c0f1e2d3c4b
    operator_id: OP0099000001
    ip_address: 10.213.0.11
    speed_class: s1.standard
    status: active
    tags:
      name: pi01
  contains:
    imsi:
      description: IMSI of the SIM.
      type: str
    sim_id:
      description: SIM ID.
      type: str
    group_id:
      description: ID of the SIM's group. V(null) when it has none.
      type: str
ready:
  description:
    - Whether the device is ready for SORACOM Krypton. The interface exists, is up and has an IPv4 address, every
      host in O(check_hosts) resolves and routes through it, the system time is plausible, and the measured clock
      skew (if any) is at most 300 seconds.
  returned: always
  type: bool
  sample: true
problems:
  description: One sentence for each check that failed, saying what is wrong and what to do. Empty when RV(ready) is
    V(true).
  returned: always
  type: list
  elements: str
  sample:
    - krypton.soracom.io (100.127.10.16) routes through eth0, not ppp0. Krypton identifies the SIM only on the
      cellular session, so route the SORACOM addresses through ppp0 or remove the other default route.
"""

import ctypes
import ctypes.util
import datetime
import json
import os
import re
import socket
import subprocess
import threading
import urllib.error
import http.client

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible.module_utils.urls import open_url

from ansible_collections.soracom.krypton.plugins.module_utils._krypton import (
    CLOCK_SKEW_WARNING_SECONDS,
    EARLIEST_PLAUSIBLE_TIME,
    parse_http_date,
)

AUTO_INTERFACES = ('ppp0', 'wwan0')
INTERFACE_NAME = re.compile(r'^[A-Za-z0-9_.:@-]{1,15}$')
SYS_CLASS_NET = '/sys/class/net'
TIMESYNCD_FLAG = '/run/systemd/timesync/synchronized'
# Seconds the module waits for timedatectl before it reads the clock state from the next source.
TIMEDATECTL_TIME_LIMIT = 3


def format_utc(value):
    return value.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace('+00:00', 'Z')


def interface_exists(name):
    return os.path.exists(os.path.join(SYS_CLASS_NET, name))


def pick_interface(requested, exists=None):
    """Return the interface to check: ``requested``, or for ``auto`` the first existing candidate or None."""
    if requested != 'auto':
        return requested
    exists = exists or interface_exists
    for candidate in AUTO_INTERFACES:
        if exists(candidate):
            return candidate
    return None


def run_ip_json(run_command, ip_path, args):
    """Run ``ip -j ARGS`` and return (decoded JSON, error text)."""
    rc, stdout, stderr = run_command([ip_path, '-j'] + list(args), environ_update={'LC_ALL': 'C'})
    if rc != 0:
        return None, (stderr or stdout or 'ip exited with status %d' % rc).strip()
    try:
        return json.loads(stdout or '[]'), None
    except ValueError:
        return None, 'ip printed output that is not JSON (iproute2 older than 4.13?)'


def read_link(interface, run_command, ip_path, exists=None):
    """Return the ``link`` result for ``interface`` (which may be None)."""
    link = {
        'interface': interface,
        'exists': False,
        'up': False,
        'operstate': None,
        'flags': [],
        'ipv4_address': None,
        'peer': None,
    }
    if interface is None or not (exists or interface_exists)(interface):
        return link
    link['exists'] = True

    data, error = run_ip_json(run_command, ip_path, ['addr', 'show', 'dev', interface])
    if error or not data:
        return link
    entry = data[0]
    flags = list(entry.get('flags') or [])
    link['flags'] = flags
    link['operstate'] = entry.get('operstate')
    link['up'] = 'UP' in flags and 'LOWER_UP' in flags
    for address in entry.get('addr_info') or []:
        if address.get('family') == 'inet':
            link['ipv4_address'] = address.get('local')
            # For "inet A peer B/32" iproute2 puts the peer in "address".
            peer = address.get('address')
            link['peer'] = peer if peer and peer != address.get('local') else None
            break
    return link


def resolve_ipv4(host, timeout, getaddrinfo=None):
    """Return (first IPv4 address, error text) for ``host``, giving up after ``timeout`` seconds.

    getaddrinfo cannot be interrupted, so it runs in a daemon thread that is left
    behind when it does not return in time.
    """
    outcome = {}
    getaddrinfo = getaddrinfo or socket.getaddrinfo

    def lookup():
        try:
            infos = getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
            outcome['address'] = infos[0][4][0] if infos else None
        except (socket.gaierror, OSError, UnicodeError) as exc:
            outcome['error'] = str(exc)

    worker = threading.Thread(target=lookup, name='resolve-%s' % host)
    worker.daemon = True
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return None, 'name resolution timed out after %d s' % timeout
    if outcome.get('error'):
        return None, 'name resolution failed: %s' % outcome['error']
    if not outcome.get('address'):
        return None, 'name resolution returned no IPv4 address'
    return outcome['address'], None


def check_route(host, interface, timeout, run_command, ip_path, getaddrinfo=None):
    """Resolve ``host`` and return its ``routes`` entry."""
    entry = {'host': host, 'address': None, 'interface': None, 'gateway': None, 'via_link': False, 'error': None}
    address, error = resolve_ipv4(host, timeout, getaddrinfo)
    if error:
        entry['error'] = error
        return entry
    entry['address'] = address

    data, error = run_ip_json(run_command, ip_path, ['route', 'get', address])
    if error:
        entry['error'] = 'route lookup failed: %s' % error
        return entry
    if not data:
        entry['error'] = 'route lookup returned no route'
        return entry
    entry['interface'] = data[0].get('dev')
    entry['gateway'] = data[0].get('gateway')
    entry['via_link'] = interface is not None and entry['interface'] == interface
    return entry


class _Timex(ctypes.Structure):
    # Leading fields of struct timex from <sys/timex.h>. The padding covers the rest of the
    # structure on every Linux ABI (208 bytes on x86_64), because adjtimex writes all of it.
    _fields_ = [
        ('modes', ctypes.c_uint),
        ('offset', ctypes.c_long),
        ('freq', ctypes.c_long),
        ('maxerror', ctypes.c_long),
        ('esterror', ctypes.c_long),
        ('status', ctypes.c_int),
        ('reserved', ctypes.c_byte * 512),
    ]


_TIME_ERROR = 5
_STA_UNSYNC = 0x0040


def kernel_clock_synchronized():
    """Return the kernel's NTP synchronisation state from adjtimex(2), or None when unavailable.

    A read-only call (modes 0) needs no privileges, but container runtimes such as
    systemd-nspawn block adjtimex with seccomp, and then the state is unknown.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not timex.status & _STA_UNSYNC


def run_with_time_limit(args, limit):
    """Run ``args`` with LC_ALL=C and return (rc, stdout); rc is None when it did not end within ``limit`` seconds.

    timedatectl waits about 25 seconds for systemd-timedated over D-Bus when the service cannot start, so the
    module bounds it instead of using AnsibleModule.run_command, which has no time limit.
    """
    try:
        completed = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=dict(os.environ, LC_ALL='C'), timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return None, ''
    except OSError:
        return 127, ''
    return completed.returncode, completed.stdout.decode('utf-8', 'replace')


def clock_synchronization(run_limited, timedatectl_path, flag_exists=None, kernel_state=None):
    """Return (synchronized, source, note) from timedatectl, timesyncd's flag file or adjtimex, in that order.

    ``note`` is a warning when timedatectl did not respond in time, otherwise None.
    """
    note = None
    if timedatectl_path:
        rc, stdout = run_limited([timedatectl_path, 'show', '-p', 'NTPSynchronized', '--value'],
                                 TIMEDATECTL_TIME_LIMIT)
        value = (stdout or '').strip().lower()
        if rc == 0 and value in ('yes', 'no'):
            return value == 'yes', 'timedatectl', None
        if rc is None:
            note = ('timedatectl did not respond within %d seconds, so systemd-timedated is probably not running. '
                    'The clock state comes from the next source. Check systemctl status systemd-timedated.'
                    % TIMEDATECTL_TIME_LIMIT)
    if (flag_exists or os.path.exists)(TIMESYNCD_FLAG):
        return True, 'timesyncd', note
    state = (kernel_state or kernel_clock_synchronized)()
    if state is not None:
        return state, 'adjtimex', note
    return None, None, note


def query_metadata(url, timeout, opener=None):
    """GET the subscriber record and return a dict with status, subscriber, reason and timing."""
    result = {'status': None, 'subscriber': None, 'enabled': None, 'reason': None,
              'server_date': None, 'received_at': None}
    opener = opener or open_url
    try:
        response = opener(url, method='GET', timeout=timeout, headers={'Accept': 'application/json'},
                          follow_redirects='none', use_proxy=False)
    except urllib.error.HTTPError as exc:
        result['received_at'] = datetime.datetime.now(datetime.timezone.utc)
        result['status'] = exc.code
        result['server_date'] = parse_http_date(exc.headers.get('Date')) if exc.headers else None
        try:
            exc.close()
        except Exception:  # pylint: disable=broad-except
            pass
        if 400 <= exc.code < 500:
            result['enabled'] = False
            result['reason'] = ('The metadata service responded with HTTP %d, so it is not enabled for this SIM\'s group. '
                                'Enable it in the group configuration (SoracomAir, metadata) to read the SIM identity.'
                                % exc.code)
        else:
            result['reason'] = 'The metadata service responded with HTTP %d.' % exc.code
        return result
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, 'reason', None) or exc
        result['reason'] = 'The metadata service did not respond: %s.' % reason
        return result

    result['received_at'] = datetime.datetime.now(datetime.timezone.utc)
    result['status'] = getattr(response, 'status', None) or response.getcode()
    result['server_date'] = parse_http_date(response.headers.get('Date')) if response.headers else None
    try:
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        result['reason'] = 'The metadata service\'s response was cut off (%s).' % exc.__class__.__name__
        return result
    finally:
        response.close()
    try:
        data = json.loads(body.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        result['reason'] = 'The metadata service responded with %d bytes that are not JSON.' % len(body)
        return result
    if not isinstance(data, dict):
        result['reason'] = 'The metadata service responded with JSON that is not an object.'
        return result
    result['enabled'] = True
    result['subscriber'] = camel_dict_to_snake_dict(data, ignore_list=['tags'])
    return result


def link_problems(link):
    if link['interface'] is None:
        return ['Neither %s exists. Start the cellular connection (wvdial or pppd for ppp0, ModemManager for wwan0) '
                'or set interface to the name of the cellular interface.' % ' nor '.join(AUTO_INTERFACES)]
    name = link['interface']
    if not link['exists']:
        return ['Interface %s does not exist. Start the cellular connection or set interface to the name of the '
                'cellular interface.' % name]
    problems = []
    if not link['up']:
        problems.append('Interface %s is down (operstate %s). Check the modem and the SIM, then bring the connection '
                        'up (for example ifup, wvdial or nmcli connection up).' % (name, link['operstate']))
    if not link['ipv4_address']:
        problems.append('Interface %s has no IPv4 address. Check that the modem registered on the network and that '
                        'the APN is soracom.io.' % name)
    return problems


def route_problems(routes, interface):
    problems = []
    for route in routes:
        if route['error']:
            problems.append('%s: %s. Check the DNS servers of the cellular connection in /etc/resolv.conf and the '
                            'routing table.' % (route['host'], route['error']))
        elif not route['via_link']:
            problems.append('%s (%s) routes through %s, not %s. Krypton identifies the SIM only on the cellular '
                            'session, so route the SORACOM addresses through %s or remove the other default route.'
                            % (route['host'], route['address'], route['interface'], interface or 'the cellular '
                               'interface', interface or 'it'))
    return problems


def clock_problems(clock):
    problems = []
    if not clock['plausible']:
        problems.append('The system time %s is before 2025-01-01, so TLS certificate checks will fail. Enable NTP '
                        '(timedatectl set-ntp true) or set the time, then run again.' % clock['system_time'])
    skew = clock['skew_seconds']
    if skew is not None and abs(skew) > CLOCK_SKEW_WARNING_SECONDS:
        problems.append('The system clock is %d seconds %s the clock of %s. Enable NTP (timedatectl set-ntp true) '
                        'and wait for it to synchronise.'
                        % (abs(int(round(skew))), 'ahead of' if skew > 0 else 'behind', clock['skew_source']))
    return problems


def validate_params(params):
    """Return an error message for invalid options, or None."""
    interface = params['interface']
    if interface != 'auto' and not INTERFACE_NAME.match(interface or ''):
        return 'interface %r is not a valid interface name (1 to 15 letters, digits or _.:@-).' % interface
    if params['timeout'] < 1:
        return 'timeout must be at least 1 second, got %d.' % params['timeout']
    for host in params['check_hosts']:
        if not host or any(char.isspace() for char in host):
            return 'check_hosts contains an invalid host name %r.' % host
    if params['metadata'] and not re.match(r'^https?://[^/\s]+', params['metadata_url'] or ''):
        return 'metadata_url must be an http:// or https:// URL, got %r.' % params['metadata_url']
    return None


def gather(params, run_command, ip_path, timedatectl_path, now=None, run_limited=None):
    """Collect the whole result. Returns (result dict, warnings)."""
    warnings = []
    interface = pick_interface(params['interface'])

    if ip_path:
        link = read_link(interface, run_command, ip_path)
        routes = [check_route(host, interface, params['timeout'], run_command, ip_path)
                  for host in params['check_hosts']]
    else:
        link = read_link(None, run_command, ip_path)
        link['interface'] = interface
        link['exists'] = interface is not None and interface_exists(interface)
        routes = [{'host': host, 'address': None, 'interface': None, 'gateway': None, 'via_link': False,
                   'error': 'the ip command (iproute2) is not installed'} for host in params['check_hosts']]

    metadata = {'queried': False, 'url': params['metadata_url'], 'status': None, 'enabled': None,
                'reason': 'Not queried because metadata is false.'}
    subscriber = None
    skew = None
    skew_source = None
    if params['metadata']:
        outcome = query_metadata(params['metadata_url'], params['timeout'])
        metadata.update(queried=True, status=outcome['status'], enabled=outcome['enabled'], reason=outcome['reason'])
        subscriber = outcome['subscriber']
        if outcome['server_date'] is not None:
            skew = round((outcome['received_at'] - outcome['server_date']).total_seconds(), 3)
            skew_source = params['metadata_url']

    synchronized, source, note = clock_synchronization(run_limited or run_with_time_limit, timedatectl_path)
    if note:
        warnings.append(note)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    clock = {
        'system_time': format_utc(now),
        'synchronized': synchronized,
        'sync_source': source,
        'skew_seconds': skew,
        'skew_source': skew_source,
        'plausible': now >= EARLIEST_PLAUSIBLE_TIME,
    }
    if synchronized is False and skew is None:
        warnings.append('The system clock is not synchronised by NTP (source: %s) and no skew could be measured. '
                        'Enable NTP with timedatectl set-ntp true.' % source)

    problems = link_problems(link)
    problems.extend(route_problems(routes, link['interface']))
    problems.extend(clock_problems(clock))
    if not ip_path:
        problems.append('The ip command is not installed. Install the iproute2 package.')

    result = {
        'link': link,
        'routes': routes,
        'clock': clock,
        'metadata_service': metadata,
        'subscriber': subscriber,
        'ready': not problems,
        'problems': problems,
    }
    return result, warnings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type='str', default='auto'),
            check_hosts=dict(type='list', elements='str', default=['krypton.soracom.io', 'metadata.soracom.io']),
            metadata=dict(type='bool', default=True),
            metadata_url=dict(type='str', default='http://metadata.soracom.io/v1/subscriber'),
            timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )

    error = validate_params(module.params)
    if error:
        module.fail_json(msg=error)

    ip_path = module.get_bin_path('ip', opt_dirs=['/usr/sbin', '/sbin'])
    timedatectl_path = module.get_bin_path('timedatectl')
    result, warnings = gather(module.params, module.run_command, ip_path, timedatectl_path)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
