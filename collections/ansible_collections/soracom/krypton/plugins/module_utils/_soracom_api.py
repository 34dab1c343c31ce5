# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SORACOM API client and the resource logic of the soracom_* modules.

The client authenticates once per module run, retries rate-limited and
failed requests with jittered exponential backoff, follows the API's paging
header and reports every failure as SoracomApiError. The functions below it
take a client and plain option values, so unit tests can call them without
AnsibleModule.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import re
import socket
import ssl
import time
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

try:
    import botocore.loaders
except ImportError:
    HAS_BOTOCORE = False
else:
    HAS_BOTOCORE = True


COVERAGE_ENDPOINTS = {
    "jp": "https://api.soracom.io/v1",
    "g": "https://g.api.soracom.io/v1",
}

USER_AGENT = "soracom.krypton"

# Backoff without a server hint: the n-th wait lies between half and all of
# min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (n - 1)) seconds. With the default five
# retries the waits add up to at most 62 seconds, enough to outlast one of
# SORACOM's per-minute rate-limit windows.
BACKOFF_BASE = 2.0
BACKOFF_MAX = 32.0
# A wait the server requests (Retry-After and the rate-limit headers) is capped
# here, because SORACOM's rate-limit windows last one minute.
SERVER_WAIT_MAX = 60.0
# Up to this many seconds of random jitter are added to a server-requested wait,
# so parallel runs that were throttled together do not retry together.
SERVER_WAIT_JITTER = 1.0
# Retries stop when the time since the first attempt plus the next wait would
# pass this many seconds.
RETRY_TIME_LIMIT = 300.0

# Page size requested from list endpoints. The server may return fewer items per page.
PAGE_SIZE = 100
# Upper bound on pages followed in one listing (one million items at full pages).
MAX_PAGES = 10000

KRYPTON_NAMESPACE = "SoracomKrypton"

IMSI_PATTERN = re.compile(r"^[0-9]{15}$")
# A SORACOM SIM ID is the SIM's ICCID: 18 to 20 digits, check digit included.
SIM_ID_PATTERN = re.compile(r"^[0-9]{18,20}$")

