# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SORACOM API client shared by the soracom_* modules.

The client authenticates once per module run, retries rate-limited and
failed requests with jittered exponential backoff, follows the API's paging
header and reports every failure as SoracomApiError. The resource logic of
the modules lives in _soracom_groups, _soracom_credentials and _soracom_sims:
functions that take a client and plain option values, so unit tests can call
them without AnsibleModule.

This module is private to this collection and may change any time.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import ssl
import time
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.soracom.krypton.plugins.module_utils._retry import (
    SERVER_WAIT_JITTER,
    RetryReporter,
    gave_up_sentence,
    server_requested_delay,
)


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
# No retry starts when the time since the first attempt, plus the next wait and
# the next attempt's timeout, would pass this many seconds.
RETRY_TIME_LIMIT = 300.0

# Token lifetime in seconds that POST /auth accepts (tokenTimeoutSeconds in the
# SORACOM API reference: default 86400, maximum 172800).
TOKEN_TIMEOUT_DEFAULT = 86400
TOKEN_TIMEOUT_MAX = 172800

# Page size requested from list endpoints. The server may return fewer items per page.
PAGE_SIZE = 100
# Upper bound on pages followed in one listing (one million items at full pages).
MAX_PAGES = 10000


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
        session=dict(
            type="dict",
            no_log=True,
            options=dict(
                api_key=dict(type="str", required=True, no_log=True),
                token=dict(type="str", required=True, no_log=True),
            ),
        ),
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
            ["session", "api_key"],
            ["session", "token"],
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
    ``api_key`` and ``token`` pair skips /auth. When the API rejects that pair
    with HTTP 401 and the auth key is set too, the client starts a new session
    once and sends the request again. Requests that fail with HTTP
    429, a retryable 5xx or a connection error are sent again up to
    ``retries`` times, after the wait the response requests (plus up to
    SERVER_WAIT_JITTER seconds) or a jittered exponential backoff. No retry
    starts when it could end more than ``retry_time_limit`` seconds after the
    first attempt began. ``retry_callback`` receives one line per retry.
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

    def authenticate(self, token_timeout=None):
        """Start a session with POST /auth unless one exists. Raise SoracomError without credentials.

        ``token_timeout`` is the token's lifetime in seconds (``tokenTimeoutSeconds``); None
        leaves the API's default of 86400.
        """
        if self._api_key and self._token:
            return
        if not self.uses_auth_keys:
            raise SoracomError(
                "No SORACOM credentials were given. Set auth_key_id and auth_key "
                "(or the environment variables SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY), "
                "or api_key and token of an existing session."
            )
        body = {"authKeyId": self._auth_key_id, "authKey": self._auth_key}
        if token_timeout is not None:
            body["tokenTimeoutSeconds"] = token_timeout
        try:
            response = self.request("POST", "/auth", body=body, authenticated=False, idempotent=True)
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

    def forget_session(self):
        """Drop the current session, so the next request starts a new one with the auth key."""
        self._api_key = self._token = None

    def session(self):
        """Return the (api_key, token) pair of the current session, or (None, None)."""
        return self._api_key, self._token

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
                        _failure_message(method, display_path, attempt, failure, gave_up=retryable),
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
                                         hint=_status_hint(status, self), gave_up=retryable),
                        status=status, code=code, api_message=api_message,
                        method=method, path=display_path, attempts=attempt,
                    )
                delay = server_requested_delay(response_headers)
                if delay is None:
                    delay = backoff_delay(attempt, self._rand)
                else:
                    delay += self._rand() * SERVER_WAIT_JITTER

            spent = max(self._clock() - started, waited)
            if spent + delay + self.timeout > self.retry_time_limit:
                reason = ("the next wait (%.1f s) and request (timeout %d s) would pass the %d s retry time limit"
                          % (delay, self.timeout, self.retry_time_limit))
                raise SoracomApiError(
                    _failure_message(method, display_path, attempt, failure, gave_up=True, gave_up_reason=reason),
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


def _failure_message(method, path, attempts, failure, hint=None, gave_up=False, gave_up_reason=None):
    """Build the message of a failed request.

    ``gave_up`` is True when the failure could have been retried but the retries or the
    time limit ran out. The message then ends with "Gave up after N attempts", as the
    Krypton client's does.
    """
    failure = failure.rstrip(".")
    if attempts > 1 and not gave_up:
        message = "SORACOM API request %s %s failed on attempt %d: %s." % (method, path, attempts, failure)
    else:
        message = "SORACOM API request %s %s failed: %s." % (method, path, failure)
    if gave_up:
        message += " " + gave_up_sentence(attempts, gave_up_reason)
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
    # A session from soracom_auth comes with the auth key in the cloud role's
    # module_defaults, so an expired token is replaced by one new /auth.
    session = params.get("session") or {}
    return SoracomClient(
        endpoint,
        auth_key_id=params.get("auth_key_id"),
        auth_key=params.get("auth_key"),
        api_key=session.get("api_key") or params.get("api_key"),
        token=session.get("token") or params.get("token"),
        timeout=timeout if timeout is not None else 30,
        retries=retries if retries is not None else 5,
        validate_certs=params.get("validate_certs", True),
        language=params.get("language") or "en",
        retry_callback=reporter,
    )


def start_session(client, params, context):
    """Start a new API session with the auth key and return it for soracom_auth's result.

    The result contains the API key and token, so the task that registers it
    must set no_log.
    """
    token_timeout = params.get("token_timeout")
    if token_timeout is not None and not 1 <= token_timeout <= TOKEN_TIMEOUT_MAX:
        raise SoracomError("token_timeout must be from 1 to %d seconds, got %s." % (TOKEN_TIMEOUT_MAX, token_timeout))
    if not client.uses_auth_keys:
        raise SoracomError(
            "soracom_auth needs auth_key_id and auth_key (or the environment variables SORACOM_AUTH_KEY_ID "
            "and SORACOM_AUTH_KEY) to start a session."
        )
    client.forget_session()
    client.authenticate(token_timeout=token_timeout)
    api_key, token = client.session()
    return dict(
        changed=False,
        session=dict(api_key=api_key, token=token),
        operator_id=client.operator_id,
        endpoint=client.endpoint,
        token_timeout=token_timeout if token_timeout is not None else TOKEN_TIMEOUT_DEFAULT,
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
