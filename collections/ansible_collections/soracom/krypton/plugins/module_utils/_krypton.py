# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils file is private to this collection and may change any time.
# Do not use it from other collections or roles.

"""Client for SORACOM Krypton's AWS IoT bootstrap API, used on the device.

Krypton identifies the SIM by the cellular session the request arrives on, so the
request carries no credentials. A successful response contains a new private key, so
nothing here logs, echoes or stores a response body.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import random
import socket
import ssl
import time
import os
import re
import urllib.error

from ansible.module_utils.urls import open_url

from ansible_collections.soracom.krypton.plugins.module_utils import _cert
from ansible_collections.soracom.krypton.plugins.module_utils._retry import (
    SERVER_WAIT_JITTER,
    gave_up_sentence,
    server_requested_delay,
)

DEFAULT_ENDPOINT = 'https://krypton.soracom.io:8036'
BOOTSTRAP_PATH = '/v1/provisioning/aws/iot/bootstrap'

# 429 is Krypton's rate limit. 500, 502, 503 and 504 are server or gateway faults that
# usually pass. Other 4xx responses (no Krypton configuration, SIM not allowed) are final.
RETRY_STATUS_CODES = frozenset((429, 500, 502, 503, 504))

# Backoff without a server hint: a random sleep between half and all of
# min(BACKOFF_MAX_DELAY, BACKOFF_BASE * 2 ** attempt) seconds. The sleeps of the default
# DEFAULT_RETRIES retries add up to 75 to 150 seconds, long enough for a cellular link to
# come back after a short drop. A wait that the response requests (Retry-After,
# X-Soracom-Ratelimit-Seconds-Before-Refresh or -Reset) is honoured up to
# _retry.SERVER_WAIT_MAX (60 s), plus up to SERVER_WAIT_JITTER seconds.
BACKOFF_BASE = 2.0
BACKOFF_MAX_DELAY = 30.0
DEFAULT_RETRIES = 8
# Default upper bound in seconds on the time all attempts of one call may take, sleeps
# and requests included. No retry starts when it could end after this budget.
RETRY_TIME_BUDGET = 300.0

# A difference between the device clock and the server's Date header above this
# many seconds is reported. The Date header has a resolution of one second.
CLOCK_SKEW_WARNING_SECONDS = 300

# The release date of this collection, so a system time before it is wrong. A
# Raspberry Pi has no real-time clock and boots with an old time until NTP sets it.
# TLS checks then fail, because public server certificates last at most 398 days,
# so every one in use was issued after this date.
EARLIEST_PLAUSIBLE_TIME = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)

# How to fix the clock on Raspberry Pi OS and other Debian systems.
CLOCK_FIX_HINT = ('Fix the time synchronisation: enable NTP with timedatectl set-ntp true, and check that '
                  'systemd-timesyncd (timedatectl timesync-status) or chrony (chronyc tracking) reaches its '
                  'servers over the cellular link.')

# OpenSSL verify codes X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED
# (include/openssl/x509_vfy.h): the certificate's validity period does not contain
# the system time, which on a device usually means that its clock is wrong.
VALIDITY_VERIFY_CODES = frozenset((9, 10))


class KryptonError(Exception):
    """A failed Krypton call.

    ``status`` is the HTTP status, or None when no HTTP response arrived. ``code`` and
    ``message`` come from Krypton's ``{"code", "message"}`` error body when it had one.
    ``retryable`` is True for failures of a kind that is retried. ``clock_suspect`` is
    True when TLS verification failed because a certificate's validity period does not
    contain the system time.
    """

    def __init__(self, message, status=None, code=None, api_message=None, attempts=1, retryable=False,
                 clock_suspect=False):
        super().__init__(message)
        self.status = status
        self.code = code
        self.api_message = api_message
        self.attempts = attempts
        self.retryable = retryable
        self.clock_suspect = clock_suspect


class KryptonResponse:
    """A successful bootstrap response: the decoded JSON object and the server's Date header."""

    def __init__(self, data, status, server_date=None, received_at=None, attempts=1):
        self.data = data
        self.status = status
        self.server_date = server_date
        self.received_at = received_at
        self.attempts = attempts

    def clock_skew_seconds(self):
        """Return device time minus server time in seconds, or None without a Date header."""
        if self.server_date is None or self.received_at is None:
            return None
        return (self.received_at - self.server_date).total_seconds()