# Used to validate a region name when botocore is not installed: an area code,
# an optional partition infix (us-gov, us-iso, eu-isoe and so on), a direction
# and a number, as in ap-northeast-1, cn-north-1 or us-gov-west-1.
AWS_REGION_PATTERN = re.compile(
    r"^(?:af|ap|ca|cn|eu|il|me|mx|sa|us)(?:-(?:gov|iso|isob|isoe|isof))?"
    r"-(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9]+$"
)
AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")
HOSTNAME_LABEL_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
IOT_HOST_REGION_PATTERN = re.compile(r"\.iot\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


# ---------------------------------------------------------------------------
# Options shared by every SORACOM module
# ---------------------------------------------------------------------------

def soracom_argument_spec():
    """Build the argument spec of the shared SORACOM connection options."""
    return dict(
        auth_key_id=dict(type="str", fallback=(env_fallback, ["SORACOM_AUTH_KEY_ID"])),
        auth_key=dict(type="str", no_log=True, fallback=(env_fallback, ["SORACOM_AUTH_KEY"])),
        api_key=dict(type="str", no_log=True),
        token=dict(type="str", no_log=True),
        coverage_type=dict(
            type="str",
            choices=["jp", "g"],
            default="jp",
            fallback=(env_fallback, ["SORACOM_COVERAGE_TYPE"]),
        ),
        endpoint=dict(type="str", fallback=(env_fallback, ["SORACOM_ENDPOINT"])),
        timeout=dict(type="int", default=30),
        retries=dict(type="int", default=5),
        validate_certs=dict(type="bool", default=True),
        language=dict(type="str", choices=["en", "ja"], default="en"),
    )


def soracom_module_kwargs(mutually_exclusive=None, required_together=None, required_one_of=None,
                          required_if=None, required_by=None):
    """Build AnsibleModule keyword arguments: the shared constraints plus a module's own."""
    kwargs = dict(
        mutually_exclusive=[
            ["auth_key_id", "api_key"],
            ["auth_key_id", "token"],
            ["auth_key", "api_key"],
            ["auth_key", "token"],
        ] + list(mutually_exclusive or []),
        required_together=[
            ["auth_key_id", "auth_key"],
            ["api_key", "token"],
        ] + list(required_together or []),
        supports_check_mode=True,
    )
    if required_one_of:
        kwargs["required_one_of"] = list(required_one_of)
    if required_if:
        kwargs["required_if"] = list(required_if)
    if required_by:
        kwargs["required_by"] = dict(required_by)
    return kwargs


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class SoracomError(Exception):
    """Failure of a soracom_* module that is not an API error, such as invalid input.

    ``result`` contains values the module returns with the failure, for
    example the SIMs it changed before a later request failed.
    """

    def __init__(self, message, result=None):
        super().__init__(message)
        self.message = message
        self.result = dict(result or {})


class SoracomApiError(SoracomError):
    """Failed SORACOM API request.

    Attributes:
        status: HTTP status, or None when no response arrived.
        code: SORACOM error code from the body, such as ``AUM0001``.
        api_message: error message from the body.
        method, path: the request, without the endpoint. No credential is part of either.
        attempts: how many times the request was sent.
    """

    def __init__(self, message, status=None, code=None, api_message=None, method=None, path=None,
                 attempts=1, result=None):
        super().__init__(message, result=result)
        self.status = status
        self.code = code
        self.api_message = api_message
        self.method = method
        self.path = path
        self.attempts = attempts

    def to_dict(self):
        """Return the error's fields for a module's failure result."""
        return dict(
            status=self.status,
            code=self.code,
            message=self.api_message,
            method=self.method,
            path=self.path,
            attempts=self.attempts,
        )


class _TransportError(Exception):
    """Request that got no HTTP response. ``not_sent`` is True when the server never received it."""

    def __init__(self, message, not_sent=False, retryable=True):
        super().__init__(message)
        self.not_sent = not_sent
        self.retryable = retryable


def parse_error_body(body):
    """Return (code, message) from a SORACOM error body, or (None, None).

    SORACOM sends ``{"code": ..., "message": ...}``. Some APIs nest it as
    ``{"errorMessage": {"code": ..., "message": ...}, "httpStatus": ...}``.
    """
    if not isinstance(body, dict):
        return None, None
    nested = body.get("errorMessage")
    if isinstance(nested, dict):
        body = nested
    code = body.get("code")
    message = body.get("message")
    return (str(code) if code is not None else None), (str(message) if message is not None else None)


# ---------------------------------------------------------------------------
# Retry timing
# ---------------------------------------------------------------------------

def backoff_delay(retry_number, rand=random.random):
    """Return the wait in seconds before retry ``retry_number`` (1 for the first retry)."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * (2 ** (retry_number - 1)))
    return ceiling / 2 + rand() * ceiling / 2


def server_requested_delay(headers, now=None):
    """Return the wait in seconds a response requests, or None when it requests none.

    Reads ``Retry-After`` (seconds or an HTTP date),
    ``X-Soracom-Ratelimit-Seconds-Before-Refresh`` (seconds, the header
    SORACOM documents) and ``X-Soracom-Ratelimit-Reset`` (seconds, or a
    UNIX time in seconds or milliseconds). The longest wait wins, capped at
    SERVER_WAIT_MAX. ``headers`` must have lower-case names.
    """
    if now is None:
        now = time.time()
    waits = []

    retry_after = headers.get("retry-after")
    if retry_after:
        retry_after = retry_after.strip()
        seconds = _parse_number(retry_after)
        if seconds is None:
            try:
                moment = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError, IndexError):
                moment = None
            if moment is not None and moment.tzinfo is not None:
                seconds = moment.timestamp() - now
        if seconds is not None:
            waits.append(seconds)

    refresh = _parse_number(headers.get("x-soracom-ratelimit-seconds-before-refresh"))
    if refresh is not None:
        waits.append(refresh)

    reset = _parse_number(headers.get("x-soracom-ratelimit-reset"))
    if reset is not None:
        if reset > 1e12:
            reset = reset / 1000.0 - now
        elif reset > 1e9:
            reset = reset - now
        waits.append(reset)

    if not waits:
        return None
    return min(SERVER_WAIT_MAX, max(0.0, *waits))


def _parse_number(value):
    if value is None:
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


class RetryReporter:
    """Report retries: every one through ``log``, the first few also through ``warn``.

    Later retries are only logged, so a rate-limited run over many SIMs does
    not flood the play output with warnings.
    """

    WARN_LIMIT = 3

    def __init__(self, log, warn=None):
        self._log = log
        self._warn = warn
        self.count = 0

    def __call__(self, message):
        self.count += 1
        self._log(message)
        if self._warn is None:
            return
        if self.count <= self.WARN_LIMIT:
            self._warn(message)
        elif self.count == self.WARN_LIMIT + 1:
            self._warn("More SORACOM API requests are being retried. Further retries are written to the module log only.")


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------

class SoracomResponse:
    """Decoded API response: HTTP status, headers with lower-case names, JSON body or None."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


class SoracomClient:
    """SORACOM API client for one module run.

    Authenticates with ``auth_key_id`` and ``auth_key`` on the first request
    (POST /auth) and reuses the session for every later request. An
    ``api_key`` and ``token`` pair skips /auth. Requests that fail with HTTP
    429, a retryable 5xx or a connection error are sent again up to
    ``retries`` times. Retries stop early when the waits would pass
    RETRY_TIME_LIMIT seconds.
    """

    def __init__(self, endpoint, auth_key_id=None, auth_key=None, api_key=None, token=None,
                 timeout=30, retries=5, validate_certs=True, language="en", retry_callback=None,
                 sleep=None, clock=None, rand=None, retry_time_limit=RETRY_TIME_LIMIT):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.validate_certs = validate_certs
        self.language = language
        self.retry_time_limit = retry_time_limit
        self.operator_id = None
        self._auth_key_id = auth_key_id
        self._auth_key = auth_key
        self._api_key = api_key
        self._token = token
        self._retry_callback = retry_callback
        self._sleep = sleep or _sleep_seconds
        self._clock = clock or time.monotonic
        self._rand = rand or random.random

    # -- session ------------------------------------------------------------

    @property
    def uses_auth_keys(self):
        return bool(self._auth_key_id and self._auth_key)

    def authenticate(self):
        """Start a session with POST /auth unless one exists. Raise SoracomError without credentials."""
        if self._api_key and self._token:
            return
        if not self.uses_auth_keys:
            raise SoracomError(
                "No SORACOM credentials were given. Set auth_key_id and auth_key "
                "(or the environment variables SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY), "
                "or api_key and token of an existing session."
            )
        try:
            response = self.request(
                "POST", "/auth",
                body={"authKeyId": self._auth_key_id, "authKey": self._auth_key},
                authenticated=False, idempotent=True,
            )
        except SoracomApiError as exc:
            if exc.status in (400, 401, 403):
                exc.message = (
                    "SORACOM authentication failed for auth key ID %s: HTTP %s%s. "
                    "Check auth_key_id and auth_key, and that the key belongs to an operator of "
                    "the API at %s (coverage_type jp and g use different operators' keys)."
                    % (self._auth_key_id, exc.status, _describe_api_message(exc.code, exc.api_message), self.endpoint)
                )
                exc.args = (exc.message,)
            raise
        body = response.body
        if not isinstance(body, dict) or not body.get("apiKey") or not body.get("token"):
            raise SoracomApiError(
                "SORACOM API POST /auth returned no apiKey and token. Check that %s is a SORACOM API endpoint."
                % self.endpoint,
                status=response.status, method="POST", path="/auth",
            )
        self._api_key = body["apiKey"]
        self._token = body["token"]
        self.operator_id = body.get("operatorId")

    # -- requests -----------------------------------------------------------

    def get(self, path, query=None):
        return self.request("GET", path, query=query).body

    def post(self, path, body=None, idempotent=False):
        return self.request("POST", path, body=body, idempotent=idempotent).body

    def put(self, path, body=None):
        return self.request("PUT", path, body=body).body

    def delete(self, path):
        return self.request("DELETE", path).body

    def paginate(self, path, query=None, page_size=PAGE_SIZE, max_pages=MAX_PAGES):
        """Return every item of a list endpoint, following ``x-soracom-next-key`` pages."""
        query = dict(query or {})
        if page_size:
            query["limit"] = page_size
        items = []
        seen_keys = set()
        for dummy in range(max_pages):
            response = self.request("GET", path, query=query)
            page = response.body if response.body is not None else []
            if not isinstance(page, list):
                raise SoracomApiError(
                    "SORACOM API GET %s returned a JSON %s where a list was expected." % (path, type(page).__name__),
                    status=response.status, method="GET", path=path,
                )
            items.extend(page)
            next_key = response.headers.get("x-soracom-next-key")
            if not next_key:
                return items
            if next_key in seen_keys:
                raise SoracomApiError(
                    "SORACOM API GET %s returned the paging key %r twice. Stopped to avoid a loop." % (path, next_key),
                    status=response.status, method="GET", path=path,
                )
            seen_keys.add(next_key)
            query["last_evaluated_key"] = next_key
        raise SoracomApiError(
            "SORACOM API GET %s returned more than %d pages. Stopped." % (path, max_pages),
            method="GET", path=path,
        )

    def request(self, method, path, body=None, query=None, authenticated=True, idempotent=None):
        """Send one API request with retries and return a SoracomResponse.

        ``path`` is relative to the endpoint and starts with ``/``; callers
        quote its variable parts. ``idempotent`` defaults to True for GET,
        PUT and DELETE. A request that is not idempotent is retried only when
        the server cannot have acted on it: HTTP 429, or a connection that
        was never made.
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        if authenticated:
            self.authenticate()

        url = self.endpoint + path
        if query:
            url += "?" + urlencode(query)
        data = json.dumps(body).encode("utf-8") if body is not None else None
        display_path = path

        started = self._clock()
        waited = 0.0
        attempt = 0
        session_renewed = False
        while True:
            attempt += 1
            status = code = api_message = None
            headers = self._headers(authenticated, data is not None)
            try:
                status, response_headers, raw = self._send(method, url, data, headers)
            except _TransportError as exc:
                retryable = exc.retryable and (idempotent or exc.not_sent)
                failure = str(exc)
                if not retryable or attempt > self.retries:
                    raise SoracomApiError(
                        _failure_message(method, display_path, attempt, failure),
                        method=method, path=display_path, attempts=attempt,
                    )
                delay = backoff_delay(attempt, self._rand)
            else:
                if status < 400:
                    return SoracomResponse(status, response_headers,
                                           self._decode(method, display_path, status, response_headers, raw))

                if status == 401 and authenticated and self.uses_auth_keys and not session_renewed:
                    # The token expired during a long run: start a new session once.
                    session_renewed = True
                    self._api_key = self._token = None
                    self.authenticate()
                    attempt -= 1
                    continue

                error_body = self._decode_error(raw)
                code, api_message = parse_error_body(error_body)
                failure = "HTTP %s%s" % (status, _describe_api_message(code, api_message))
                if error_body is None and raw:
                    failure += " (body: %s)" % _excerpt(raw)
                retryable = status == 429 or (idempotent and status >= 500 and status != 501)
                if not retryable or attempt > self.retries:
                    raise SoracomApiError(
                        _failure_message(method, display_path, attempt, failure,
                                         hint=_status_hint(status, self)),
                        status=status, code=code, api_message=api_message,
                        method=method, path=display_path, attempts=attempt,
                    )
                delay = server_requested_delay(response_headers)
                if delay is None:
                    delay = backoff_delay(attempt, self._rand)
                else:
                    delay += self._rand() * SERVER_WAIT_JITTER

            spent = max(self._clock() - started, waited)
            if spent + delay > self.retry_time_limit:
                raise SoracomApiError(
                    _failure_message(method, display_path, attempt, failure,
                                     hint="Stopped retrying because the next wait (%.1f s) would pass the %d s retry time limit."
                                     % (delay, self.retry_time_limit)),
                    status=status, code=code, api_message=api_message,
                    method=method, path=display_path, attempts=attempt,
                )
            if self._retry_callback is not None:
                self._retry_callback(
                    "SORACOM API %s %s failed (%s). Retrying in %.1f s (attempt %d of %d)."
                    % (method, display_path, failure, delay, attempt + 1, self.retries + 1)
                )
            self._sleep(delay)
            waited += delay

    def _headers(self, authenticated, has_body):
        headers = {
            "Accept": "application/json",
            "X-Soracom-Lang": self.language,
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        if authenticated:
            headers["X-Soracom-API-Key"] = self._api_key
            headers["X-Soracom-Token"] = self._token
        return headers

    def _send(self, method, url, data, headers):
        """Send one HTTP request and return (status, headers, raw body), or raise _TransportError."""
        try:
            response = open_url(
                url, data=data, headers=headers, method=method, timeout=self.timeout,
                validate_certs=self.validate_certs, http_agent=USER_AGENT, follow_redirects="urllib2",
            )
            status = response.getcode()
            response_headers = response.headers
            raw = response.read()
        except HTTPError as exc:
            status = exc.code
            response_headers = exc.headers
            try:
                raw = exc.read()
            except (http.client.HTTPException, OSError):
                raw = b""
        except URLError as exc:
            raise _transport_error_from_reason(exc.reason, url)
        except http.client.IncompleteRead as exc:
            raise _TransportError(
                "the response body was cut off after %d bytes%s"
                % (len(exc.partial), " (%d more expected)" % exc.expected if exc.expected else "")
            )
        except http.client.HTTPException as exc:
            raise _TransportError("the connection broke: %s" % (exc or type(exc).__name__))
        except UrlsConnectionError as exc:
            raise _TransportError("the connection failed: %s" % exc)
        except OSError as exc:
            raise _transport_error_from_reason(exc, url)
        return status, _lower_headers(response_headers), raw or b""

    def _decode(self, method, path, status, headers, raw):
        if not raw or not raw.strip():
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            detail = "%d bytes, Content-Type %s" % (len(raw), headers.get("content-type") or "not set")
            if path != "/auth":
                detail += ", starting %s" % _excerpt(raw)
            raise SoracomApiError(
                "SORACOM API %s %s returned HTTP %s with a body that is not valid JSON (%s). "
                "The response may have been cut off, or %s may not be a SORACOM API endpoint."
                % (method, path, status, detail, self.endpoint),
                status=status, method=method, path=path,
            )

    @staticmethod
    def _decode_error(raw):
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


def _sleep_seconds(seconds):
    # time.sleep is looked up at call time, so tests can patch it.
    time.sleep(seconds)


def _lower_headers(headers):
    if headers is None:
        return {}
    return dict((str(name).lower(), value) for name, value in headers.items())


def _excerpt(raw, limit=120):
    text = raw[:limit].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return repr(text + ("..." if len(raw) > limit else ""))


def _describe_api_message(code, message):
    # The caller ends the sentence, so drop the API message's own full stop.
    message = message.rstrip(". ") if message else message
    if code and message:
        return " [%s] %s" % (code, message)
    if message:
        return " %s" % message
    if code:
        return " [%s]" % code
    return ""


def _failure_message(method, path, attempts, failure, hint=None):
    failure = failure.rstrip(".")
    if attempts > 1:
        message = "SORACOM API request %s %s failed after %d attempts: %s." % (method, path, attempts, failure)
    else:
        message = "SORACOM API request %s %s failed: %s." % (method, path, failure)
    if hint:
        message += " " + hint
    return message


def _status_hint(status, client):
    if status == 401:
        if client.uses_auth_keys:
            return "The API rejected the session. Check that the auth key is still active."
        return "The API rejected api_key and token, and the token may have expired. Pass auth_key_id and auth_key instead."
    if status == 403:
        return "The credentials lack permission for this request. Check the permissions of the SAM user or auth key."
    if status == 429:
        return "The SORACOM API rate limit was still exceeded. Retry later, or raise the retries option."
    return None


def _transport_error_from_reason(reason, url):
    if isinstance(reason, ssl.SSLCertVerificationError):
        return _TransportError(
            "TLS certificate verification failed for %s (%s). Add the server's CA to the system trust store. "
            "validate_certs=false turns the check off and is meant for test servers only"
            % (urlsplit(url).netloc, getattr(reason, "verify_message", None) or reason),
            retryable=False,
        )
    if isinstance(reason, socket.gaierror):
        return _TransportError("the host name %s could not be resolved (%s)" % (urlsplit(url).hostname, reason),
                               not_sent=True)
    if isinstance(reason, ConnectionRefusedError):
        return _TransportError("the connection to %s was refused" % urlsplit(url).netloc, not_sent=True)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return _TransportError("no response within the timeout (%s)" % (reason or "timed out"))
    return _TransportError("the connection failed: %s" % (reason or type(reason).__name__))


# ---------------------------------------------------------------------------
# Module glue
# ---------------------------------------------------------------------------

def endpoint_from_params(params):
    """Return the API base URL from the endpoint and coverage_type options. Raise SoracomError if invalid."""
    endpoint = params.get("endpoint")
    if not endpoint:
        return COVERAGE_ENDPOINTS[params.get("coverage_type") or "jp"]
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SoracomError(
            "endpoint %r is not an http or https URL. Use a base URL such as https://api.soracom.io/v1." % endpoint
        )
    return endpoint.rstrip("/")


def client_from_params(params, log=None, warn=None):
    """Build a SoracomClient from the shared module options. Raise SoracomError on invalid values."""
    endpoint = endpoint_from_params(params)
    timeout = params.get("timeout")
    retries = params.get("retries")
    if timeout is not None and timeout <= 0:
        raise SoracomError("timeout must be a positive number of seconds, got %s." % timeout)
    if retries is not None and retries < 0:
        raise SoracomError("retries must be 0 or more, got %s." % retries)
    if warn is not None and endpoint.startswith("http://"):
        warn("endpoint %s uses plain HTTP, so SORACOM credentials travel unencrypted." % endpoint)
    reporter = RetryReporter(log or (lambda message: None), warn)
    return SoracomClient(
        endpoint,
        auth_key_id=params.get("auth_key_id"),
        auth_key=params.get("auth_key"),
        api_key=params.get("api_key"),
        token=params.get("token"),
        timeout=timeout if timeout is not None else 30,
        retries=retries if retries is not None else 5,
        validate_certs=params.get("validate_certs", True),
        language=params.get("language") or "en",
        retry_callback=reporter,
    )


class RunContext:
    """Module settings a resource function receives: check mode, diff mode and the warning callback."""

    def __init__(self, check_mode=False, diff=False, warn=None):
        self.check_mode = check_mode
        self.diff = diff
        self.warnings = []
        self._warn = warn

    def warn(self, message):
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)


def run_module(module, manage):
    """Run ``manage(client, params, context)`` for an AnsibleModule and exit with its result."""
    context = RunContext(check_mode=module.check_mode, diff=module._diff, warn=module.warn)
    try:
        client = client_from_params(module.params, log=module.log, warn=module.warn)
        result = manage(client, module.params, context)
    except SoracomApiError as exc:
        failure = dict(exc.result)
        failure.setdefault("changed", False)
        module.fail_json(msg=exc.message, error=exc.to_dict(), **failure)
    except SoracomError as exc:
        failure = dict(exc.result)
        failure.setdefault("changed", False)
        module.fail_json(msg=exc.message, **failure)
    module.exit_json(**result)


# ---------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------

def group_path(group_id, *parts):
    return "/groups/" + "/".join(quote(str(part), safe="") for part in (group_id,) + parts)


def find_groups_by_name(client, name):
    """Return every group whose ``name`` tag equals ``name`` exactly."""
    groups = client.paginate("/groups", query={"tag_name": "name", "tag_value": name})
    return [group for group in groups if (group.get("tags") or {}).get("name") == name]


def get_group(client, group_id):
    """Return the group with this id, or None when the API returns HTTP 404."""
    try:
        return client.get(group_path(group_id))
    except SoracomApiError as exc:
        if exc.status == 404:
            return None
        raise


def ambiguous_group_error(name, groups):
    ids = ", ".join(sorted(str(group.get("groupId")) for group in groups))
    return SoracomError(
        "%d SIM groups are named %r (group IDs: %s). Group names are not unique in SORACOM, so "
        "pass group_id, or rename or delete the extra groups." % (len(groups), name, ids)
    )


def resolve_group(client, group_id=None, group_name=None):
    """Return the group chosen by id or by name, or None when it does not exist.

    Raise SoracomError when several groups have the name.
    """
    if group_id:
        return get_group(client, group_id)
    groups = find_groups_by_name(client, group_name)
    if len(groups) > 1:
        raise ambiguous_group_error(group_name, groups)
    return groups[0] if groups else None


def describe_group(group):
    """Return the documented ``group`` result for an API Group object."""
    return dict(
        group_id=group.get("groupId"),
        tags=dict(group.get("tags") or {}),
        configuration=group.get("configuration") or {},
        operator_id=group.get("operatorId"),
        created_time=group.get("createdTime"),
        last_modified_time=group.get("lastModifiedTime"),
    )


def _group_label(group_id, group_name):
    return "group ID %s" % group_id if group_id else "group named %r" % group_name


def manage_group(client, params, context):
    """Create, retag or delete the SIM group whose ``name`` tag is ``params['name']``."""
    name = params["name"]
    tags = params.get("tags")
    purge_tags = params.get("purge_tags")
    state = params.get("state") or "present"

    if not name:
        raise SoracomError("name must not be empty.")
    wanted_tags = None
    if tags is not None:
        wanted_tags = {}
        for key, value in tags.items():
            if value is None:
                raise SoracomError("Tag %r has no value. SORACOM tag values are strings." % key)
            wanted_tags[str(key)] = value if isinstance(value, str) else str(value)
        if "name" in wanted_tags and wanted_tags["name"] != name:
            raise SoracomError(
                "tags contains name=%r, which differs from the name option %r. Set the group's name with name only."
                % (wanted_tags["name"], name)
            )
        wanted_tags.pop("name", None)

    groups = find_groups_by_name(client, name)
    if len(groups) > 1:
        raise ambiguous_group_error(name, groups)
    current = groups[0] if groups else None
    result = dict(changed=False)

    if state == "absent":
        if current is not None:
            result["changed"] = True
            if not context.check_mode:
                client.delete(group_path(current["groupId"]))
        if context.diff:
            result["diff"] = dict(
                before=_group_diff_view(current),
                after={},
            )
        return result

    if current is None:
        create_tags = dict(wanted_tags or {})
        create_tags["name"] = name
        result["changed"] = True
        if context.check_mode:
            group = dict(group_id=None, tags=create_tags, configuration={}, operator_id=client.operator_id,
                         created_time=None, last_modified_time=None)
        else:
            try:
                created = client.post("/groups", body={"tags": create_tags})
            except SoracomApiError as exc:
                if exc.status is None or exc.status >= 500:
                    exc.message += (
                        " The group may have been created anyway. Run the task again, and it finds the group by name."
                    )
                    exc.args = (exc.message,)
                raise
            group = describe_group(created)
        result["group"] = group
        if context.diff:
            result["diff"] = dict(before={}, after=dict(name=name, tags=create_tags))
        return result

    current_tags = dict(current.get("tags") or {})
    to_set = {}
    to_delete = []
    if wanted_tags is not None:
        to_set = dict((key, value) for key, value in wanted_tags.items() if current_tags.get(key) != value)
        if purge_tags:
            to_delete = sorted(key for key in current_tags if key != "name" and key not in wanted_tags)

    after_tags = dict(current_tags)
    after_tags.update(to_set)
    for key in to_delete:
        after_tags.pop(key, None)

    group = current
    if to_set or to_delete:
        result["changed"] = True
        if not context.check_mode:
            group_id = current["groupId"]
            if to_set:
                group = client.put(group_path(group_id, "tags"),
                                   body=[{"tagName": key, "tagValue": value} for key, value in sorted(to_set.items())])
            for key in to_delete:
                client.delete(group_path(group_id, "tags", key))
            if to_delete or not isinstance(group, dict):
                group = client.get(group_path(group_id))
        else:
            group = dict(current)
            group["tags"] = after_tags
    result["group"] = describe_group(group)
    if context.diff:
        result["diff"] = dict(before=_group_diff_view(current), after=dict(name=name, tags=after_tags))
    return result


def _group_diff_view(group):
    if group is None:
        return {}
    tags = dict(group.get("tags") or {})
    return dict(name=tags.get("name"), tags=tags)


# ---------------------------------------------------------------------------
# Credential sets
# ---------------------------------------------------------------------------

def describe_credential(credential):
    """Return the documented ``credential`` result, without secret fields."""
    secrets = credential.get("credentials") or {}
    described = dict(
        credentials_id=credential.get("credentialsId"),
        type=credential.get("type"),
        description=credential.get("description"),
        create_date_time=credential.get("createDateTime"),
        update_date_time=credential.get("updateDateTime"),
        last_used_date_time=credential.get("lastUsedDateTime"),
    )
    # The access key ID is an identifier, not a secret; the API may or may not return it.
    if isinstance(secrets, dict) and secrets.get("accessKeyId"):
        described["access_key_id"] = secrets["accessKeyId"]
    return described


def _fetch_credentials(client, credential_id=None):
    """Return the API's credential set objects, or only the one with ``credential_id``."""
    credentials = client.get("/credentials") or []
    if not isinstance(credentials, list):
        raise SoracomApiError("SORACOM API GET /credentials returned a JSON %s where a list was expected."
                              % type(credentials).__name__, method="GET", path="/credentials")
    if credential_id is not None:
        credentials = [item for item in credentials if item.get("credentialsId") == credential_id]
    return credentials


def list_credentials(client, credential_id=None):
    """Return the credential sets, or only the one with ``credential_id``, described without secrets."""
    return [describe_credential(item) for item in _fetch_credentials(client, credential_id)]


def manage_credential_info(client, params, context):
    return dict(changed=False, credentials=list_credentials(client, params.get("credential_id")))


def _credential_diff_view(described, replaced_secret=False):
    if described is None:
        return {}
    view = dict((key, described.get(key)) for key in ("credentials_id", "type", "description", "access_key_id")
                if described.get(key) is not None)
    if replaced_secret:
        view["secret_access_key"] = "(replaced)"
    return view


def manage_credential(client, params, context):
    """Create, replace or delete a credential set.

    A secret cannot be read back, so an existing set is written only with
    ``overwrite=always``. That mode writes on every run and always reports
    a change.
    """
    credential_id = params["credential_id"]
    credential_type = params.get("type") or "aws-credentials"
    description = params.get("description")
    access_key_id = params.get("access_key_id")
    secret_access_key = params.get("secret_access_key")
    overwrite = params.get("overwrite") or "on_create"
    state = params.get("state") or "present"

    if not credential_id:
        raise SoracomError("credential_id must not be empty.")
    has_secret = bool(access_key_id and secret_access_key)
    if state == "present" and overwrite == "always" and not has_secret:
        raise SoracomError(
            "overwrite=always replaces the secret of credential set %r, so access_key_id and "
            "secret_access_key are required." % credential_id
        )

    path = "/credentials/" + quote(credential_id, safe="")
    matches = _fetch_credentials(client, credential_id)
    current = describe_credential(matches[0]) if matches else None
    result = dict(changed=False)

    if state == "absent":
        if current is not None:
            result["changed"] = True
            if not context.check_mode:
                try:
                    client.delete(path)
                except SoracomApiError as exc:
                    if exc.status != 404:
                        raise
        if context.diff:
            result["diff"] = dict(before=_credential_diff_view(current), after={})
        return result

    body = None
    if has_secret:
        body = {
            "type": credential_type,
            "credentials": {"accessKeyId": access_key_id, "secretAccessKey": secret_access_key},
        }
        if description is not None:
            body["description"] = description

    if current is None:
        if not has_secret:
            raise SoracomError(
                "Credential set %r does not exist, and creating it needs access_key_id and "
                "secret_access_key. Nothing was written." % credential_id
            )
        result["changed"] = True
        after = dict(credentials_id=credential_id, type=credential_type, description=description,
                     access_key_id=access_key_id)
        if context.check_mode:
            result["credential"] = dict(after, create_date_time=None, update_date_time=None,
                                        last_used_date_time=None)
        else:
            created = client.post(path, body=body)
            result["credential"] = describe_credential(created or {"credentialsId": credential_id})
            result["credential"].setdefault("access_key_id", access_key_id)
        if context.diff:
            result["diff"] = dict(before={}, after=_credential_diff_view(after, replaced_secret=True))
        return result

    if overwrite == "always":
        result["changed"] = True
        after = dict(current, type=credential_type, access_key_id=access_key_id)
        if description is not None:
            after["description"] = description
        if context.check_mode:
            result["credential"] = after
        else:
            updated = client.put(path, body=body)
            result["credential"] = describe_credential(updated or {"credentialsId": credential_id})
            result["credential"].setdefault("access_key_id", access_key_id)
        if context.diff:
            result["diff"] = dict(before=_credential_diff_view(current),
                                  after=_credential_diff_view(after, replaced_secret=True))
        return result

    differences = []
    if current.get("type") != credential_type:
        differences.append("type is %r, not %r" % (current.get("type"), credential_type))
    if description is not None and current.get("description") != description:
        differences.append("description differs")
    if access_key_id and current.get("access_key_id") and current["access_key_id"] != access_key_id:
        differences.append("access key ID is %s, not %s" % (current["access_key_id"], access_key_id))
    if differences:
        context.warn(
            "Credential set %r exists and was left unchanged because overwrite=on_create (%s). "
            "Set overwrite=always with access_key_id and secret_access_key to replace it."
            % (credential_id, "; ".join(differences))
        )
    result["credential"] = current
    if context.diff:
        view = _credential_diff_view(current)
        result["diff"] = dict(before=view, after=view)
    return result


# ---------------------------------------------------------------------------
# SoracomKrypton group configuration
# ---------------------------------------------------------------------------

# Option names inside aws_iot and the keys of the AwsIot value on the wire.
# NOTE: SORACOM's OpenAPI spec does not describe the AwsIot value. region,
# credentialsId, policyName, thingNamePattern and host are the keys used in
# public "soracom groups put-config" examples. rootCaCertificate is unconfirmed:
# it follows the name of the Krypton bootstrap response field.
AWS_IOT_WIRE_KEYS = (
    ("region", "region"),
    ("credentials_id", "credentialsId"),
    ("policy_name", "policyName"),
    ("thing_name_pattern", "thingNamePattern"),
    ("host", "host"),
    ("root_ca_certificate", "rootCaCertificate"),
)


def known_aws_regions():
    """Return the region names in botocore's endpoint data, or None without botocore."""
    if not HAS_BOTOCORE:
        return None
    try:
        data = botocore.loaders.create_loader().load_data("endpoints")
    except Exception:  # pylint: disable=broad-except
        # Any failure to read botocore's data falls back to the name pattern.
        return None
    regions = set()
    for partition in data.get("partitions", []):
        regions.update(partition.get("regions", {}))
    return regions or None


def validate_region(region):
    """Raise SoracomError unless ``region`` is a known AWS region name."""
    known = known_aws_regions()
    if known is not None:
        if region not in known:
            raise SoracomError(
                "aws_iot.region %r is not an AWS region known to the installed botocore (%s). Check the "
                "spelling (for example ap-northeast-1), or upgrade botocore if the region is new."
                % (region, getattr(botocore, "__version__", "unknown version"))
            )
        return
    if not AWS_REGION_PATTERN.match(region):
        raise SoracomError(
            "aws_iot.region %r is not an AWS region name (such as ap-northeast-1 or us-gov-west-1)." % region
        )


def validate_aws_iot(aws_iot, warn):
    """Check aws_iot before any request. Raise SoracomError on the first invalid value."""
    pattern = aws_iot.get("thing_name_pattern")
    if pattern is not None and "$imsi" not in pattern:
        raise SoracomError(
            "aws_iot.thing_name_pattern %r does not contain $imsi. Without it every SIM of the group "
            "gets the same thing name. Use a pattern such as 'pi-$imsi'." % pattern
        )

    region = aws_iot.get("region")
    if region is not None:
        validate_region(region)

    host = aws_iot.get("host")
    if host is not None:
        normalized = host.lower().rstrip(".")
        labels = normalized.split(".")
        if (not normalized.endswith(AWS_HOST_SUFFIXES)
                or not all(HOSTNAME_LABEL_PATTERN.match(label) for label in labels)):
            raise SoracomError(
                "aws_iot.host %r is not an AWS IoT data endpoint host name ending in .amazonaws.com or "
                ".amazonaws.com.cn. Give the host name only, without scheme or port, as returned by "
                "'aws iot describe-endpoint --endpoint-type iot:Data-ATS'." % host
            )
        match = IOT_HOST_REGION_PATTERN.search(normalized)
        if match and region is not None and match.group(1) != region:
            raise SoracomError(
                "aws_iot.host %r is in region %s, but aws_iot.region is %s. Certificates Krypton creates "
                "in one region do not work at another region's endpoint." % (host, match.group(1), region)
            )
        if "-ats." not in normalized:
            warn(
                "aws_iot.host %r is not an ATS endpoint (its first label does not end in -ats). Devices "
                "using Amazon Root CA 1 fail TLS against a legacy endpoint. Use the iot:Data-ATS endpoint." % host
            )


def krypton_config_view(namespace):
    """Return the ``config`` result for the SoracomKrypton namespace of a group."""
    view = {}
    for key, value in (namespace or {}).items():
        if key == "AwsIot" and isinstance(value, dict):
            view["aws_iot"] = camel_dict_to_snake_dict(value)
        elif isinstance(value, dict):
            view[_snake(key)] = camel_dict_to_snake_dict(value)
        else:
            view[_snake(key)] = value
    return view


def _snake(name):
    return camel_dict_to_snake_dict({name: None}).popitem()[0]


def desired_krypton_namespace(current, enabled, aws_iot):
    """Return the SoracomKrypton keys and values the module would write.

    AwsIot starts from the current value, so keys this module does not manage
    and an unset root_ca_certificate keep their values.
    """
    desired = {"enabled": enabled}
    if aws_iot is not None:
        current_aws_iot = current.get("AwsIot")
        merged = dict(current_aws_iot) if isinstance(current_aws_iot, dict) else {}
        for option, wire_key in AWS_IOT_WIRE_KEYS:
            value = aws_iot.get(option)
            if value is not None:
                merged[wire_key] = value
        desired["AwsIot"] = merged
    return desired


def manage_krypton_config(client, params, context):
    """Set or remove the SoracomKrypton configuration of a group."""
    group_id = params.get("group_id")
    group_name = params.get("group_name")
    enabled = params.get("enabled")
    if enabled is None:
        enabled = True
    aws_iot = params.get("aws_iot")
    state = params.get("state") or "present"

    if bool(group_id) == bool(group_name):
        raise SoracomError("Give exactly one of group_id and group_name.")
    if state == "present" and aws_iot is not None:
        validate_aws_iot(aws_iot, context.warn)

    label = _group_label(group_id, group_name)
    group = resolve_group(client, group_id=group_id, group_name=group_name)
    result = dict(changed=False, group_id=group.get("groupId") if group else None)

    if group is None:
        if state == "absent":
            result["config"] = {}
            if context.diff:
                result["diff"] = dict(before={}, after={})
            return result
        if context.check_mode:
            # In check mode an earlier task may not have created the group yet.
            context.warn("The %s does not exist yet. Check mode assumes that an earlier task creates it." % label)
            desired = desired_krypton_namespace({}, enabled, aws_iot)
            result.update(changed=True, config=krypton_config_view(desired))
            if context.diff:
                result["diff"] = dict(before={}, after=krypton_config_view(desired))
            return result
        raise SoracomError(
            "The %s does not exist. Create it first, for example with soracom.krypton.soracom_group." % label
        )

    group_id = group["groupId"]
    current = dict((group.get("configuration") or {}).get(KRYPTON_NAMESPACE) or {})

    if state == "absent":
        keys = sorted(current)
        if keys:
            result["changed"] = True
            if not context.check_mode:
                for key in keys:
                    client.delete(group_path(group_id, "configuration", KRYPTON_NAMESPACE, key))
        result["config"] = {}
        if context.diff:
            result["diff"] = dict(before=krypton_config_view(current), after={})
        return result

    if aws_iot is not None and aws_iot.get("credentials_id"):
        _check_credential_set(client, aws_iot["credentials_id"], context)

    desired = desired_krypton_namespace(current, enabled, aws_iot)
    changes = [{"key": key, "value": value} for key, value in desired.items() if current.get(key) != value]
    after = dict(current)
    after.update(desired)

    if changes:
        result["changed"] = True
        if not context.check_mode:
            updated = client.put(group_path(group_id, "configuration", KRYPTON_NAMESPACE), body=changes)
            if isinstance(updated, dict) and isinstance(updated.get("configuration"), dict):
                after = dict(updated["configuration"].get(KRYPTON_NAMESPACE) or {})
    result["config"] = krypton_config_view(after)
    if context.diff:
        result["diff"] = dict(before=krypton_config_view(current), after=krypton_config_view(after))
    return result


def _check_credential_set(client, credentials_id, context):
    matches = list_credentials(client, credentials_id)
    if not matches:
        message = ("aws_iot.credentials_id %r names no SORACOM credential set, so Krypton could not call AWS. "
                   "Create it first, for example with soracom.krypton.soracom_credential." % credentials_id)
        if context.check_mode:
            context.warn(message + " Check mode assumes that an earlier task creates it.")
            return
        raise SoracomError(message)
    if matches[0].get("type") != "aws-credentials":
        raise SoracomError(
            "aws_iot.credentials_id %r is a credential set of type %r, but Krypton for AWS IoT needs type aws-credentials."
            % (credentials_id, matches[0].get("type"))
        )


# ---------------------------------------------------------------------------
# SIMs
# ---------------------------------------------------------------------------

def validate_sim_identifiers(imsis, sim_ids):
    """Raise SoracomError listing every IMSI and SIM ID that is malformed."""
    problems = []
    bad_imsis = [imsi for imsi in imsis if not IMSI_PATTERN.match(imsi)]
    bad_sim_ids = [sim_id for sim_id in sim_ids if not SIM_ID_PATTERN.match(sim_id)]
    if bad_imsis:
        problems.append("IMSIs must be exactly 15 digits: %s" % ", ".join(repr(item) for item in bad_imsis))
    if bad_sim_ids:
        problems.append("SIM IDs must be 18 to 20 digits: %s" % ", ".join(repr(item) for item in bad_sim_ids))
    if problems:
        raise SoracomError("Invalid SIM identifiers. " + ". ".join(problems) + ". Nothing was changed.")


def sim_imsis(sim):
    """Return every IMSI of an API Sim object, the primary IMSI first."""
    imsis = []

    def add(imsi):
        if imsi and imsi not in imsis:
            imsis.append(str(imsi))

    profiles = sim.get("profiles") or {}
    active = profiles.get(sim.get("activeProfileId")) if isinstance(profiles, dict) else None
    if isinstance(active, dict):
        add(active.get("primaryImsi"))
    add(sim.get("imsi"))
    if isinstance(profiles, dict):
        for profile in profiles.values():
            if not isinstance(profile, dict):
                continue
            add(profile.get("primaryImsi"))
            for key, subscriber in (profile.get("subscribers") or {}).items():
                add((subscriber or {}).get("imsi") or key)
    add((sim.get("sessionStatus") or {}).get("imsi"))
    return imsis


def sim_iccid(sim):
    if sim.get("iccid"):
        return sim["iccid"]
    if sim.get("activeProfileId"):
        return sim["activeProfileId"]
    profiles = sim.get("profiles") or {}
    for key, profile in profiles.items():
        return (profile or {}).get("iccid") or key
    return None


def describe_sim(sim):
    """Return the documented ``sims`` item of soracom_sim_info for an API Sim object."""
    imsis = sim_imsis(sim)
    session = sim.get("sessionStatus") or {}
    return dict(
        sim_id=sim.get("simId"),
        iccid=sim_iccid(sim),
        imsi=imsis[0] if imsis else None,
        imsis=imsis,
        group_id=sim.get("groupId"),
        status=sim.get("status"),
        tags=dict(sim.get("tags") or {}),
        speed_class=sim.get("speedClass"),
        session_status=dict(
            online=bool(session.get("online")),
            ip_address=session.get("ueIpAddress"),
        ),
    )


def list_sims(client):
    return client.paginate("/sims")


def _unique(values):
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _string_list(values):
    return [str(value).strip() for value in (values or [])]


def select_sims(sims, imsis, sim_ids):
    """Find the SIMs named by IMSI or SIM ID.

    Return (matches, unknown). ``matches`` lists (Sim object, IMSI it was named
    by or None) in input order, SIM IDs first, each SIM once. ``unknown``
    lists the identifiers no SIM has.
    """
    by_sim_id = {}
    by_imsi = {}
    for sim in sims:
        if sim.get("simId"):
            by_sim_id[str(sim["simId"])] = sim
        for imsi in sim_imsis(sim):
            by_imsi[imsi] = sim

    matches = []
    matched_ids = set()
    unknown = []
    for kind, identifiers, index in (("SIM ID", sim_ids, by_sim_id), ("IMSI", imsis, by_imsi)):
        for identifier in identifiers:
            sim = index.get(identifier)
            if sim is None:
                unknown.append("%s %s" % (kind, identifier))
                continue
            if sim.get("simId") not in matched_ids:
                matched_ids.add(sim.get("simId"))
                matches.append((sim, identifier if kind == "IMSI" else None))
    return matches, unknown


def manage_sim(client, params, context):
    """Put SIMs into a group, or take them out of their group."""
    imsis = _unique(_string_list(params.get("imsis")))
    sim_ids = _unique(_string_list(params.get("sim_ids")))
    group_id = params.get("group_id")
    group_name = params.get("group_name")
    state = params.get("state") or "present"

    if not imsis and not sim_ids:
        raise SoracomError("Give at least one SIM in imsis or sim_ids.")
    validate_sim_identifiers(imsis, sim_ids)
    if group_id and group_name:
        raise SoracomError("group_id and group_name are mutually exclusive.")
    if state == "present" and not (group_id or group_name):
        raise SoracomError("state=present needs group_id or group_name: the group to put the SIMs in.")

    sims, unknown = select_sims(list_sims(client), imsis, sim_ids)
    if unknown:
        raise SoracomError(
            "%d SIM(s) not found in this SORACOM account: %s. Nothing was changed."
            % (len(unknown), ", ".join(unknown))
        )

    target_group_id = None
    group_missing = False
    if group_id or group_name:
        group = resolve_group(client, group_id=group_id, group_name=group_name)
        if group is None:
            group_missing = True
            label = _group_label(group_id, group_name)
            if state == "present":
                if not context.check_mode:
                    raise SoracomError(
                        "The %s does not exist. Create it first, for example with soracom.krypton.soracom_group. "
                        "Nothing was changed." % label
                    )
                context.warn("The %s does not exist yet. Check mode assumes that an earlier task creates it." % label)
        else:
            target_group_id = group["groupId"]

    plan = []
    for sim, matched_imsi in sims:
        before = sim.get("groupId")
        if state == "present":
            needs_change = group_missing or before != target_group_id
            after = target_group_id if needs_change else before
        elif group_id or group_name:
            needs_change = not group_missing and before is not None and before == target_group_id
            after = None if needs_change else before
        else:
            needs_change = before is not None
            after = None
        imsis_of_sim = sim_imsis(sim)
        plan.append(dict(
            sim_id=sim.get("simId"),
            imsi=matched_imsi or (imsis_of_sim[0] if imsis_of_sim else None),
            group_id_before=before,
            group_id=after,
            changed=needs_change,
        ))

    done = []
    for item in plan:
        if item["changed"] and not context.check_mode:
            path = "/sims/" + quote(item["sim_id"], safe="")
            try:
                if state == "present":
                    updated = client.post(path + "/set_group", body={"groupId": target_group_id}, idempotent=True)
                else:
                    updated = client.post(path + "/unset_group", idempotent=True)
            except SoracomApiError as exc:
                changed_so_far = [entry for entry in done if entry["changed"]]
                exc.message += " %d SIM(s) had already been changed before this failure, see sims." % len(changed_so_far)
                exc.args = (exc.message,)
                exc.result = dict(changed=bool(changed_so_far), sims=done)
                raise
            if isinstance(updated, dict) and "groupId" in updated:
                item["group_id"] = updated.get("groupId")
        done.append(item)

    result = dict(changed=any(item["changed"] for item in plan), sims=plan)
    if context.diff:
        result["diff"] = dict(
            before=dict((item["sim_id"], item["group_id_before"]) for item in plan),
            after=dict((item["sim_id"], item["group_id"]) for item in plan),
        )
    return result


def manage_sim_info(client, params, context):
    """Return the SIMs that match every given filter."""
    imsis = _unique(_string_list(params.get("imsis")))
    sim_ids = _unique(_string_list(params.get("sim_ids")))
    group_id = params.get("group_id")
    group_name = params.get("group_name")
    tag_name = params.get("tag_name")
    tag_value = params.get("tag_value")
    validate_sim_identifiers(imsis, sim_ids)

    group_ids = None
    if group_id:
        group_ids = {group_id}
    elif group_name:
        group_ids = set(group.get("groupId") for group in find_groups_by_name(client, group_name))
        if not group_ids:
            return dict(changed=False, sims=[])

    selected = []
    for sim in list_sims(client):
        described = describe_sim(sim)
        if sim_ids and described["sim_id"] not in sim_ids:
            continue
        if imsis and not set(imsis) & set(described["imsis"]):
            continue
        if group_ids is not None and described["group_id"] not in group_ids:
            continue
        if tag_name is not None and described["tags"].get(tag_name) != tag_value:
            continue
        selected.append(described)
    return dict(changed=False, sims=selected)
