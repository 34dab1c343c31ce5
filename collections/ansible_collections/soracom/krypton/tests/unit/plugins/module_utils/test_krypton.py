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
import ssl
import urllib.error

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils import _cert, _krypton

pytest.importorskip('cryptography')

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ENDPOINT = 'https://127.0.0.1:8036'
URL = ENDPOINT + _krypton.BOOTSTRAP_PATH
HOST = 'a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com'


# ---------------------------------------------------------------------------- helpers

def make_pair(not_before=None, not_after=None, common_name='AWS IoT Certificate'):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (x509.CertificateBuilder()
                   .subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or NOW - datetime.timedelta(days=1))
                   .not_valid_after(not_after or NOW + datetime.timedelta(days=365))
                   .sign(key, hashes.SHA256()))
    key_text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption()).decode()
    return certificate, certificate.public_bytes(serialization.Encoding.PEM).decode(), key_text


def headers(values=None):
    message = http.client.HTTPMessage()
    for name, value in (values or {}).items():
        message[name] = value
    return message


class FakeResponse:
    def __init__(self, body, status=200, header_values=None, read_error=None):
        self._body = body
        self.status = status
        self.headers = headers(header_values)
        self._read_error = read_error
        self.closed = False

    def getcode(self):
        return self.status

    def read(self):
        if self._read_error:
            raise self._read_error
        return self._body

    def close(self):
        self.closed = True


def http_error(status, body=b'', header_values=None):
    return urllib.error.HTTPError(URL, status, 'error', headers(header_values), io.BytesIO(body))


