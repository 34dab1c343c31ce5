# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import email.utils
import http.client
import io
import json
import socket
import ssl
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils import _soracom_api as api
from ansible_collections.soracom.krypton.plugins.module_utils import _soracom_groups as groups
from ansible_collections.soracom.krypton.plugins.module_utils import _soracom_sims as sims
from ansible_collections.soracom.krypton.plugins.module_utils._soracom_api import (
    RetryReporter,
    RunContext,
    SoracomApiError,
    SoracomClient,
    SoracomError,
)

ENDPOINT = "https://api.soracom.test/v1"
AUTH_KEY_ID = "keyId-0123456789abcdef0123456789abcdef"
AUTH_KEY = "secret-must-never-appear"
AUTH_OK = (200, {}, {"apiKey": "api-1", "token": "token-1", "operatorId": "OP0099000001"})


class FakeResponse:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self._raw = raw

    def getcode(self):
        return self.status

    def read(self):
        if isinstance(self._raw, Exception):
            raise self._raw
        return self._raw


class ScriptedHttp:
    """Stands in for open_url: returns scripted responses in order and records the requests.

    A script item is (status, headers, body) where body is a JSON value, raw
    bytes or None, or an exception to raise.
    """

    def __init__(self, *script):
        self.script = list(script)
        self.requests = []

    def open_url(self, url, data=None, headers=None, method=None, **kwargs):
        self.requests.append(dict(url=url, method=method, headers=dict(headers or {}),
                                  body=json.loads(data) if data else None, kwargs=kwargs))
        if not self.script:
            raise AssertionError("unexpected request %s %s" % (method, url))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        status, headers, body = item
        if isinstance(body, (bytes, Exception)):
            raw = body
        else:
            raw = b"" if body is None else json.dumps(body).encode("utf-8")
        if status >= 400:
            raise HTTPError(url, status, "error", headers, io.BytesIO(raw))
        return FakeResponse(status, headers, raw)

    def paths(self):
        return ["%s %s" % (request["method"], request["url"][len(ENDPOINT):]) for request in self.requests]


@pytest.fixture
def sleeps(monkeypatch):
    recorded = []
    monkeypatch.setattr(api.time, "sleep", recorded.append)
    return recorded


def make_client(monkeypatch, *script, **kwargs):
    http = ScriptedHttp(*script)
    monkeypatch.setattr(api, "open_url", http.open_url)
    options = dict(auth_key_id=AUTH_KEY_ID, auth_key=AUTH_KEY, rand=lambda: 0.5)
    options.update(kwargs)
    return SoracomClient(ENDPOINT, **options), http


# -- argument spec -------------------------------------------------------------

def test_argument_spec_options():
    spec = api.soracom_argument_spec()
    assert sorted(spec) == sorted([
        "auth_key_id", "auth_key", "api_key", "token", "session", "coverage_type", "endpoint",
        "timeout", "retries", "validate_certs", "language",
    ])
    assert spec["coverage_type"]["default"] == "jp"
    assert spec["timeout"]["default"] == 30
    assert spec["retries"]["default"] == 5
    assert spec["validate_certs"]["default"] is True
    assert spec["language"]["choices"] == ["en", "ja"]


@pytest.mark.parametrize("option", ["auth_key", "api_key", "token", "session"])
def test_argument_spec_secrets_no_log(option):
    assert api.soracom_argument_spec()[option]["no_log"] is True


@pytest.mark.parametrize("option", ["api_key", "token"])
def test_argument_spec_session_parts_no_log(option):
    assert api.soracom_argument_spec()["session"]["options"][option]["no_log"] is True


@pytest.mark.parametrize("option, variable", [
    ("auth_key_id", "SORACOM_AUTH_KEY_ID"),
    ("auth_key", "SORACOM_AUTH_KEY"),
    ("coverage_type", "SORACOM_COVERAGE_TYPE"),
    ("endpoint", "SORACOM_ENDPOINT"),
])
def test_argument_spec_env_fallbacks(option, variable):
    fallback = api.soracom_argument_spec()[option]["fallback"]
    assert fallback[1] == [variable]


