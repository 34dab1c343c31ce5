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
import os
import re
import ssl
import stat
import urllib.error

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.module_utils import _cert, _krypton
from ansible_collections.soracom.krypton.plugins.modules import krypton_bootstrap

pytest.importorskip('cryptography')

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

UTC = datetime.timezone.utc
ENDPOINT = 'https://127.0.0.1:8036'
HOST = 'a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com'
FILES = ('certificate.pem', 'private.key', 'root-ca.pem', 'krypton.json')


def make_pair(days_valid=365, common_name='AWS IoT Certificate', not_before=None):
    now = datetime.datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (x509.CertificateBuilder()
                   .subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or now - datetime.timedelta(days=400))
                   .not_valid_after(now + datetime.timedelta(days=days_valid))
                   .sign(key, hashes.SHA256()))
    key_text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption()).decode()
    return certificate, certificate.public_bytes(serialization.Encoding.PEM).decode(), key_text


def krypton_body(host=HOST, client_id='440103000000001', with_root_ca=True, not_before=None, **overrides):
    dummy, certificate_text, key_text = make_pair(not_before=not_before)
    body = {'certificate': certificate_text, 'privateKey': key_text, 'host': host, 'clientId': client_id,
            'region': 'ap-northeast-1'}
    if with_root_ca:
        body['rootCaCertificate'] = make_pair(common_name='Lab Root CA')[1]
    body.update(overrides)
    return body


class FakeResponse:
    def __init__(self, body, date=None):
        self._body = body
        self.status = 200
        self.headers = http.client.HTTPMessage()
        self.headers['Content-Type'] = 'application/json'
        self.headers['Date'] = date or email.utils.format_datetime(datetime.datetime.now(UTC), usegmt=True)

    def getcode(self):
        return self.status

    def read(self):
        return self._body

    def close(self):
        pass


class FakeKrypton:
    """Stands in for open_url in _krypton and records every request."""

    def __init__(self):
        self.calls = []
        self.responses = []

    def respond_json(self, body, date=None):
        self.responses.append(FakeResponse(json.dumps(body).encode(), date))

    def respond_raw(self, raw):
        self.responses.append(FakeResponse(raw))

    def respond_error(self, status, body):
        message = http.client.HTTPMessage()
        message['Content-Type'] = 'application/json'
        self.responses.append(urllib.error.HTTPError(ENDPOINT, status, 'error', message, io.BytesIO(body)))

    def __call__(self, url, **kwargs):
        self.calls.append(dict(kwargs, url=url, body=json.loads(kwargs['data'])))
        response = self.responses.pop(0)
        if isinstance(response, BaseException):
            raise response
        return response


@pytest.fixture
def krypton(monkeypatch):
    fake = FakeKrypton()
    monkeypatch.setattr(_krypton, 'open_url', fake)
    monkeypatch.setattr(_krypton.time, 'sleep', lambda seconds: None)
    return fake


def run_module(capsys, **args):
    args.setdefault('endpoint', ENDPOINT)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            krypton_bootstrap.main()
    output = capsys.readouterr().out
    result = json.loads(output)
    result['rc'] = excinfo.value.code
    result['raw_output'] = output
    return result


def warning_texts(result):
    """Return the warning messages of a result. ansible-core 2.19 returns them as structured dicts."""
    texts = []
    for warning in result.get('warnings', []):
        if isinstance(warning, dict):
            warning = warning.get('event', {}).get('msg', '')
        texts.append(warning)
    return texts


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def snapshot(dest):
    return dict((name, (dest / name).read_bytes()) for name in FILES if (dest / name).exists())


def bootstrap_once(capsys, krypton, dest, **args):
    krypton.respond_json(krypton_body())
    result = run_module(capsys, dest=str(dest), **args)
    assert result['rc'] == 0, result
    return result