class FakeOpener:
    """Replays a list of outcomes: a FakeResponse is returned, an exception is raised."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls = []

    def __call__(self, url, **kwargs):
        self.calls.append(dict(kwargs, url=url))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def sleeps():
    return []


def make_client(monkeypatch, outcomes, sleeps, **kwargs):
    """Return (client, opener, retry messages). rand() returns 0.5 unless kwargs set rand."""
    opener = FakeOpener(outcomes)
    monkeypatch.setattr(_krypton, 'open_url', opener)
    monkeypatch.setattr(_krypton.time, 'sleep', sleeps.append)
    messages = []
    kwargs.setdefault('rand', lambda: 0.5)
    client = _krypton.KryptonClient(endpoint=ENDPOINT, timeout=5, retry_callback=messages.append, **kwargs)
    return client, opener, messages


def success_body(**overrides):
    certificate, certificate_text, key_text = make_pair()
    ca, ca_text, dummy = make_pair(common_name='Lab Root CA')
    body = {
        'certificate': certificate_text,
        'privateKey': key_text,
        'rootCaCertificate': ca_text,
        'host': HOST,
        'clientId': '440103000000001',
        'region': 'ap-northeast-1',
    }
    body.update(overrides)
    return body


# ---------------------------------------------------------------------------- client

def test_bootstrap_success_and_request(monkeypatch, sleeps):
    date = email.utils.format_datetime(datetime.datetime.now(UTC), usegmt=True)
    client, opener, warnings = make_client(
        monkeypatch, [FakeResponse(b'{"host": "h", "clientId": "c"}', header_values={'Date': date})], sleeps)
    response = client.bootstrap(thing_name='pi01')

    assert response.data == {'host': 'h', 'clientId': 'c'}
    assert response.attempts == 1
    assert abs(response.clock_skew_seconds()) < 5
    call = opener.calls[0]
    assert call['url'] == URL
    assert call['method'] == 'POST'
    assert json.loads(call['data']) == {'requestParameters': {'thingName': 'pi01'}}
    assert call['headers']['Content-Type'] == 'application/json'
    assert call['use_proxy'] is False
    assert call['follow_redirects'] == 'none'
    assert call['validate_certs'] is True
    assert call['timeout'] == 5
    assert sleeps == []


def test_bootstrap_without_thing_name_sends_empty_object(monkeypatch, sleeps):
    client, opener, dummy = make_client(monkeypatch, [FakeResponse(b'{}')], sleeps)
    client.bootstrap()
    assert json.loads(opener.calls[0]['data']) == {}


def test_retry_on_429_honours_retry_after(monkeypatch, sleeps):
    outcomes = [http_error(429, b'{"code":"RATE","message":"slow down"}', {'Retry-After': '7'}),
                FakeResponse(b'{"ok": true}')]
    client, opener, warnings = make_client(monkeypatch, outcomes, sleeps)
    response = client.bootstrap()
    assert response.data == {'ok': True}
    assert response.attempts == 2
    # 7 s requested plus rand() * 1 s of jitter.
    assert sleeps == [7.5]
    assert len(warnings) == 1
    assert 'Retry 1 of %d in 7.5 s' % _krypton.DEFAULT_RETRIES in warnings[0]


def test_retry_after_is_capped(monkeypatch, sleeps):
    outcomes = [http_error(503, b'', {'Retry-After': '3600'}), FakeResponse(b'{}')]
    client, dummy, dummy2 = make_client(monkeypatch, outcomes, sleeps)
    client.bootstrap()
    assert sleeps == [60.5]


@pytest.mark.parametrize('header_values,expected', [
    ({'X-Soracom-Ratelimit-Seconds-Before-Refresh': '20'}, 20.5),
    ({'X-Soracom-Ratelimit-Seconds-Before-Refresh': '20', 'Retry-After': '3'}, 20.5),
    ({'X-Soracom-Ratelimit-Reset': '12'}, 12.5),
    ({'Retry-After': 'Sun, 01 Mar 2026 12:00:30 GMT'}, None),
])
def test_retry_honours_rate_limit_headers(monkeypatch, sleeps, header_values, expected):
    outcomes = [http_error(429, b'', header_values), FakeResponse(b'{}')]
    client, dummy, dummy2 = make_client(monkeypatch, outcomes, sleeps)
    client.bootstrap()
    if expected is None:
        # An HTTP date in the past asks for no wait, which still gets its jitter.
        assert sleeps == [0.5]
    else:
        assert sleeps == [expected]


@pytest.mark.parametrize('rand', [0.0, 0.25, 1.0])
def test_server_wait_is_jittered(monkeypatch, sleeps, rand):
    outcomes = [http_error(429, b'', {'Retry-After': '4'}), FakeResponse(b'{}')]
    client, dummy, dummy2 = make_client(monkeypatch, outcomes, sleeps, rand=lambda: rand)
    client.bootstrap()
    assert sleeps == [4.0 + rand]


def test_backoff_jitter_keeps_lower_half(monkeypatch, sleeps):
    outcomes = [http_error(503), http_error(503), http_error(503), FakeResponse(b'{}')]
    client, dummy, dummy2 = make_client(monkeypatch, outcomes, sleeps, rand=lambda: 0.5)
    client.bootstrap()
    assert sleeps == [1.5, 3.0, 6.0]


def test_default_backoff_outlasts_cellular_drop(monkeypatch, sleeps):
    outcomes = [http_error(503) for dummy in range(_krypton.DEFAULT_RETRIES)] + [FakeResponse(b'{}')]
    client, dummy, dummy2 = make_client(monkeypatch, outcomes, sleeps, rand=lambda: 0.0,
                                        retries=_krypton.DEFAULT_RETRIES)
    client.bootstrap()
    assert len(sleeps) == _krypton.DEFAULT_RETRIES
    # The shortest possible sleeps still add up to more than a minute.
    assert sum(sleeps) >= 60


def test_each_retry_reported_once(monkeypatch, sleeps):
    outcomes = [http_error(503), urllib.error.URLError(ConnectionRefusedError(111, 'Connection refused')),
                FakeResponse(b'{}')]
    client, dummy, messages = make_client(monkeypatch, outcomes, sleeps, retries=3)
    client.bootstrap()
    assert len(messages) == 2
    assert 'HTTP 503' in messages[0]
    assert 'Retry 1 of 3' in messages[0]
    assert 'Connection refused' in messages[1]
    assert 'Retry 2 of 3' in messages[1]


@pytest.mark.parametrize('status', [500, 502, 503, 504])
def test_retry_on_server_errors_then_give_up(monkeypatch, sleeps, status):
    outcomes = [http_error(status, b'<html>gateway</html>') for dummy in range(4)]
    client, opener, warnings = make_client(monkeypatch, outcomes, sleeps, retries=3)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert excinfo.value.status == status
    assert excinfo.value.attempts == 4
    assert 'Gave up after 4 attempts' in str(excinfo.value)
    assert len(opener.calls) == 4
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        ceiling = min(_krypton.BACKOFF_MAX_DELAY, _krypton.BACKOFF_BASE * 2 ** attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert '<html>' not in str(excinfo.value)


def test_zero_retries_makes_one_attempt(monkeypatch, sleeps):
    client, opener, dummy = make_client(monkeypatch, [http_error(503)], sleeps, retries=0)
    with pytest.raises(_krypton.KryptonError):
        client.bootstrap()
    assert len(opener.calls) == 1
    assert sleeps == []


def test_connection_error_is_retried(monkeypatch, sleeps):
    outcomes = [urllib.error.URLError(ConnectionRefusedError(111, 'Connection refused')),
                ConnectionResetError(104, 'reset'),
                FakeResponse(b'{}')]
    client, opener, dummy = make_client(monkeypatch, outcomes, sleeps)
    assert client.bootstrap().attempts == 3
    assert len(sleeps) == 2


def test_tls_verification_error_not_retried(monkeypatch, sleeps):
    failure = ssl.SSLCertVerificationError(1, 'certificate verify failed')
    failure.verify_message = 'unable to get local issuer certificate'
    client, opener, dummy = make_client(monkeypatch, [urllib.error.URLError(failure)], sleeps)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert len(opener.calls) == 1
    assert excinfo.value.status is None
    assert 'unable to get local issuer certificate' in str(excinfo.value)


def test_krypton_error_body_is_parsed(monkeypatch, sleeps):
    body = json.dumps({'code': 'KRY0001', 'message': 'Krypton is not enabled for this SIM group'}).encode()
    client, opener, dummy = make_client(monkeypatch, [http_error(403, body)], sleeps)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    error = excinfo.value
    assert error.status == 403
    assert error.code == 'KRY0001'
    assert error.api_message == 'Krypton is not enabled for this SIM group'
    assert 'KRY0001' in str(error)
    assert len(opener.calls) == 1
    assert sleeps == []


def test_non_json_error_body_not_echoed(monkeypatch, sleeps):
    body = b'-----BEGIN RSA PRIVATE KEY-----\nSECRET\n'
    client, dummy, dummy2 = make_client(monkeypatch, [http_error(400, body, {'Content-Type': 'text/plain'})], sleeps)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert 'SECRET' not in str(excinfo.value)
    assert 'text/plain' in str(excinfo.value)
    assert excinfo.value.code is None


def test_success_body_not_json_not_echoed(monkeypatch, sleeps):
    body = b'{"privateKey": "-----BEGIN RSA PRIVATE KEY-----\\nSECRET'
    client, opener, dummy = make_client(monkeypatch, [FakeResponse(body)], sleeps)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    message = str(excinfo.value)
    assert 'SECRET' not in message
    assert 'not valid JSON or is cut off' in message
    assert len(opener.calls) == 1


def test_success_body_cut_off_while_reading(monkeypatch, sleeps):
    error = http.client.IncompleteRead(b'{"privateKey": "SECRET', 500)
    client, dummy, dummy2 = make_client(monkeypatch, [FakeResponse(b'', read_error=error)], sleeps)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert 'cut off' in str(excinfo.value)
    assert 'SECRET' not in str(excinfo.value)


def test_success_body_json_list_rejected(monkeypatch, sleeps):
    client, dummy, dummy2 = make_client(monkeypatch, [FakeResponse(b'["a"]')], sleeps)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert 'not an object' in str(excinfo.value)


def test_time_budget_stops_retries(monkeypatch, sleeps):
    clock = iter([0.0, 299.0])
    outcomes = [http_error(503), http_error(503)]
    client, opener, dummy = make_client(monkeypatch, outcomes, sleeps, monotonic=lambda: next(clock))
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert len(opener.calls) == 1
    assert str(excinfo.value).endswith(
        'Gave up after 1 attempt because the next attempt could end after the 300 s retry budget.')
    assert excinfo.value.attempts == 1
    assert sleeps == []


def test_time_budget_counts_server_wait_and_timeout(monkeypatch, sleeps):
    # 250 s have passed, and a 50 s Retry-After plus 0.5 s jitter and the 5 s timeout would pass 300 s.
    readings = [0.0, 250.0]
    outcomes = [http_error(429, b'', {'Retry-After': '50'})]
    client, opener, dummy = make_client(monkeypatch, outcomes, sleeps, monotonic=lambda: readings.pop(0))
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert 'retry budget' in str(excinfo.value)
    assert sleeps == []


def test_gave_up_message_singular_with_zero_retries(monkeypatch, sleeps):
    client, dummy, dummy2 = make_client(monkeypatch, [http_error(503)], sleeps, retries=0)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert str(excinfo.value).endswith('Gave up after 1 attempt.')


# ---------------------------------------------------------------------------- headers

def test_parse_http_date():
    expected = datetime.datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    assert _krypton.parse_http_date('Sun, 01 Mar 2026 12:00:30 GMT') == expected
    assert _krypton.parse_http_date('garbage') is None
    assert _krypton.parse_http_date(None) is None


def test_backoff_delay_jitter_bounds():
    assert _krypton.backoff_delay(0, rng=lambda: 1.0) == _krypton.BACKOFF_BASE
    assert _krypton.backoff_delay(3, rng=lambda: 0.5) == 0.75 * 8 * _krypton.BACKOFF_BASE
    assert _krypton.backoff_delay(30, rng=lambda: 1.0) == _krypton.BACKOFF_MAX_DELAY
    assert _krypton.backoff_delay(2, rng=lambda: 0.0) == 0.5 * 4 * _krypton.BACKOFF_BASE


# ---------------------------------------------------------------------------- clock

def response_at(device_time, server_time):
    return _krypton.KryptonResponse({}, 200, server_date=server_time, received_at=device_time)


def test_clock_skew_message_within_limit():
    assert _krypton.clock_skew_message(response_at(NOW, NOW - datetime.timedelta(seconds=299)), 300, 'x') is None
    assert _krypton.clock_skew_message(response_at(NOW, None), 300, 'x') is None


def test_clock_skew_message_disabled_with_zero():
    assert _krypton.clock_skew_message(response_at(NOW, NOW + datetime.timedelta(days=2)), 0, 'x') is None


def test_clock_skew_message_device_behind():
    server = NOW + datetime.timedelta(hours=1)
    message = _krypton.clock_skew_message(response_at(NOW, server), 300, 'https://krypton', server)
    assert message.startswith('The device clock (2026-03-01T12:00:00Z) is 3600 seconds behind the Date header of '
                              'https://krypton (2026-03-01T13:00:00Z), more than max_clock_skew (300 s).')
    assert 'the new certificate is not valid before 2026-03-01T13:00:00Z' in message


def test_clock_skew_message_device_ahead():
    message = _krypton.clock_skew_message(response_at(NOW, NOW - datetime.timedelta(seconds=400)), 300, 'x',
                                          NOW - datetime.timedelta(seconds=400))
    assert '400 seconds ahead of' in message
    assert 'not valid before' not in message


@pytest.mark.parametrize('now,expected', [
    (datetime.datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), True),
    (datetime.datetime(1970, 1, 1, tzinfo=UTC), True),
    (datetime.datetime(2025, 1, 1, tzinfo=UTC), False),
    (NOW, False),
])
def test_implausible_clock_message(now, expected):
    message = _krypton.implausible_clock_message(now)
    assert (message is not None) == expected
    if expected:
        assert _cert.format_time(now) in message
        assert 'before 2025-01-01' in message
        assert 'TLS' in message
        assert 'timedatectl set-ntp true' in message
        assert 'chrony' in message
        assert 'Krypton was not called' in message


@pytest.mark.parametrize('code,text', [
    (9, 'certificate is not yet valid'),
    (10, 'certificate has expired'),
    (0, 'certificate is not yet valid'),
])
def test_tls_validity_failure_is_clock_suspect(monkeypatch, sleeps, code, text):
    failure = ssl.SSLCertVerificationError(1, 'certificate verify failed')
    failure.verify_code = code
    failure.verify_message = text
    client, opener, dummy = make_client(monkeypatch, [urllib.error.URLError(failure)], sleeps)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert excinfo.value.clock_suspect is True
    assert text in str(excinfo.value)
    assert len(opener.calls) == 1


def test_tls_issuer_failure_is_not_clock_suspect(monkeypatch, sleeps):
    failure = ssl.SSLCertVerificationError(1, 'certificate verify failed')
    failure.verify_code = 20
    failure.verify_message = 'unable to get local issuer certificate'
    client, dummy, dummy2 = make_client(monkeypatch, [urllib.error.URLError(failure)], sleeps)
    with pytest.raises(_krypton.KryptonError) as excinfo:
        client.bootstrap()
    assert excinfo.value.clock_suspect is False


def test_describe_error_body_variants():
    assert _krypton.describe_error_body(b'{"code": "E1", "message": "m"}') == ('E1', 'm')
    assert _krypton.describe_error_body(b'[1]') == (None, None)
    assert _krypton.describe_error_body(b'\xff') == (None, None)
    assert _krypton.describe_error_body(b'') == (None, None)


# ---------------------------------------------------------------------------- response validation

def test_validate_response_accepts_complete_body():
    body = success_body(certificateId='ignored-if-equal', thingName='pi01')
    values = _krypton.validate_bootstrap_response(body)
    certificate = _cert.load_certificate(body['certificate'])
    assert values['certificate_id'] == _cert.certificate_id(certificate)
    assert values['host'] == HOST
    assert values['client_id'] == '440103000000001'
    assert values['thing_name'] == 'pi01'
    assert values['private_key_pem'].endswith('\n')
    assert values['root_ca_pem'] is not None
    assert len(values['warnings']) == 1


@pytest.mark.parametrize('field', ['certificate', 'privateKey', 'host', 'clientId'])
def test_validate_response_missing_field(field):
    body = success_body()
    del body[field]
    with pytest.raises(_krypton.KryptonError) as excinfo:
        _krypton.validate_bootstrap_response(body)
    assert field in str(excinfo.value)


def test_validate_response_key_mismatch():
    body = success_body()
    dummy, dummy2, other_key = make_pair()
    body['privateKey'] = other_key
    with pytest.raises(_krypton.KryptonError) as excinfo:
        _krypton.validate_bootstrap_response(body)
    assert 'does not belong' in str(excinfo.value)
    assert 'PRIVATE KEY' not in str(excinfo.value)


def test_validate_response_bad_pem():
    body = success_body(certificate='-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    with pytest.raises(_krypton.KryptonError):
        _krypton.validate_bootstrap_response(body)


def test_validate_response_bad_key_not_echoed():
    body = success_body(privateKey='-----BEGIN RSA PRIVATE KEY-----\nSECRETSECRET\n-----END RSA PRIVATE KEY-----\n')
    with pytest.raises(_krypton.KryptonError) as excinfo:
        _krypton.validate_bootstrap_response(body)
    assert 'SECRETSECRET' not in str(excinfo.value)


def test_validate_response_host_mismatch():
    with pytest.raises(_krypton.KryptonError) as excinfo:
        _krypton.validate_bootstrap_response(success_body(), expected_host='other-ats.iot.us-east-1.amazonaws.com')
    assert 'expected_host' in str(excinfo.value)


def test_validate_response_invalid_host():
    with pytest.raises(_krypton.KryptonError):
        _krypton.validate_bootstrap_response(success_body(host='https://bad host/'))


def test_validate_response_without_root_ca():
    body = success_body()
    del body['rootCaCertificate']
    assert _krypton.validate_bootstrap_response(body)['root_ca_pem'] is None


# ---------------------------------------------------------------------------- inspect_credentials

def write_set(dest, not_after=None, host=HOST, thing_name=None, state_overrides=None):
    certificate, certificate_text, key_text = make_pair(not_after=not_after)
    dummy, ca_text, dummy2 = make_pair(common_name='Lab Root CA')
    os.makedirs(dest, exist_ok=True)
    state = {
        'host': host, 'client_id': 'c1', 'thing_name': thing_name, 'region': 'ap-northeast-1',
        'certificate_id': _cert.certificate_id(certificate),
        'certificate_not_after': _cert.format_time(_cert.not_valid_after(certificate)),
        'endpoint': ENDPOINT, 'bootstrapped_at': '2026-03-01T00:00:00Z',
    }
    state.update(state_overrides or {})
    files = {'certificate.pem': certificate_text, 'private.key': key_text, 'root-ca.pem': ca_text,
             'krypton.json': json.dumps(state)}
    for name, text in files.items():
        with open(os.path.join(dest, name), 'w') as handle:
            handle.write(text)
    return certificate


def test_inspect_valid_set(tmp_path):
    write_set(str(tmp_path))
    state = _krypton.inspect_credentials(str(tmp_path), now=NOW)
    assert state.valid, state.reason
    assert 'valid until' in state.reason
    assert state.stored['host'] == HOST


def test_inspect_missing_files(tmp_path):
    state = _krypton.inspect_credentials(str(tmp_path / 'none'), now=NOW)
    assert not state.valid
    assert 'certificate.pem' in state.reason
    assert state.stored is None


def test_inspect_expiring(tmp_path):
    write_set(str(tmp_path), not_after=NOW + datetime.timedelta(days=10))
    state = _krypton.inspect_credentials(str(tmp_path), renew_before_days=30, now=NOW)
    assert not state.valid
    assert 'renew_before_days' in state.reason


def test_inspect_expired(tmp_path):
    write_set(str(tmp_path), not_after=NOW - datetime.timedelta(seconds=1))
    state = _krypton.inspect_credentials(str(tmp_path), now=NOW)
    assert not state.valid
    assert 'expired' in state.reason


def test_inspect_host_differs(tmp_path):
    write_set(str(tmp_path))
    state = _krypton.inspect_credentials(str(tmp_path), expected_host='other.example', now=NOW)
    assert not state.valid
    assert 'expected_host' in state.reason
    assert _krypton.inspect_credentials(str(tmp_path), expected_host=HOST.upper(), now=NOW).valid


def test_inspect_thing_name_differs(tmp_path):
    write_set(str(tmp_path), thing_name='pi01')
    assert _krypton.inspect_credentials(str(tmp_path), thing_name='pi01', now=NOW).valid
    state = _krypton.inspect_credentials(str(tmp_path), thing_name='pi02', now=NOW)
    assert not state.valid
    assert 'thing_name' in state.reason


def test_inspect_key_mismatch(tmp_path):
    write_set(str(tmp_path))
    dummy, dummy2, other_key = make_pair()
    (tmp_path / 'private.key').write_text(other_key)
    state = _krypton.inspect_credentials(str(tmp_path), now=NOW)
    assert not state.valid
    assert 'does not belong' in state.reason


def test_inspect_state_describes_other_certificate(tmp_path):
    write_set(str(tmp_path), state_overrides={'certificate_id': '0' * 64})
    state = _krypton.inspect_credentials(str(tmp_path), now=NOW)
    assert not state.valid
    assert 'describes certificate' in state.reason


def test_inspect_invalid_state_file(tmp_path):
    write_set(str(tmp_path))
    (tmp_path / 'krypton.json').write_text('{not json')
    state = _krypton.inspect_credentials(str(tmp_path), now=NOW)
    assert not state.valid
    assert 'not valid JSON' in state.reason


def test_inspect_not_yet_valid_is_kept_with_warning(tmp_path):
    write_set(str(tmp_path))
    state = _krypton.inspect_credentials(str(tmp_path), now=NOW - datetime.timedelta(days=30))
    assert state.valid
    assert len(state.warnings) == 1
    assert 'clock' in state.warnings[0]
