# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""In-memory SORACOM API for the soracom_* module tests.

It replaces ``open_url`` in the client module, so the modules run end to end
without a socket. It keeps groups, credential sets and SIMs, checks the
session headers, pages lists by ``limit`` and ``last_evaluated_key``, and
records every call.
"""

from __future__ import annotations

import io
import json
import uuid
from urllib.error import HTTPError
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.module_utils import _soracom_api

ENDPOINT = "https://api.soracom.test/v1"
AUTH_KEY_ID = "keyId-0123456789abcdef0123456789abcdef"
AUTH_KEY = "secret-unit-test-auth-key"
OPERATOR_ID = "OP0099000001"
API_KEY = "api-unit-test"
TOKEN = "token-unit-test"

CONNECTION_ARGS = dict(endpoint=ENDPOINT, auth_key_id=AUTH_KEY_ID, auth_key=AUTH_KEY)


def lab_imsi(number):
    return "4401030" + "%08d" % number


def lab_sim_id(number):
    return "8981100000000" + "%06d" % number


class FakeResponse:
    def __init__(self, status, body, headers):
        self.status = status
        self.headers = headers
        self._body = body

    def getcode(self):
        return self.status

    def read(self):
        return self._body


class FakeSoracomApi:
    """SORACOM API state and request router; ``open_url`` is the patched entry point."""

    def __init__(self, page_size=2):
        self.page_size = page_size
        self.groups = {}
        self.credentials = {}
        self.sims = {}
        self.calls = []
        self.auth_count = 0

    # -- seeding --------------------------------------------------------------

    def add_sim(self, number, group_id=None, online=False, tags=None):
        imsi = lab_imsi(number)
        sim_id = lab_sim_id(number)
        self.sims[sim_id] = {
            "simId": sim_id,
            "activeProfileId": sim_id,
            "profiles": {sim_id: {"iccid": sim_id, "primaryImsi": imsi, "subscribers": {imsi: {"imsi": imsi}}}},
            "groupId": group_id,
            "status": "active",
            "speedClass": "s1.standard",
            "tags": dict(tags or {"name": "pi%02d" % number}),
            "sessionStatus": {"online": online, "ueIpAddress": "10.213.0.%d" % (10 + number) if online else None,
                              "imsi": imsi},
        }
        return sim_id

    def add_group(self, name, configuration=None, **tags):
        group_id = str(uuid.uuid4())
        all_tags = {"name": name}
        all_tags.update(tags)
        self.groups[group_id] = {
            "groupId": group_id,
            "operatorId": OPERATOR_ID,
            "tags": all_tags,
            "configuration": dict(configuration or {}),
            "createdTime": 1767225600000,
            "lastModifiedTime": 1767225600000,
        }
        return group_id

    def add_credential(self, credential_id, description=None, access_key_id="AKIAEXISTING", credential_type="aws-credentials"):
        self.credentials[credential_id] = {
            "credentialsId": credential_id,
            "type": credential_type,
            "description": description,
            "credentials": {"accessKeyId": access_key_id, "secretAccessKey": "stored-secret"},
            "createDateTime": 1767225600,
            "updateDateTime": 1767225600,
            "lastUsedDateTime": 0,
        }

    # -- call log -------------------------------------------------------------

    def writes(self):
        """Return the (method, path) of every call other than GET and POST /auth."""
        return [(method, path) for method, path, dummy in self.calls
                if method != "GET" and path != "/auth"]

    # -- HTTP -----------------------------------------------------------------

    def open_url(self, url, data=None, headers=None, method=None, **kwargs):
        parts = urlsplit(url)
        assert url.startswith(ENDPOINT), url
        path = parts.path[len(urlsplit(ENDPOINT).path):]
        query = dict((key, values[0]) for key, values in parse_qs(parts.query).items())
        body = json.loads(data.decode("utf-8")) if data else None
        self.calls.append((method, path, body))

        if path == "/auth" and method == "POST":
            return self._auth(body)
        if headers.get("X-Soracom-API-Key") != API_KEY or headers.get("X-Soracom-Token") != TOKEN:
            return self._error(url, 401, "AUM0001", "Invalid API key or token")
        segments = [unquote(segment) for segment in path.strip("/").split("/")]
        handler = getattr(self, "_route_" + segments[0], None)
        if handler is None:
            return self._error(url, 404, "NF0001", "No such path")
        return handler(url, method, segments[1:], query, body)

    def _auth(self, body):
        if (body.get("authKeyId"), body.get("authKey")) != (AUTH_KEY_ID, AUTH_KEY):
            return self._error(ENDPOINT + "/auth", 401, "AUM0002", "Invalid auth key")
        self.auth_count += 1
        return self._ok({"apiKey": API_KEY, "token": TOKEN, "operatorId": OPERATOR_ID})

    @staticmethod
    def _ok(body, status=200, headers=None):
        raw = b"" if body is None else json.dumps(body).encode("utf-8")
        return FakeResponse(status, raw, dict(headers or {}, **{"Content-Type": "application/json"}))

    @staticmethod
    def _error(url, status, code, message):
        raw = json.dumps({"code": code, "message": message}).encode("utf-8")
        raise HTTPError(url, status, message, {"Content-Type": "application/json"}, io.BytesIO(raw))

    def _page(self, items, query):
        limit = min(int(query.get("limit") or self.page_size), self.page_size)
        start = 0
        if query.get("last_evaluated_key"):
            start = int(query["last_evaluated_key"])
        page = items[start:start + limit]
        headers = {}
        if start + limit < len(items):
            headers["x-soracom-next-key"] = str(start + limit)
        return self._ok(page, headers=headers)

    # -- groups ---------------------------------------------------------------

    def _route_groups(self, url, method, rest, query, body):
        if not rest:
            if method == "GET":
                groups = list(self.groups.values())
                if "tag_name" in query:
                    groups = [group for group in groups
                              if group["tags"].get(query["tag_name"]) == query.get("tag_value")]
                return self._page(groups, query)
            if method == "POST":
                group_id = self.add_group(body["tags"]["name"])
                self.groups[group_id]["tags"] = dict(body["tags"])
                return self._ok(self.groups[group_id], status=201)
        group = self.groups.get(rest[0])
        if group is None:
            return self._error(url, 404, "GRP0001", "Group not found")
        if len(rest) == 1:
            if method == "GET":
                return self._ok(group)
            if method == "DELETE":
                del self.groups[rest[0]]
                return self._ok(None, status=204)
        if rest[1] == "tags":
            if method == "PUT":
                for item in body:
                    group["tags"][item["tagName"]] = item["tagValue"]
                return self._ok(group)
            if method == "DELETE":
                group["tags"].pop(rest[2], None)
                return self._ok(None, status=204)
        if rest[1] == "configuration":
            namespace = rest[2]
            if method == "PUT" and len(rest) == 3:
                config = group["configuration"].setdefault(namespace, {})
                for item in body:
                    config[item["key"]] = item["value"]
                return self._ok(group)
            if method == "DELETE" and len(rest) == 4:
                group["configuration"].get(namespace, {}).pop(rest[3], None)
                return self._ok(None, status=204)
        return self._error(url, 405, "GEN0001", "Method not allowed")

    # -- credential sets ------------------------------------------------------

    def _route_credentials(self, url, method, rest, query, body):
        if not rest and method == "GET":
            # Like the real API, the list never includes the secret.
            listed = []
            for credential in self.credentials.values():
                shown = dict(credential)
                shown["credentials"] = {"accessKeyId": credential["credentials"].get("accessKeyId")}
                listed.append(shown)
            return self._ok(listed)
        credential_id = rest[0]
        if method == "POST":
            if credential_id in self.credentials:
                return self._error(url, 400, "CRD0002", "Credentials already exist")
            self.add_credential(credential_id, body.get("description"), body["credentials"]["accessKeyId"],
                                credential_type=body["type"])
            self.credentials[credential_id]["credentials"] = dict(body["credentials"])
            return self._ok(self._public(credential_id), status=201)
        if credential_id not in self.credentials:
            return self._error(url, 404, "CRD0001", "Credentials not found")
        if method == "PUT":
            credential = self.credentials[credential_id]
            credential["type"] = body["type"]
            credential["credentials"] = dict(body["credentials"])
            if "description" in body:
                credential["description"] = body["description"]
            credential["updateDateTime"] += 1
            return self._ok(self._public(credential_id))
        if method == "DELETE":
            del self.credentials[credential_id]
            return self._ok(None, status=204)
        return self._error(url, 405, "GEN0001", "Method not allowed")

    def _public(self, credential_id):
        shown = dict(self.credentials[credential_id])
        shown["credentials"] = {}
        return shown

    # -- SIMs -----------------------------------------------------------------

    def _route_sims(self, url, method, rest, query, body):
        if not rest and method == "GET":
            return self._page(list(self.sims.values()), query)
        sim = self.sims.get(rest[0])
        if sim is None:
            return self._error(url, 404, "SIM0001", "SIM not found")
        if method == "POST" and rest[1:] == ["set_group"]:
            if body["groupId"] not in self.groups:
                return self._error(url, 400, "SIM0002", "Group not found")
            sim["groupId"] = body["groupId"]
            return self._ok(sim)
        if method == "POST" and rest[1:] == ["unset_group"]:
            sim["groupId"] = None
            return self._ok(sim)
        return self._error(url, 405, "GEN0001", "Method not allowed")


@pytest.fixture
def api(monkeypatch):
    """A FakeSoracomApi patched in as the HTTP layer of the SORACOM client."""
    fake = FakeSoracomApi()
    monkeypatch.setattr(_soracom_api, "open_url", fake.open_url)
    for name in ("SORACOM_AUTH_KEY_ID", "SORACOM_AUTH_KEY", "SORACOM_ENDPOINT", "SORACOM_COVERAGE_TYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_soracom_api.time, "sleep", lambda seconds: None)
    # AnsibleModule collects warnings in a process-wide registry; start each test empty.
    monkeypatch.setattr(module_warnings, "_global_warnings", {})
    return fake


def run(module, capsys, check_mode=False, diff=False, **args):
    """Run a module's main() with the connection options plus ``args``; return its JSON result."""
    module_args = dict(CONNECTION_ARGS)
    module_args.update(args)
    module_args["_ansible_check_mode"] = check_mode
    module_args["_ansible_diff"] = diff
    with patch_module_args(module_args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def warning_texts(result):
    """Return the warning messages of a module result (ansible-core 2.19 wraps each in an event)."""
    texts = []
    for warning in result.get("warnings", []):
        if isinstance(warning, dict):
            warning = warning.get("event", warning).get("msg")
        texts.append(warning)
    return texts