def test_module_kwargs_merge_constraints():
    kwargs = api.soracom_module_kwargs(mutually_exclusive=[["a", "b"]], required_one_of=[["a", "b"]])
    assert ["auth_key_id", "api_key"] in kwargs["mutually_exclusive"]
    assert ["auth_key", "token"] in kwargs["mutually_exclusive"]
    assert ["a", "b"] in kwargs["mutually_exclusive"]
    assert ["api_key", "token"] in kwargs["required_together"]
    assert kwargs["required_one_of"] == [["a", "b"]]
    assert kwargs["supports_check_mode"] is True


@pytest.mark.parametrize("params, expected", [
    (dict(coverage_type="jp"), "https://api.soracom.io/v1"),
    (dict(coverage_type="g"), "https://g.api.soracom.io/v1"),
    (dict(coverage_type="g", endpoint="https://127.0.0.1:8443/v1/"), "https://127.0.0.1:8443/v1"),
])
def test_endpoint_from_params(params, expected):
    assert api.endpoint_from_params(params) == expected


def test_endpoint_from_params_rejects_other_schemes():
    with pytest.raises(SoracomError, match="not an http or https URL"):
        api.endpoint_from_params(dict(endpoint="ftp://api.soracom.io/v1"))


@pytest.mark.parametrize("params, message", [
    (dict(timeout=0), "timeout must be a positive number"),
    (dict(retries=-1), "retries must be 0 or more"),
])
def test_client_from_params_rejects_bad_numbers(params, message):
    with pytest.raises(SoracomError, match=message):
        api.client_from_params(params)


def test_client_from_params_warns_on_plain_http():
    warnings = []
    api.client_from_params(dict(endpoint="http://127.0.0.1:8080/v1"), warn=warnings.append)
    assert len(warnings) == 1
    assert "plain HTTP" in warnings[0]


# -- authentication ------------------------------------------------------------