def parse_http_date(value):
    """Parse an HTTP Date header into an aware UTC datetime, or return None when invalid."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


def backoff_delay(attempt, rng=random.random):
    """Return the sleep in seconds before retry number ``attempt`` (0 for the first retry)."""
    ceiling = min(BACKOFF_MAX_DELAY, BACKOFF_BASE * (2 ** attempt))
    return ceiling / 2 + rng() * ceiling / 2


def describe_error_body(body):
    """Return (code, message) from a Krypton error body, or (None, None) when it is not one.

    Only the ``code`` and ``message`` fields of a JSON object are used, so the body
    itself never reaches a message.
    """
    if not body:
        return None, None
    try:
        data = json.loads(body.decode('utf-8') if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    code = data.get('code')
    message = data.get('message')
    return (str(code) if code is not None else None,
            str(message) if message is not None else None)


def format_http_error(status, code, api_message, url, content_type=None, body_length=0):
    if code or api_message:
        return 'Krypton returned HTTP %s for %s: %s%s' % (
            status, url, '%s: ' % code if code else '', api_message or '(no message)')
    return ('Krypton returned HTTP %s for %s with a body that is not a Krypton error object '
            '(%d bytes, content type %s). The body is not shown.'
            % (status, url, body_length, content_type or 'unknown'))


def _read_http_error(exc):
    try:
        body = exc.read()
    except (OSError, http.client.HTTPException, AttributeError):
        body = b''
    finally:
        try:
            exc.close()
        except Exception:  # pylint: disable=broad-except
            pass
    return body or b''


def _is_tls_failure(exc):
    """Return True for TLS errors that a retry cannot fix, such as a failed certificate check.

    An unexpected EOF during the handshake is left to the retry, because a flaky
    cellular link causes it too.
    """
    reason = getattr(exc, 'reason', exc)
    if isinstance(reason, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return False
    return isinstance(reason, (ssl.SSLError, ssl.CertificateError))


def _is_validity_failure(exc):
    """Return True when TLS verification failed because of a certificate's validity period."""
    reason = getattr(exc, 'reason', exc)
    if not isinstance(reason, ssl.SSLCertVerificationError):
        return False
    if getattr(reason, 'verify_code', None) in VALIDITY_VERIFY_CODES:
        return True
    message = (getattr(reason, 'verify_message', None) or str(reason)).lower()
    return 'not yet valid' in message or 'has expired' in message