def test_first_run_writes_files(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    body = krypton_body(thingName='pi01')
    krypton.respond_json(body)
    result = run_module(capsys, dest=str(dest), _ansible_diff=True)

    assert result['rc'] == 0
    assert result['changed'] is True
    assert result['bootstrapped'] is True
    assert len(krypton.calls) == 1
    assert result['host'] == HOST
    assert result['client_id'] == '440103000000001'
    assert result['thing_name'] == 'pi01'
    assert result['region'] == 'ap-northeast-1'
    certificate = _cert.load_certificate(body['certificate'])
    assert result['certificate_id'] == _cert.certificate_id(certificate)
    assert mode_of(dest) == 0o700
    assert mode_of(dest / 'private.key') == 0o600
    assert mode_of(dest / 'certificate.pem') == 0o644
    assert mode_of(dest / 'root-ca.pem') == 0o644
    assert mode_of(dest / 'krypton.json') == 0o644
    assert (dest / 'private.key').read_text() == body['privateKey']
    stored = json.loads((dest / 'krypton.json').read_text())
    assert sorted(stored) == sorted(_krypton.STATE_FIELDS)
    assert stored['endpoint'] == ENDPOINT
    assert result['files']['private_key'] == str(dest / 'private.key')
    assert result['diff']['before'] == {}
    assert result['diff']['after']['certificate_id'] == result['certificate_id']
    assert 'PRIVATE KEY' not in result['raw_output']
    assert [name for name in os.listdir(dest) if name.endswith('.tmp')] == []


def test_second_run_does_not_call(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    first = bootstrap_once(capsys, krypton, dest)
    before = snapshot(dest)

    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 0
    assert result['changed'] is False
    assert result['bootstrapped'] is False
    assert len(krypton.calls) == 1
    assert result['certificate_id'] == first['certificate_id']
    assert 'not called' in result['reason']
    assert snapshot(dest) == before


def test_check_mode_never_calls(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    result = run_module(capsys, dest=str(dest), _ansible_check_mode=True, _ansible_diff=True)
    assert result['rc'] == 0
    assert result['changed'] is True
    assert result['bootstrapped'] is True
    assert krypton.calls == []
    assert not dest.exists()
    assert result['host'] is None
    assert 'Check mode' in result['reason']

    bootstrap_once(capsys, krypton, dest)
    result = run_module(capsys, dest=str(dest), _ansible_check_mode=True)
    assert result['changed'] is False
    assert len(krypton.calls) == 1


def test_check_mode_forced_does_not_call(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    result = run_module(capsys, dest=str(dest), force=True, _ansible_check_mode=True)
    assert result['changed'] is True
    assert len(krypton.calls) == 1


def test_force_calls_again(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    first = bootstrap_once(capsys, krypton, dest)
    krypton.respond_json(krypton_body())
    result = run_module(capsys, dest=str(dest), force=True, _ansible_diff=True)
    assert result['changed'] is True
    assert len(krypton.calls) == 2
    assert result['certificate_id'] != first['certificate_id']
    assert result['diff']['before']['certificate_id'] == first['certificate_id']
    assert 'force' in result['reason']


def test_expired_certificate_calls(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    certificate, certificate_text, key_text = make_pair(days_valid=-1)
    (dest / 'certificate.pem').write_text(certificate_text)
    (dest / 'private.key').write_text(key_text)
    stored = json.loads((dest / 'krypton.json').read_text())
    stored['certificate_id'] = _cert.certificate_id(certificate)
    (dest / 'krypton.json').write_text(json.dumps(stored))

    krypton.respond_json(krypton_body())
    result = run_module(capsys, dest=str(dest))
    assert result['bootstrapped'] is True
    assert len(krypton.calls) == 2
    assert 'expired' in result['reason']


def test_expiring_within_renew_window_calls(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    krypton.respond_json(krypton_body())
    # The certificate is valid for 365 days, so a 400-day window renews it.
    result = run_module(capsys, dest=str(dest), renew_before_days=400)
    assert result['bootstrapped'] is True
    assert 'renew_before_days' in result['reason']


def test_missing_file_calls(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    (dest / 'root-ca.pem').unlink()
    krypton.respond_json(krypton_body())
    result = run_module(capsys, dest=str(dest))
    assert result['bootstrapped'] is True
    assert 'root-ca.pem' in result['reason']
    assert (dest / 'root-ca.pem').exists()


def test_expected_host_differs_calls(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    other = 'b3other00-ats.iot.ap-northeast-1.amazonaws.com'
    krypton.respond_json(krypton_body(host=other))
    result = run_module(capsys, dest=str(dest), expected_host=other)
    assert result['rc'] == 0
    assert result['bootstrapped'] is True
    assert result['host'] == other
    assert 'expected_host' in result['reason']


def test_thing_name_sent_and_compared(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest, thing_name='pi01')
    assert krypton.calls[0]['body'] == {'requestParameters': {'thingName': 'pi01'}}
    assert run_module(capsys, dest=str(dest), thing_name='pi01')['changed'] is False

    krypton.respond_json(krypton_body())
    result = run_module(capsys, dest=str(dest), thing_name='pi02')
    assert result['bootstrapped'] is True
    assert result['thing_name'] == 'pi02'
    assert krypton.calls[1]['body'] == {'requestParameters': {'thingName': 'pi02'}}


def test_non_json_response_writes_nothing(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    before = snapshot(dest)
    krypton.respond_raw(b'{"privateKey": "-----BEGIN EC PRIVATE KEY-----\\nSECRETMATERIAL')
    result = run_module(capsys, dest=str(dest), force=True)
    assert result['rc'] == 1
    assert result['failed'] is True
    assert 'not valid JSON' in result['msg']
    assert 'SECRETMATERIAL' not in result['raw_output']
    assert snapshot(dest) == before


def test_non_json_first_run_writes_nothing(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    krypton.respond_raw(b'<html>proxy error</html>')
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 1
    assert not dest.exists() or os.listdir(dest) == []


def test_key_mismatch_response_writes_nothing(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    before = snapshot(dest)
    body = krypton_body()
    body['privateKey'] = make_pair()[2]
    krypton.respond_json(body)
    result = run_module(capsys, dest=str(dest), force=True)
    assert result['rc'] == 1
    assert 'does not belong' in result['msg']
    assert 'PRIVATE KEY' not in result['raw_output']
    assert snapshot(dest) == before


@pytest.mark.parametrize('field', ['certificate', 'privateKey', 'host', 'clientId'])
def test_incomplete_response_writes_nothing(capsys, krypton, tmp_path, field):
    dest = tmp_path / 'krypton'
    body = krypton_body()
    del body[field]
    krypton.respond_json(body)
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 1
    assert field in result['msg']
    assert not dest.exists()


def test_response_for_other_host_writes_nothing(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    krypton.respond_json(krypton_body(host='other-ats.iot.us-east-1.amazonaws.com'))
    result = run_module(capsys, dest=str(dest), expected_host=HOST)
    assert result['rc'] == 1
    assert 'expected_host' in result['msg']
    assert not dest.exists()


def test_no_root_ca_keeps_stored_file(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    root_ca = (dest / 'root-ca.pem').read_bytes()
    krypton.respond_json(krypton_body(with_root_ca=False))
    result = run_module(capsys, dest=str(dest), force=True)
    assert result['rc'] == 0
    assert (dest / 'root-ca.pem').read_bytes() == root_ca
    assert any('rootCaCertificate' in warning for warning in warning_texts(result))


def test_no_root_ca_anywhere_fails(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    krypton.respond_json(krypton_body(with_root_ca=False))
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 1
    assert 'rootCaCertificate' in result['msg']
    assert not dest.exists()


def test_http_error_names_code_and_hint(capsys, krypton, tmp_path):
    krypton.respond_error(400, json.dumps({'code': 'KRY0004', 'message': 'SIM not in a Krypton group'}).encode())
    result = run_module(capsys, dest=str(tmp_path / 'krypton'))
    assert result['rc'] == 1
    assert 'KRY0004' in result['msg']
    assert 'SoracomKrypton' in result['msg']
    assert result['status'] == 400


def test_connection_failure_hint(capsys, krypton, tmp_path):
    for dummy in range(2):
        krypton.responses.append(urllib.error.URLError(ConnectionRefusedError(111, 'Connection refused')))
    result = run_module(capsys, dest=str(tmp_path / 'krypton'), retries=1)
    assert result['rc'] == 1
    assert 'Connection refused. Gave up after' in result['msg']
    assert 'Krypton responds only over the SIM' in result['msg']
    assert 'lte_link_info' in result['msg']
    assert result['attempts'] == 2


def http_date(moment):
    return email.utils.format_datetime(moment, usegmt=True)


@pytest.fixture
def device_clock(monkeypatch):
    """Set the device clock that the module and _krypton read through _cert.utc_now."""

    def set_clock(moment):
        monkeypatch.setattr(_cert, 'utc_now', lambda: moment)

    return set_clock


def test_device_ahead_of_krypton_fails_after_writing(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    old = http_date(datetime.datetime.now(UTC) - datetime.timedelta(hours=2))
    krypton.respond_json(krypton_body(), date=old)
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 1
    assert result['changed'] is True
    assert result['bootstrapped'] is True
    # The Date header has whole seconds, so the measured skew is 7200 or 7201 seconds.
    assert re.search(r'is 720[01] seconds ahead of the Date header of %s' % re.escape(ENDPOINT), result['msg'])
    assert 'more than max_clock_skew (300 s)' in result['msg']
    assert 'timedatectl set-ntp true' in result['msg']
    assert 'written to %s anyway' % dest in result['msg']
    assert sorted(snapshot(dest)) == sorted(FILES)
    assert result['certificate_id']


def test_device_behind_names_certificate_start(capsys, krypton, tmp_path, device_clock):
    dest = tmp_path / 'krypton'
    server_time = datetime.datetime.now(UTC).replace(microsecond=0)
    device_clock(server_time - datetime.timedelta(hours=1))
    krypton.respond_json(krypton_body(not_before=server_time - datetime.timedelta(minutes=5)),
                         date=http_date(server_time))
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 1
    assert 'is 3600 seconds behind the Date header' in result['msg']
    expected_start = _cert.format_time(server_time - datetime.timedelta(minutes=5))
    assert 'the new certificate is not valid before %s' % expected_start in result['msg']
    assert (dest / 'private.key').exists()


def test_rerun_after_skew_failure_keeps_files(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    old = http_date(datetime.datetime.now(UTC) - datetime.timedelta(hours=2))
    krypton.respond_json(krypton_body(), date=old)
    first = run_module(capsys, dest=str(dest))
    assert first['rc'] == 1
    before = snapshot(dest)

    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 0
    assert result['bootstrapped'] is False
    assert result['certificate_id'] == first['certificate_id']
    assert len(krypton.calls) == 1
    assert snapshot(dest) == before


def test_skew_within_limit_passes(capsys, krypton, tmp_path):
    old = http_date(datetime.datetime.now(UTC) - datetime.timedelta(seconds=240))
    krypton.respond_json(krypton_body(), date=old)
    result = run_module(capsys, dest=str(tmp_path / 'krypton'))
    assert result['rc'] == 0
    assert not any('Date header' in warning for warning in warning_texts(result))


def test_max_clock_skew_option(capsys, krypton, tmp_path):
    old = http_date(datetime.datetime.now(UTC) - datetime.timedelta(hours=2))
    krypton.respond_json(krypton_body(), date=old)
    assert run_module(capsys, dest=str(tmp_path / 'a'), max_clock_skew=0)['rc'] == 0

    krypton.respond_json(krypton_body(), date=old)
    assert run_module(capsys, dest=str(tmp_path / 'b'), max_clock_skew=8000)['rc'] == 0

    krypton.respond_json(krypton_body(), date=http_date(datetime.datetime.now(UTC) - datetime.timedelta(seconds=90)))
    result = run_module(capsys, dest=str(tmp_path / 'c'), max_clock_skew=60)
    assert result['rc'] == 1
    assert 'max_clock_skew (60 s)' in result['msg']


def test_clock_before_floor_fails_without_call(capsys, krypton, tmp_path, device_clock):
    device_clock(datetime.datetime(2019, 2, 14, 10, 0, 0, tzinfo=UTC))
    dest = tmp_path / 'krypton'
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 1
    assert result['bootstrapped'] is False
    assert krypton.calls == []
    assert 'The device clock reads 2019-02-14T10:00:00Z, which is before 2025-01-01' in result['msg']
    assert 'TLS connection to Krypton would fail' in result['msg']
    assert 'timedatectl set-ntp true' in result['msg']
    assert 'systemd-timesyncd' in result['msg']
    assert 'chrony' in result['msg']
    assert not dest.exists()


def test_clock_before_floor_fails_in_check_mode(capsys, krypton, tmp_path, device_clock):
    device_clock(datetime.datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC))
    result = run_module(capsys, dest=str(tmp_path / 'krypton'), _ansible_check_mode=True)
    assert result['rc'] == 1
    assert 'before 2025-01-01' in result['msg']
    assert krypton.calls == []


def test_clock_floor_ignored_when_no_call_needed(capsys, krypton, tmp_path, device_clock):
    dest = tmp_path / 'krypton'
    first = bootstrap_once(capsys, krypton, dest)
    device_clock(datetime.datetime(2019, 2, 14, tzinfo=UTC))
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 0
    assert result['bootstrapped'] is False
    assert result['certificate_id'] == first['certificate_id']
    assert len(krypton.calls) == 1


@pytest.mark.parametrize('code,text', [(9, 'certificate is not yet valid'), (10, 'certificate has expired')])
def test_tls_validity_failure_points_at_clock(capsys, krypton, tmp_path, device_clock, code, text):
    device_clock(datetime.datetime(2025, 6, 1, 8, 30, 0, tzinfo=UTC))
    failure = ssl.SSLCertVerificationError(1, 'certificate verify failed')
    failure.verify_code = code
    failure.verify_message = text
    krypton.responses.append(urllib.error.URLError(failure))
    result = run_module(capsys, dest=str(tmp_path / 'krypton'))
    assert result['rc'] == 1
    assert text in result['msg']
    assert 'The device clock reads 2025-06-01T08:30:00Z' in result['msg']
    assert 'timedatectl set-ntp true' in result['msg']
    assert 'cellular session' not in result['msg']
    assert len(krypton.calls) == 1


def test_retries_warned_and_logged_once(capsys, krypton, tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(krypton_bootstrap.AnsibleModule, 'log', lambda self, message, **kwargs: logged.append(message))
    for dummy in range(5):
        krypton.respond_error(503, b'')
    krypton.respond_json(krypton_body())
    result = run_module(capsys, dest=str(tmp_path / 'krypton'), retries=5)
    assert result['rc'] == 0
    retry_lines = [message for message in logged if 'Retry ' in message]
    assert len(retry_lines) == 5
    assert len(set(retry_lines)) == 5
    # Warnings of earlier failed module runs in this process can linger, so count only this run's.
    warnings = warning_texts(result)
    assert len([warning for warning in warnings if 'HTTP 503' in warning and 'Retry ' in warning]) == 3
    assert any('More Krypton requests are being retried' in warning for warning in warnings)


def test_wrong_mode_is_fixed_without_call(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    os.chmod(dest / 'private.key', 0o644)

    result = run_module(capsys, dest=str(dest), _ansible_check_mode=True)
    assert result['changed'] is True
    assert mode_of(dest / 'private.key') == 0o644

    result = run_module(capsys, dest=str(dest))
    assert result['changed'] is True
    assert result['bootstrapped'] is False
    assert mode_of(dest / 'private.key') == 0o600
    assert len(krypton.calls) == 1
    assert run_module(capsys, dest=str(dest))['changed'] is False


def test_stale_state_file_calls(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    bootstrap_once(capsys, krypton, dest)
    stored = json.loads((dest / 'krypton.json').read_text())
    stored['certificate_id'] = 'f' * 64
    (dest / 'krypton.json').write_text(json.dumps(stored))
    krypton.respond_json(krypton_body())
    assert run_module(capsys, dest=str(dest))['bootstrapped'] is True


@pytest.mark.parametrize('args,message', [
    ({'renew_before_days': -1}, 'renew_before_days'),
    ({'timeout': 0}, 'timeout'),
    ({'retries': -1}, 'retries'),
    ({'timeout': 60, 'retry_time_limit': 30}, 'retry_time_limit'),
    ({'endpoint': 'ftp://krypton'}, 'endpoint'),
    ({'thing_name': ' '}, 'thing_name'),
    ({'owner': 'no-such-user-krypton'}, 'does not exist'),
])
def test_invalid_options(capsys, krypton, tmp_path, args, message):
    result = run_module(capsys, dest=str(tmp_path / 'krypton'), **args)
    assert result['rc'] == 1
    assert message in result['msg']
    assert krypton.calls == []


def test_unreadable_dest_fails_before_call(capsys, krypton, tmp_path, monkeypatch):
    dest = tmp_path / 'krypton'
    dest.mkdir()
    # Tests run as root, for whom os.access always succeeds.
    monkeypatch.setattr(krypton_bootstrap.os, 'access', lambda path, mode: str(path) != str(dest))
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 1
    assert 'become' in result['msg']
    assert krypton.calls == []


def test_unwritable_parent_fails_before_call(capsys, krypton, tmp_path, monkeypatch):
    monkeypatch.setattr(krypton_bootstrap.os, 'access', lambda path, mode: False)
    result = run_module(capsys, dest=str(tmp_path / 'etc' / 'krypton'))
    assert result['rc'] == 1
    assert 'cannot be created' in result['msg']
    assert str(tmp_path) in result['msg']
    assert krypton.calls == []


def test_dest_is_a_file(capsys, krypton, tmp_path):
    dest = tmp_path / 'krypton'
    dest.write_text('')
    result = run_module(capsys, dest=str(dest))
    assert result['rc'] == 1
    assert 'not a directory' in result['msg']
    assert krypton.calls == []


def test_missing_cryptography(capsys, krypton, tmp_path, monkeypatch):
    monkeypatch.setattr(_cert, 'HAS_CRYPTOGRAPHY', False)
    result = run_module(capsys, dest=str(tmp_path / 'krypton'))
    assert result['rc'] == 1
    assert 'cryptography' in result['msg']


def test_read_only_directory_named(tmp_path, monkeypatch):
    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(krypton_bootstrap.os, 'statvfs', lambda path: ReadOnly())
    message = krypton_bootstrap.check_access(str(tmp_path))
    assert 'is on a read-only file system' in message
    assert 'become' not in message