def test_auth_once_and_session_reused(monkeypatch):
    client, http = make_client(monkeypatch, AUTH_OK, (200, {}, []), (200, {}, {"groupId": "g1"}))
    client.get("/credentials")
    client.get("/groups/g1")
    assert http.paths() == ["POST /auth", "GET /credentials", "GET /groups/g1"]
    assert http.requests[0]["body"] == {"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY}
    for request in http.requests[1:]:
        assert request["headers"]["X-Soracom-API-Key"] == "api-1"
        assert request["headers"]["X-Soracom-Token"] == "token-1"
    assert client.operator_id == "OP0099000001"


def test_auth_request_has_no_session_headers(monkeypatch):
    client, http = make_client(monkeypatch, AUTH_OK, (200, {}, []))
    client.get("/credentials")
    assert "X-Soracom-API-Key" not in http.requests[0]["headers"]
    assert "X-Soracom-Token" not in http.requests[0]["headers"]


def test_api_key_and_token_skip_auth(monkeypatch):
    client, http = make_client(monkeypatch, (200, {}, []), auth_key_id=None, auth_key=None,
                               api_key="api-x", token="token-x")
    client.get("/sims")
    assert http.paths() == ["GET /sims"]
    assert http.requests[0]["headers"]["X-Soracom-API-Key"] == "api-x"


def test_language_header_sent(monkeypatch):
    client, http = make_client(monkeypatch, AUTH_OK, (200, {}, []), language="ja")
    client.get("/sims")
    assert all(request["headers"]["X-Soracom-Lang"] == "ja" for request in http.requests)


def test_request_options_passed_to_open_url(monkeypatch):
    client, http = make_client(monkeypatch, AUTH_OK, (200, {}, []), timeout=7, validate_certs=False)
    client.get("/sims")
    assert http.requests[1]["kwargs"]["timeout"] == 7
    assert http.requests[1]["kwargs"]["validate_certs"] is False


def test_auth_failure_message(monkeypatch):
    client, http = make_client(monkeypatch, (401, {}, {"code": "AUM0002", "message": "Invalid credentials"}))
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    error = excinfo.value
    assert error.status == 401
    assert error.code == "AUM0002"
    assert error.path == "/auth"
    assert "SORACOM authentication failed for auth key ID %s" % AUTH_KEY_ID in error.message
    assert "[AUM0002] Invalid credentials" in error.message
    assert "Check auth_key_id and auth_key" in error.message
    assert AUTH_KEY not in error.message
    assert AUTH_KEY not in json.dumps(error.to_dict())
    assert http.paths() == ["POST /auth"]


def test_auth_response_without_token(monkeypatch):
    client, dummy = make_client(monkeypatch, (200, {}, {"operatorId": "OP1"}))
    with pytest.raises(SoracomApiError, match="returned no apiKey and token"):
        client.get("/sims")


def test_missing_credentials_error(monkeypatch):
    client, http = make_client(monkeypatch, auth_key_id=None, auth_key=None)
    with pytest.raises(SoracomError, match="No SORACOM credentials were given"):
        client.get("/sims")
    assert http.requests == []


def test_expired_session_renewed_once(monkeypatch):
    client, http = make_client(
        monkeypatch,
        AUTH_OK,
        (401, {}, {"code": "AUM0003", "message": "Token expired"}),
        (200, {}, {"apiKey": "api-2", "token": "token-2"}),
        (200, {}, []),
    )
    assert client.get("/sims") == []
    assert http.paths() == ["POST /auth", "GET /sims", "POST /auth", "GET /sims"]
    assert http.requests[3]["headers"]["X-Soracom-Token"] == "token-2"


def test_session_option_skips_auth(monkeypatch):
    http = ScriptedHttp((200, {}, []))
    monkeypatch.setattr(api, "open_url", http.open_url)
    client = api.client_from_params(dict(endpoint=ENDPOINT, auth_key_id=AUTH_KEY_ID, auth_key=AUTH_KEY,
                                         session=dict(api_key="api-s", token="token-s")))
    assert client.get("/sims") == []
    assert http.paths() == ["GET /sims"]
    assert http.requests[0]["headers"]["X-Soracom-API-Key"] == "api-s"
    assert http.requests[0]["headers"]["X-Soracom-Token"] == "token-s"


def test_expired_session_option_renewed_once(monkeypatch):
    http = ScriptedHttp(
        (401, {}, {"code": "AUM0003", "message": "Token expired"}),
        (200, {}, {"apiKey": "api-2", "token": "token-2"}),
        (200, {}, []),
        (200, {}, []),
    )
    monkeypatch.setattr(api, "open_url", http.open_url)
    client = api.client_from_params(dict(endpoint=ENDPOINT, auth_key_id=AUTH_KEY_ID, auth_key=AUTH_KEY,
                                         session=dict(api_key="api-s", token="token-s")))
    assert client.get("/sims") == []
    assert client.get("/groups") == []
    assert http.paths() == ["GET /sims", "POST /auth", "GET /sims", "GET /groups"]
    assert http.requests[3]["headers"]["X-Soracom-Token"] == "token-2"


def test_session_renewed_at_most_once(monkeypatch):
    expired = (401, {}, {"code": "AUM0003", "message": "Token expired"})
    client, http = make_client(monkeypatch, expired, AUTH_OK, expired, api_key="api-s", token="token-s")
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert excinfo.value.status == 401
    assert http.paths() == ["GET /sims", "POST /auth", "GET /sims"]


def test_module_kwargs_session_excludes_api_key():
    exclusive = api.soracom_module_kwargs()["mutually_exclusive"]
    assert ["session", "api_key"] in exclusive
    assert ["session", "token"] in exclusive
    assert ["session", "auth_key_id"] not in exclusive


def test_rejected_token_not_renewed_without_keys(monkeypatch):
    client, http = make_client(monkeypatch, (401, {}, {"code": "AUM0003", "message": "Token expired"}),
                               auth_key_id=None, auth_key=None, api_key="api-x", token="token-x")
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert excinfo.value.status == 401
    assert "token may have expired" in excinfo.value.message
    assert len(http.requests) == 1


# -- paging --------------------------------------------------------------------

def test_paginate_follows_next_key(monkeypatch):
    client, http = make_client(
        monkeypatch,
        AUTH_OK,
        (200, {"X-Soracom-Next-Key": "k1"}, [{"simId": "1"}, {"simId": "2"}]),
        (200, {"x-soracom-next-key": "k2"}, [{"simId": "3"}]),
        (200, {}, [{"simId": "4"}]),
    )
    items = client.paginate("/sims", query={"tag_name": "name"})
    assert [item["simId"] for item in items] == ["1", "2", "3", "4"]
    urls = [request["url"] for request in http.requests[1:]]
    assert "last_evaluated_key" not in urls[0]
    assert "limit=100" in urls[0]
    assert "tag_name=name" in urls[0]
    assert "last_evaluated_key=k1" in urls[1]
    assert "last_evaluated_key=k2" in urls[2]


def test_paginate_stops_on_repeated_key(monkeypatch):
    client, dummy = make_client(
        monkeypatch,
        AUTH_OK,
        (200, {"x-soracom-next-key": "k1"}, [{"simId": "1"}]),
        (200, {"x-soracom-next-key": "k1"}, [{"simId": "1"}]),
    )
    with pytest.raises(SoracomApiError, match="returned the paging key 'k1' twice"):
        client.paginate("/sims")


def test_paginate_rejects_non_list(monkeypatch):
    client, dummy = make_client(monkeypatch, AUTH_OK, (200, {}, {"simId": "1"}))
    with pytest.raises(SoracomApiError, match="returned a JSON dict where a list was expected"):
        client.paginate("/sims")


def test_paginate_page_limit(monkeypatch):
    client, dummy = make_client(
        monkeypatch,
        AUTH_OK,
        (200, {"x-soracom-next-key": "k1"}, []),
        (200, {"x-soracom-next-key": "k2"}, []),
    )
    with pytest.raises(SoracomApiError, match="more than 2 pages"):
        client.paginate("/sims", max_pages=2)


# -- retries -------------------------------------------------------------------

def test_retry_429_honours_retry_after(monkeypatch, sleeps):
    messages = []
    client, http = make_client(
        monkeypatch,
        AUTH_OK,
        (429, {"Retry-After": "7"}, {"code": "RAT0001", "message": "Too many requests"}),
        (200, {}, []),
        retry_callback=messages.append,
    )
    assert client.get("/sims") == []
    assert sleeps == [7.5]
    assert len(messages) == 1
    assert "GET /sims failed (HTTP 429 [RAT0001] Too many requests). Retrying in 7.5 s (attempt 2 of 6)" in messages[0]


def test_retry_429_honours_ratelimit_reset(monkeypatch, sleeps):
    client, dummy = make_client(
        monkeypatch,
        AUTH_OK,
        (429, {"X-Soracom-Ratelimit-Reset": "12"}, {"code": "RAT0001", "message": "Too many requests"}),
        (200, {}, []),
    )
    client.get("/sims")
    assert sleeps == [12.5]


def test_retry_429_honours_seconds_before_refresh(monkeypatch, sleeps):
    client, dummy = make_client(
        monkeypatch,
        AUTH_OK,
        (429, {"X-Soracom-Ratelimit-Seconds-Before-Refresh": "20", "Retry-After": "3"}, None),
        (200, {}, []),
    )
    client.get("/sims")
    assert sleeps == [20.5]


def test_retry_429_without_headers_backs_off(monkeypatch, sleeps):
    client, dummy = make_client(
        monkeypatch,
        AUTH_OK,
        (429, {}, None),
        (429, {}, None),
        (429, {}, None),
        (200, {}, []),
    )
    client.get("/sims")
    # rand() returns 0.5, so each wait is three quarters of its ceiling (2, 4, 8 s).
    assert sleeps == [1.5, 3.0, 6.0]


def test_retry_5xx_then_success(monkeypatch, sleeps):
    client, http = make_client(monkeypatch, AUTH_OK, (503, {}, b"<html>busy</html>"), (500, {}, None), (200, {}, {"ok": 1}))
    assert client.get("/groups/g1") == {"ok": 1}
    assert len(sleeps) == 2
    assert http.paths().count("GET /groups/g1") == 3


def test_retry_gives_up_with_attempt_count(monkeypatch, sleeps):
    messages = []
    client, dummy = make_client(
        monkeypatch,
        AUTH_OK,
        *[(503, {}, {"code": "SYS0001", "message": "Service unavailable"})] * 3,
        retries=2, retry_callback=messages.append,
    )
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    error = excinfo.value
    assert error.attempts == 3
    assert error.status == 503
    assert error.code == "SYS0001"
    assert error.message == (
        "SORACOM API request GET /sims failed: HTTP 503 [SYS0001] Service unavailable. Gave up after 3 attempts."
    )
    assert len(sleeps) == 2
    assert len(messages) == 2


def test_retry_429_exhausted_has_hint(monkeypatch, sleeps):
    client, dummy = make_client(monkeypatch, AUTH_OK, (429, {}, None), (429, {}, None), retries=1)
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert "failed: HTTP 429. Gave up after 2 attempts." in excinfo.value.message
    assert "rate limit was still exceeded" in excinfo.value.message


def test_zero_retries_single_attempt(monkeypatch, sleeps):
    client, dummy = make_client(monkeypatch, AUTH_OK, (500, {}, None), retries=0)
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert excinfo.value.attempts == 1
    assert "failed: HTTP 500" in excinfo.value.message
    assert sleeps == []


def test_client_errors_not_retried(monkeypatch, sleeps):
    client, dummy = make_client(monkeypatch, AUTH_OK, (404, {}, {"code": "GRP0001", "message": "Not found"}))
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/groups/missing")
    assert excinfo.value.status == 404
    assert excinfo.value.attempts == 1
    assert sleeps == []


def test_non_idempotent_post_not_retried_on_5xx(monkeypatch, sleeps):
    client, http = make_client(monkeypatch, AUTH_OK, (500, {}, None))
    with pytest.raises(SoracomApiError) as excinfo:
        client.post("/groups", body={"tags": {"name": "x"}})
    assert excinfo.value.attempts == 1
    assert http.paths() == ["POST /auth", "POST /groups"]


def test_non_idempotent_post_retried_on_429(monkeypatch, sleeps):
    client, http = make_client(monkeypatch, AUTH_OK, (429, {"Retry-After": "1"}, None), (201, {}, {"groupId": "g"}))
    assert client.post("/groups", body={"tags": {"name": "x"}}) == {"groupId": "g"}
    assert http.paths() == ["POST /auth", "POST /groups", "POST /groups"]


def test_non_idempotent_post_retried_when_refused(monkeypatch, sleeps):
    client, http = make_client(
        monkeypatch, AUTH_OK, URLError(ConnectionRefusedError(111, "Connection refused")), (201, {}, {"groupId": "g"}),
    )
    assert client.post("/groups", body={"tags": {"name": "x"}}) == {"groupId": "g"}
    assert len(sleeps) == 1


def test_non_idempotent_post_not_retried_on_timeout(monkeypatch, sleeps):
    client, dummy = make_client(monkeypatch, AUTH_OK, URLError(socket.timeout("timed out")))
    with pytest.raises(SoracomApiError) as excinfo:
        client.post("/groups", body={"tags": {"name": "x"}})
    assert "no response within the timeout" in excinfo.value.message
    assert excinfo.value.status is None


def test_connection_errors_retried_for_get(monkeypatch, sleeps):
    client, dummy = make_client(
        monkeypatch,
        AUTH_OK,
        URLError(socket.timeout("timed out")),
        http.client.RemoteDisconnected("Remote end closed connection without response"),
        ConnectionResetError(104, "Connection reset by peer"),
        (200, {}, []),
    )
    assert client.get("/sims") == []
    assert len(sleeps) == 3


def test_connection_errors_give_up_message(monkeypatch, sleeps):
    client, dummy = make_client(monkeypatch, AUTH_OK, *[URLError(ConnectionRefusedError(111, "refused"))] * 2, retries=1)
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert excinfo.value.message == (
        "SORACOM API request GET /sims failed: the connection to api.soracom.test was refused. Gave up after 2 attempts."
    )
    assert excinfo.value.attempts == 2


def test_certificate_error_not_retried(monkeypatch, sleeps):
    failure = ssl.SSLCertVerificationError(1, "certificate verify failed")
    failure.verify_message = "self-signed certificate"
    client, http = make_client(monkeypatch, URLError(failure))
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert "TLS certificate verification failed for api.soracom.test (self-signed certificate)" in excinfo.value.message
    assert "validate_certs=false" in excinfo.value.message
    assert sleeps == []
    assert len(http.requests) == 1


def test_unresolvable_host_message(monkeypatch, sleeps):
    client, dummy = make_client(monkeypatch, *[URLError(socket.gaierror(-2, "Name or service not known"))] * 2,
                                retries=1)
    with pytest.raises(SoracomApiError, match="the host name api.soracom.test could not be resolved"):
        client.get("/sims")


def test_retry_time_limit_stops_early(monkeypatch, sleeps):
    client, dummy = make_client(
        monkeypatch,
        AUTH_OK,
        (429, {"Retry-After": "60"}, None),
        (429, {"Retry-After": "60"}, None),
        retry_time_limit=100,
    )
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert sleeps == [60.5]
    assert excinfo.value.attempts == 2
    assert excinfo.value.message.endswith(
        "Gave up after 2 attempts because the next wait (60.5 s) and request (timeout 30 s) would pass the "
        "100 s retry time limit."
    )


def test_retry_time_limit_counts_request_timeout(monkeypatch, sleeps):
    # 0 + 60.5 s wait + 45 s timeout passes 100 s, so not even the first retry starts.
    client, dummy = make_client(monkeypatch, AUTH_OK, (429, {"Retry-After": "60"}, None),
                                retry_time_limit=100, timeout=45)
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert sleeps == []
    assert excinfo.value.attempts == 1
    assert "Gave up after 1 attempt because" in excinfo.value.message


def test_retry_time_limit_uses_elapsed_time(monkeypatch, sleeps):
    # The clock reads 0 s for /auth and the start of GET /sims, then 80 s after the failed
    # GET, so a 1.5 s backoff plus the 30 s timeout would end after the 100 s limit.
    readings = [0.0, 0.0, 80.0]
    client, dummy = make_client(monkeypatch, AUTH_OK, (503, {}, None), retry_time_limit=100,
                                clock=lambda: readings.pop(0) if len(readings) > 1 else readings[0])
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert sleeps == []
    assert "Gave up after 1 attempt" in excinfo.value.message


def test_retries_bounded_by_count(monkeypatch, sleeps):
    client, http = make_client(monkeypatch, AUTH_OK, *[(503, {}, None)] * 6, retries=5)
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert excinfo.value.attempts == 6
    assert http.paths().count("GET /sims") == 6
    assert len(sleeps) == 5
    assert "Gave up after 6 attempts." in excinfo.value.message


def test_non_retryable_after_retry_names_attempt(monkeypatch, sleeps):
    client, dummy = make_client(monkeypatch, AUTH_OK, (503, {}, None), (400, {}, {"code": "SIM0001"}))
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert excinfo.value.message.startswith("SORACOM API request GET /sims failed on attempt 2: HTTP 400 [SIM0001].")
    assert "Gave up" not in excinfo.value.message


@pytest.mark.parametrize("rand,expected", [(0.0, 7.0), (0.5, 7.5), (1.0, 8.0)])
def test_server_wait_jittered(monkeypatch, sleeps, rand, expected):
    client, dummy = make_client(monkeypatch, AUTH_OK, (429, {"Retry-After": "7"}, None), (200, {}, []),
                                rand=lambda: rand)
    client.get("/sims")
    assert sleeps == [expected]


@pytest.mark.parametrize("rand,expected", [(0.0, [1.0, 2.0]), (1.0, [2.0, 4.0])])
def test_backoff_jittered(monkeypatch, sleeps, rand, expected):
    client, dummy = make_client(monkeypatch, AUTH_OK, (503, {}, None), (503, {}, None), (200, {}, []),
                                rand=lambda: rand)
    client.get("/sims")
    assert sleeps == expected


def test_each_retry_reported_once(monkeypatch, sleeps):
    logged, warned = [], []
    reporter = RetryReporter(logged.append, warned.append)
    client, dummy = make_client(monkeypatch, AUTH_OK, *[(503, {}, None)] * 5, (200, {}, []), retry_callback=reporter)
    client.get("/sims")
    assert len(logged) == 5
    assert len(set(logged)) == 5
    assert warned[:3] == logged[:3]
    assert len(warned) == 4
    assert "Further retries are written to the module log only" in warned[3]


def test_retry_wait_capped(monkeypatch, sleeps):
    client, dummy = make_client(monkeypatch, AUTH_OK, (429, {"Retry-After": "3600"}, None), (200, {}, []))
    client.get("/sims")
    assert sleeps == [60.5]


# -- response bodies -----------------------------------------------------------

def test_non_json_body(monkeypatch):
    client, dummy = make_client(monkeypatch, AUTH_OK, (200, {"Content-Type": "text/html"}, b"<html>proxy</html>"))
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    message = excinfo.value.message
    assert "GET /sims returned HTTP 200 with a body that is not valid JSON" in message
    assert "Content-Type text/html" in message
    assert "'<html>proxy</html>'" in message
    assert "may not be a SORACOM API endpoint" in message


def test_truncated_json_body(monkeypatch):
    client, dummy = make_client(monkeypatch, AUTH_OK, (200, {"Content-Type": "application/json"}, b'[{"simId": "1"'))
    with pytest.raises(SoracomApiError, match="not valid JSON .*may have been cut off"):
        client.get("/sims")


def test_non_json_auth_body_not_echoed(monkeypatch):
    client, dummy = make_client(monkeypatch, (200, {}, b"apiKey=leaked-token"))
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert "leaked-token" not in excinfo.value.message


def test_cut_off_body_retried_then_reported(monkeypatch, sleeps):
    cut = http.client.IncompleteRead(b'[{"sim', 200)
    client, dummy = make_client(monkeypatch, AUTH_OK, (200, {}, cut), (200, {}, cut), retries=1)
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert "the response body was cut off after 6 bytes (200 more expected)" in excinfo.value.message
    assert excinfo.value.attempts == 2


def test_empty_body_is_none(monkeypatch):
    client, dummy = make_client(monkeypatch, AUTH_OK, (204, {}, None))
    assert client.delete("/groups/g1") is None


def test_json_body_sent(monkeypatch):
    client, http = make_client(monkeypatch, AUTH_OK, (200, {}, {}))
    client.put("/groups/g1/tags", body=[{"tagName": "a", "tagValue": "b"}])
    assert http.requests[1]["body"] == [{"tagName": "a", "tagValue": "b"}]
    assert http.requests[1]["headers"]["Content-Type"] == "application/json"


def test_error_with_nested_message(monkeypatch):
    client, dummy = make_client(
        monkeypatch, AUTH_OK, (400, {}, {"errorMessage": {"code": "LGN0001", "message": "Bad"}, "httpStatus": 400}),
    )
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert excinfo.value.code == "LGN0001"
    assert excinfo.value.api_message == "Bad"


def test_error_with_html_body(monkeypatch):
    client, dummy = make_client(monkeypatch, AUTH_OK, (403, {}, b"<html>Forbidden by proxy</html>"))
    with pytest.raises(SoracomApiError) as excinfo:
        client.get("/sims")
    assert "HTTP 403 (body: '<html>Forbidden by proxy</html>')" in excinfo.value.message
    assert "lack permission" in excinfo.value.message


def test_error_to_dict_fields(monkeypatch):
    client, dummy = make_client(monkeypatch, AUTH_OK, (400, {}, {"code": "SEM0001", "message": "Invalid"}))
    with pytest.raises(SoracomApiError) as excinfo:
        client.post("/sims/1/set_group", body={"groupId": "g"}, idempotent=True)
    assert excinfo.value.to_dict() == dict(status=400, code="SEM0001", message="Invalid", method="POST",
                                           path="/sims/1/set_group", attempts=1)


# -- retry timing helpers ------------------------------------------------------

@pytest.mark.parametrize("retry_number, low, high", [(1, 1, 2), (2, 2, 4), (5, 16, 32), (9, 16, 32)])
def test_backoff_delay_bounds(retry_number, low, high):
    assert api.backoff_delay(retry_number, rand=lambda: 0.0) == low
    assert api.backoff_delay(retry_number, rand=lambda: 1.0) == high


def test_server_delay_http_date():
    now = 1767225600.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert api.server_requested_delay({"retry-after": date}, now=now) == 30


@pytest.mark.parametrize("value, expected", [("1767225615", 15), ("1767225615000", 15), ("9", 9), ("-3", 0)])
def test_server_delay_reset_forms(value, expected):
    assert api.server_requested_delay({"x-soracom-ratelimit-reset": value}, now=1767225600.0) == expected


def test_server_delay_none_without_headers():
    assert api.server_requested_delay({"retry-after": "soon"}) is None
    assert api.server_requested_delay({}) is None


def test_retry_reporter_limits_warnings():
    logged = []
    warned = []
    reporter = RetryReporter(logged.append, warned.append)
    for number in range(6):
        reporter("retry %d" % number)
    assert len(logged) == 6
    assert warned[:3] == ["retry 0", "retry 1", "retry 2"]
    assert len(warned) == 4
    assert "Further retries are written to the module log only" in warned[3]


# -- input validation ----------------------------------------------------------

def aws_iot(**overrides):
    values = dict(
        region="ap-northeast-1",
        credentials_id="krypton-aws",
        policy_name="krypton-device-policy",
        thing_name_pattern="pi-$imsi",
        host="a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com",
        root_ca_certificate=None,
    )
    values.update(overrides)
    return values


def test_validate_aws_iot_accepts_lab_values():
    warnings = []
    groups.validate_aws_iot(aws_iot(), warnings.append)
    assert warnings == []


@pytest.mark.parametrize("overrides, message", [
    (dict(thing_name_pattern="pi-$IMSI"), "does not contain \\$imsi"),
    (dict(region="ap-northeast-9"), "is not an AWS region known to the installed botocore"),
    (dict(region="tokyo"), "is not an AWS region"),
    (dict(host="iot.example.com"), "not an AWS IoT data endpoint host name"),
    (dict(host="https://a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com"), "without scheme or port"),
    (dict(host="a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com:8883"), "without scheme or port"),
    (dict(host="a2labkrypton00-ats.iot.us-east-1.amazonaws.com"), "is in region us-east-1, but aws_iot.region is"),
])
def test_validate_aws_iot_rejects(overrides, message):
    with pytest.raises(SoracomError, match=message):
        groups.validate_aws_iot(aws_iot(**overrides), lambda message: None)


def test_validate_aws_iot_warns_on_legacy_host():
    warnings = []
    groups.validate_aws_iot(aws_iot(host="a2labkrypton00.iot.ap-northeast-1.amazonaws.com"), warnings.append)
    assert len(warnings) == 1
    assert "not an ATS endpoint" in warnings[0]


def test_validate_aws_iot_accepts_china_host():
    groups.validate_aws_iot(
        aws_iot(region="cn-north-1", host="abc123-ats.iot.cn-north-1.amazonaws.com.cn"), lambda message: None
    )


@pytest.mark.parametrize("region, valid", [
    ("ap-northeast-1", True), ("us-gov-west-1", True), ("cn-northwest-1", True), ("eu-central-2", True),
    ("ap-northeast", False), ("Tokyo", False), ("xx-east-1", False),
])
def test_region_pattern_without_botocore(monkeypatch, region, valid):
    monkeypatch.setattr(groups, "HAS_BOTOCORE", False)
    if valid:
        groups.validate_region(region)
    else:
        with pytest.raises(SoracomError, match="is not an AWS region name"):
            groups.validate_region(region)


def test_validate_sim_identifiers_lists_all():
    with pytest.raises(SoracomError) as excinfo:
        sims.validate_sim_identifiers(["44010300000001", "440103000000001", "abc"], ["8981100000000000001", "123"])
    message = excinfo.value.message
    assert "IMSIs must be exactly 15 digits: '44010300000001', 'abc'" in message
    assert "SIM IDs must be 18 to 20 digits: '123'" in message
    assert "Nothing was changed" in message


# -- SIM description -----------------------------------------------------------

def test_describe_sim_from_profiles():
    sim = {
        "simId": "8981100000000000001",
        "activeProfileId": "8981100000000000001",
        "profiles": {"8981100000000000001": {
            "iccid": "8981100000000000001",
            "primaryImsi": "440103000000001",
            "subscribers": {"295050000000001": {"imsi": "295050000000001"}, "440103000000001": {"imsi": "440103000000001"}},
        }},
        "groupId": "g1",
        "status": "active",
        "tags": {"name": "pi01"},
        "sessionStatus": {"online": True, "ueIpAddress": "10.213.0.11"},
    }
    described = sims.describe_sim(sim)
    assert described["imsi"] == "440103000000001"
    assert described["imsis"] == ["440103000000001", "295050000000001"]
    assert described["iccid"] == "8981100000000000001"
    assert described["group_id"] == "g1"
    assert described["session_status"] == {"online": True, "ip_address": "10.213.0.11"}


def test_describe_sim_flat_fields():
    described = sims.describe_sim({"simId": "1", "imsi": "440103000000009", "iccid": "89811", "status": "ready"})
    assert described["imsi"] == "440103000000009"
    assert described["imsis"] == ["440103000000009"]
    assert described["iccid"] == "89811"
    assert described["session_status"] == {"online": False, "ip_address": None}
    assert described["group_id"] is None


def test_run_context_collects_warnings():
    seen = []
    context = RunContext(warn=seen.append)
    context.warn("careful")
    assert context.warnings == ["careful"]
    assert seen == ["careful"]