def _describe_connection_error(exc):
    reason = getattr(exc, 'reason', None)
    if isinstance(exc, urllib.error.URLError) and reason is not None:
        exc = reason
    if isinstance(exc, socket.gaierror):
        return 'name resolution failed (%s)' % exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return 'TLS certificate verification failed (%s)' % (exc.verify_message or exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return 'timed out'
    return str(exc) or exc.__class__.__name__


class KryptonClient:
    """Calls Krypton with a timeout and bounded, jittered retries.

    ``sleep``, ``monotonic`` and ``rand`` exist so tests can run without waiting and
    with fixed jitter. ``retry_callback`` receives one line per retry, for example a
    _retry.RetryReporter.
    """

    def __init__(self, endpoint=DEFAULT_ENDPOINT, timeout=60, retries=DEFAULT_RETRIES, validate_certs=True,
                 user_agent='ansible-soracom.krypton', sleep=None, monotonic=None, retry_callback=None,
                 time_budget=RETRY_TIME_BUDGET, rand=None):
        self.endpoint = endpoint.rstrip('/')
        self.timeout = timeout
        self.retries = retries
        self.validate_certs = validate_certs
        self.user_agent = user_agent
        self._sleep = sleep
        self._monotonic = monotonic
        self._retry_callback = retry_callback
        self._rand = rand or random.random
        self.time_budget = time_budget

    def _now_monotonic(self):
        return (self._monotonic or time.monotonic)()

    def _pause(self, seconds):
        (self._sleep or time.sleep)(seconds)

    def bootstrap(self, thing_name=None):
        """POST the bootstrap request and return a KryptonResponse with the decoded JSON object.

        Raises KryptonError for HTTP errors, network failures after all retries, and
        responses that are not a complete JSON object.
        """
        body = {}
        if thing_name:
            body['requestParameters'] = {'thingName': thing_name}
        return self.post_json(BOOTSTRAP_PATH, body)

    def post_json(self, path, payload):
        url = self.endpoint + path
        data = json.dumps(payload).encode('utf-8')
        headers = {'Content-Type': 'application/json', 'Accept': 'application/json'}
        # No proxy: Krypton identifies the SIM by the source address of the cellular session,
        # which a proxy would hide.
        started = self._now_monotonic()
        attempt = 0

        while True:
            attempt += 1
            server_wait = None
            try:
                response = open_url(url, data=data, headers=headers, method='POST', timeout=self.timeout,
                                    validate_certs=self.validate_certs, http_agent=self.user_agent,
                                    follow_redirects='none', use_proxy=False)
            except urllib.error.HTTPError as exc:
                status = exc.code
                error_body = _read_http_error(exc)
                code, api_message = describe_error_body(error_body)
                content_type = exc.headers.get('Content-Type') if exc.headers else None
                message = format_http_error(status, code, api_message, url, content_type, len(error_body))
                failure = KryptonError(message, status=status, code=code, api_message=api_message,
                                       attempts=attempt, retryable=status in RETRY_STATUS_CODES)
                if exc.headers:
                    server_wait = server_requested_delay(
                        dict((str(name).lower(), value) for name, value in exc.headers.items()))
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                retryable = not _is_tls_failure(exc)
                failure = KryptonError('Request to %s failed: %s' % (url, _describe_connection_error(exc)),
                                       attempts=attempt, retryable=retryable,
                                       clock_suspect=_is_validity_failure(exc))
            else:
                return self._decode_success(response, url, attempt)

            if not failure.retryable:
                raise failure
            reason = failure.args[0].rstrip('.')
            if attempt > self.retries:
                failure.args = ('%s. %s' % (reason, gave_up_sentence(attempt)),)
                raise failure
            if server_wait is None:
                delay = backoff_delay(attempt - 1, self._rand)
            else:
                delay = server_wait + self._rand() * SERVER_WAIT_JITTER
            if self._now_monotonic() - started + delay + self.timeout > self.time_budget:
                failure.args = ('%s. %s' % (reason, gave_up_sentence(
                    attempt, 'the next attempt could end after the %d s retry budget' % self.time_budget)),)
                raise failure
            if self._retry_callback:
                self._retry_callback('%s. Retry %d of %d in %.1f s.' % (reason, attempt, self.retries, delay))
            self._pause(delay)

    def _decode_success(self, response, url, attempt):
        received_at = _cert.utc_now()
        status = getattr(response, 'status', None) or response.getcode()
        headers = response.headers
        content_type = headers.get('Content-Type') if headers else None
        server_date = parse_http_date(headers.get('Date')) if headers else None
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            # IncompleteRead and connection resets in the middle of the body end up here.
            raise KryptonError('The response from %s was cut off while reading it (%s). The partial body is not shown.'
                               % (url, exc.__class__.__name__), status=status, attempts=attempt)
        finally:
            response.close()

        try:
            data = json.loads(raw.decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            raise KryptonError(
                'The response from %s (HTTP %s, %d bytes, content type %s) is not valid JSON or is cut off. '
                'The body is not shown because it may contain a private key.'
                % (url, status, len(raw), content_type or 'unknown'), status=status, attempts=attempt)
        if not isinstance(data, dict):
            raise KryptonError('The response from %s (HTTP %s) is JSON but not an object. The body is not shown.'
                               % (url, status), status=status, attempts=attempt)
        return KryptonResponse(data, status, server_date=server_date, received_at=received_at, attempts=attempt)


def implausible_clock_message(now):
    """Return why Krypton is not called when the system time ``now`` is before EARLIEST_PLAUSIBLE_TIME, else None."""
    if now >= EARLIEST_PLAUSIBLE_TIME:
        return None
    return ('The device clock reads %s, which is before %s, so the TLS connection to Krypton would fail its '
            'certificate check. %s Krypton was not called.'
            % (_cert.format_time(now), EARLIEST_PLAUSIBLE_TIME.date().isoformat(), CLOCK_FIX_HINT))


def clock_skew_message(response, max_skew, source, not_valid_before=None):
    """Describe a device clock that differs from Krypton's Date header by more than ``max_skew``, or return None.

    ``max_skew`` is the allowed difference in seconds (0 turns the check off).
    ``not_valid_before`` is the start of the new certificate's validity, to say when the
    device clock is behind it.
    """
    skew = response.clock_skew_seconds()
    if not max_skew or skew is None or abs(skew) <= max_skew:
        return None
    direction = 'ahead of' if skew > 0 else 'behind'
    message = ('The device clock (%s) is %d seconds %s the Date header of %s (%s), more than max_clock_skew (%d s).'
               % (_cert.format_time(response.received_at), abs(int(round(skew))), direction, source,
                  _cert.format_time(response.server_date), max_skew))
    if not_valid_before is not None and response.received_at < not_valid_before:
        message += (' By the device clock the new certificate is not valid before %s.'
                    % _cert.format_time(not_valid_before))
    return message


def tls_clock_hint(now):
    """Return the hint for a TLS verification failure caused by a certificate's validity period."""
    return ('A certificate that is not yet valid or has expired by the device clock usually means the clock is '
            'wrong. The device clock reads %s. %s' % (_cert.format_time(now), CLOCK_FIX_HINT))


# Files that krypton_bootstrap keeps in its destination directory, with their modes.
CERTIFICATE_FILE = 'certificate.pem'
PRIVATE_KEY_FILE = 'private.key'
ROOT_CA_FILE = 'root-ca.pem'
STATE_FILE = 'krypton.json'
FILE_MODES = {
    ROOT_CA_FILE: 0o644,
    CERTIFICATE_FILE: 0o644,
    PRIVATE_KEY_FILE: 0o600,
    STATE_FILE: 0o644,
}
# Write order: krypton.json last, so it describes a complete set. If a rename fails half
# way, the key no longer matches the certificate or the state file, and the next run
# bootstraps again.
WRITE_ORDER = (ROOT_CA_FILE, CERTIFICATE_FILE, PRIVATE_KEY_FILE, STATE_FILE)
STATE_FIELDS = ('host', 'client_id', 'thing_name', 'region', 'certificate_id', 'certificate_not_after',
                'endpoint', 'bootstrapped_at')

_HOST_NAME = re.compile(r'^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
                        r'(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$')


class CredentialState:
    """The contents of the destination directory and whether they can be kept.

    ``valid`` is True when the files form a usable set that matches the requested
    host and thing name. ``reason`` is one sentence explaining the decision.
    ``stored`` contains the fields of krypton.json, or None when it is missing or invalid.
    """

    def __init__(self, valid, reason, stored=None, warnings=None):
        self.valid = valid
        self.reason = reason
        self.stored = stored
        self.warnings = warnings or []


def _read_file(path):
    with open(path, 'rb') as handle:
        return handle.read()


def read_state_file(path):
    """Return the fields of krypton.json as a dict, or raise ValueError when it is invalid."""
    try:
        data = json.loads(_read_file(path).decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        raise ValueError('%s is not valid JSON' % path)
    if not isinstance(data, dict):
        raise ValueError('%s does not contain a JSON object' % path)
    for field in ('host', 'client_id'):
        if not isinstance(data.get(field), str) or not data.get(field):
            raise ValueError('%s has no %s' % (path, field))
    return dict((field, data.get(field)) for field in STATE_FIELDS)


def inspect_credentials(dest, thing_name=None, expected_host=None, renew_before_days=30, now=None):
    """Decide whether the files in ``dest`` can be kept, and return a CredentialState.

    The set is valid when all of these hold:

    * every file exists, and krypton.json names a host and client id;
    * certificate.pem and root-ca.pem parse, and private.key belongs to the certificate;
    * krypton.json describes this certificate;
    * the certificate is neither expired nor within ``renew_before_days`` of expiry;
    * the stored host and thing name equal ``expected_host`` and ``thing_name`` when given.

    A file that exists but cannot be read raises OSError.
    """
    paths = dict((name, os.path.join(dest, name)) for name in WRITE_ORDER)
    missing = [name for name in WRITE_ORDER if not os.path.isfile(paths[name])]

    stored = None
    if STATE_FILE not in missing:
        try:
            stored = read_state_file(paths[STATE_FILE])
        except ValueError as exc:
            return CredentialState(False, '%s, so the device needs a new certificate.' % exc)
    if missing:
        return CredentialState(False, 'Missing in %s: %s.' % (dest, ', '.join(missing)), stored)

    try:
        certificate = _cert.load_certificate(_read_file(paths[CERTIFICATE_FILE]))
    except _cert.CertificateError as exc:
        return CredentialState(False, '%s is invalid: %s.' % (paths[CERTIFICATE_FILE], exc), stored)
    try:
        private_key = _cert.load_private_key(_read_file(paths[PRIVATE_KEY_FILE]))
    except _cert.CertificateError as exc:
        return CredentialState(False, '%s is invalid: %s.' % (paths[PRIVATE_KEY_FILE], exc), stored)
    if not _cert.private_key_matches(certificate, private_key):
        return CredentialState(False, '%s does not belong to %s.' % (paths[PRIVATE_KEY_FILE], paths[CERTIFICATE_FILE]),
                               stored)
    try:
        _cert.load_certificates(_read_file(paths[ROOT_CA_FILE]))
    except _cert.CertificateError as exc:
        return CredentialState(False, '%s is invalid: %s.' % (paths[ROOT_CA_FILE], exc), stored)

    actual_id = _cert.certificate_id(certificate)
    if stored.get('certificate_id') != actual_id:
        return CredentialState(False, '%s describes certificate %s, but %s is certificate %s.'
                               % (paths[STATE_FILE], stored.get('certificate_id'), paths[CERTIFICATE_FILE], actual_id),
                               stored)

    warnings = []
    state, days_left = _cert.check_validity(certificate, renew_before_days, now)
    not_after = _cert.format_time(_cert.not_valid_after(certificate))
    if state == _cert.EXPIRED:
        return CredentialState(False, 'The certificate expired on %s.' % not_after, stored)
    if state == _cert.EXPIRING:
        return CredentialState(False, 'The certificate expires on %s, in %.1f days, which is within renew_before_days '
                               '(%d).' % (not_after, days_left, renew_before_days), stored)
    if state == _cert.NOT_YET_VALID:
        # A new certificate would have the same problem, so the files are kept.
        warnings.append('The certificate is not valid before %s by the system clock (%s). The clock is probably '
                        'behind, so enable NTP (timedatectl set-ntp true).'
                        % (_cert.format_time(_cert.not_valid_before(certificate)),
                           _cert.format_time(now or _cert.utc_now())))

    if expected_host and (stored.get('host') or '').lower() != expected_host.lower():
        return CredentialState(False, 'The stored host %s differs from expected_host %s.'
                               % (stored.get('host'), expected_host), stored)
    if thing_name and stored.get('thing_name') != thing_name:
        return CredentialState(False, 'The stored thing name %s differs from thing_name %s.'
                               % (stored.get('thing_name') or '(none)', thing_name), stored)

    return CredentialState(True, 'The certificate %s is valid until %s (%.0f days left), so Krypton was not called.'
                           % (actual_id[:12], not_after, days_left), stored, warnings)


def _ensure_newline(text):
    return text if text.endswith('\n') else text + '\n'


def validate_bootstrap_response(data, expected_host=None):
    """Check a bootstrap response completely and return the values to store.

    Raises KryptonError when a field is missing, a PEM does not parse, the private key
    does not belong to the certificate, or the host differs from ``expected_host``.
    The messages name fields, never their content. The returned dict contains the
    PEM texts, including the private key, and must not reach a module result.
    """
    missing = [field for field in ('certificate', 'privateKey', 'host', 'clientId')
               if not isinstance(data.get(field), str) or not data.get(field).strip()]
    if missing:
        raise KryptonError('The Krypton response lacks %s. Nothing was written.' % ', '.join(missing))

    try:
        certificate = _cert.load_certificate(data['certificate'])
    except _cert.CertificateError as exc:
        raise KryptonError('The certificate in the Krypton response is invalid: %s. Nothing was written.' % exc)
    try:
        private_key = _cert.load_private_key(data['privateKey'])
    except _cert.CertificateError as exc:
        raise KryptonError('The private key in the Krypton response is invalid: %s. Nothing was written.' % exc)
    if not _cert.private_key_matches(certificate, private_key):
        raise KryptonError('The private key in the Krypton response does not belong to its certificate. '
                           'Nothing was written.')

    root_ca = data.get('rootCaCertificate')
    if root_ca is not None:
        if not isinstance(root_ca, str):
            raise KryptonError('rootCaCertificate in the Krypton response is not a string. Nothing was written.')
        try:
            _cert.load_certificates(root_ca)
        except _cert.CertificateError as exc:
            raise KryptonError('rootCaCertificate in the Krypton response is invalid: %s. Nothing was written.' % exc)

    host = data['host'].strip()
    if not _HOST_NAME.match(host):
        raise KryptonError('The host in the Krypton response is not a valid host name. Nothing was written.')
    if expected_host and host.lower() != expected_host.lower():
        raise KryptonError('Krypton returned host %s, but expected_host is %s. The SIM group\'s SoracomKrypton '
                           'configuration names another AWS IoT endpoint. Nothing was written.'
                           % (host, expected_host))

    certificate_id = _cert.certificate_id(certificate)
    warnings = []
    reported_id = data.get('certificateId')
    if isinstance(reported_id, str) and reported_id and reported_id.lower() != certificate_id:
        warnings.append('Krypton reported certificateId %s, but the SHA-256 of the returned certificate is %s. '
                        'The computed id is stored.' % (reported_id, certificate_id))

    region = data.get('region')
    thing_name = data.get('thingName')
    return {
        'certificate_pem': _ensure_newline(data['certificate']),
        'private_key_pem': _ensure_newline(data['privateKey']),
        'root_ca_pem': _ensure_newline(root_ca) if root_ca else None,
        'host': host,
        'client_id': data['clientId'],
        'region': region if isinstance(region, str) else None,
        # Krypton names the client ID after the thing it created and does not return the thing
        # name itself, so the client ID is used as the thing name.
        'thing_name': thing_name if isinstance(thing_name, str) and thing_name else data['clientId'],
        'certificate_id': certificate_id,
        'certificate_not_before': _cert.not_valid_before(certificate),
        'certificate_not_after': _cert.format_time(_cert.not_valid_after(certificate)),
        'warnings': warnings,
    }
