# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for the lab's SORACOM API, Krypton and metadata stand-in (tests/lab/soracom/server.py).

Most tests drive the Flask apps with their test client, setting the source address through
REMOTE_ADDR. The end-to-end tests start server.py and tests/lab/aws/moto_lab_server.py on
127.0.0.1 with free ports, and reach Krypton and the metadata service from 127.0.0.2 and
127.0.0.3 by binding the client socket to those loopback addresses.

The OpenAPI validation tests read SORACOM's spec (soracom-api.en.yaml from soracom-cli) from
$SORACOM_OPENAPI_SPEC or SPEC_PATH's default, and are skipped, naming the path, when it is absent.

Run: .venv/bin/pytest tests/lab/soracom
"""
from __future__ import annotations

import concurrent.futures
import datetime
import email.utils
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SORACOM_DIR = Path(__file__).resolve().parent
REPOSITORY_ROOT = SORACOM_DIR.parents[2]
SERVER = SORACOM_DIR / "server.py"
MOTO_LAB_SERVER = REPOSITORY_ROOT / "tests" / "lab" / "aws" / "moto_lab_server.py"
sys.path.insert(0, str(SORACOM_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soracom_emulator.admin import create_admin_app  # noqa: E402  (needs SORACOM_DIR on sys.path)
import subprocesses  # noqa: E402  (tests/lab is on sys.path)
from subprocesses import free_port, stop_process  # noqa: E402
from soracom_emulator.api import create_api_app  # noqa: E402
from soracom_emulator.krypton import AwsIotProvisioner, create_krypton_app  # noqa: E402
from soracom_emulator.metadata import create_metadata_app  # noqa: E402
from soracom_emulator.errors import api_error  # noqa: E402
from soracom_emulator.state import LIGHT_CERTIFICATES_PER_SIM, LabState  # noqa: E402

HOST = "127.0.0.1"
REGION = "ap-northeast-1"
OPERATOR_ID = "OP0099000001"
AUTH_KEY_ID = "keyId-" + "0123456789abcdef" * 2
AUTH_KEY = "secret-" + "s" * 64
ROOT_CA_PEM = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"
STARTUP_TIMEOUT = 30.0
IOT_POLICY = "lab-device-policy"
ATS_HOST = "a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com"
KRYPTON_PATH = "/v1/provisioning/aws/iot/bootstrap"


def pi_sim(number: int, ip: str | None = None) -> dict:
    """Return the admin spec of lab Pi ``number``'s SIM, as labctl seeds it."""
    return {
        "imsi": "4401030" + f"{number:08d}",
        "sim_id": "8981100000000" + f"{number:06d}",
        "iccid": "8981100000000" + f"{number:06d}",
        "ip": ip or f"10.213.0.{10 + number}",
    }


class FakeClock:
    """A settable ``time.time`` replacement."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Lab:
    """The four apps over one state, driven with Flask's test client.

    ``spec`` turns on OpenAPI validation of the API app. ``provisioner`` replaces the AWS IoT
    provisioner, whose default endpoint (port 9, discard) refuses every connection.
    """

    def __init__(self, spec=None, provisioner=None) -> None:
        self.clock = FakeClock()
        self.state = LabState(clock=self.clock)
        logger = logging.getLogger("test_soracom_emulator")
        self.api = create_api_app(self.state, logger, spec).test_client()
        self.admin = create_admin_app(self.state, logger).test_client()
        self.metadata = create_metadata_app(self.state, logger).test_client()
        provisioner = provisioner or AwsIotProvisioner("http://127.0.0.1:9", logger)
        self.krypton = create_krypton_app(self.state, logger, provisioner, ROOT_CA_PEM).test_client()
        response = self.admin.post("/_lab/auth_keys", json={
            "authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY, "operatorId": OPERATOR_ID,
        })
        assert response.status_code == 200
        response = self.admin.post("/_lab/sims", json=[pi_sim(1), pi_sim(2), pi_sim(3)])
        assert response.status_code == 200
        self.headers = self.login()

    def login(self, **extra) -> dict:
        response = self.api.post("/v1/auth", json={"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY, **extra})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        return {"X-Soracom-API-Key": body["apiKey"], "X-Soracom-Token": body["token"]}

    def call(self, method: str, path: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.api.open(path, method=method, headers=headers, **kwargs)

    def create_group(self, name: str, configuration: dict | None = None) -> str:
        body = {"tags": {"name": name}}
        if configuration is not None:
            body["configuration"] = configuration
        response = self.call("POST", "/v1/groups", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["groupId"]

    def put_config(self, group_id: str, namespace: str, parameters: list[dict]):
        return self.call("PUT", f"/v1/groups/{group_id}/configuration/{namespace}", json=parameters)

    def set_group(self, sim_number: int, group_id: str) -> None:
        sim_id = pi_sim(sim_number)["sim_id"]
        response = self.call("POST", f"/v1/sims/{sim_id}/set_group", json={"groupId": group_id})
        assert response.status_code == 200, response.get_json()

    def bootstrap(self, address: str, body=None, path: str = KRYPTON_PATH):
        return self.krypton.post(path, json=body, environ_base={"REMOTE_ADDR": address})

    def read_metadata(self, address: str, path: str = "/v1/subscriber", method: str = "GET"):
        return self.metadata.open(path, method=method, environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def lab() -> Lab:
    return Lab()


def krypton_configuration(credentials_id: str = "krypton-aws", **aws_iot) -> list[dict]:
    settings = {
        "region": REGION,
        "credentialsId": credentials_id,
        "policyName": IOT_POLICY,
        "thingNamePattern": "lab-$imsi",
        "host": ATS_HOST,
    }
    settings.update(aws_iot)
    return [{"key": "enabled", "value": True}, {"key": "AwsIot", "value": settings}]


def add_aws_credential(lab: Lab, credentials_id: str, access_key_id: str, secret_access_key: str) -> None:
    response = lab.call("POST", f"/v1/credentials/{credentials_id}", json={
        "type": "aws-credentials",
        "description": "Krypton",
        "credentials": {"accessKeyId": access_key_id, "secretAccessKey": secret_access_key},
    })
    assert response.status_code == 201, response.get_json()


# ============================================================================ /auth


def test_auth_key_opens_session(lab):
    response = lab.api.post("/v1/auth", json={"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY})
    body = response.get_json()
    assert response.status_code == 200
    assert body["operatorId"] == OPERATOR_ID
    assert body["apiKey"].startswith("api-")
    assert len(body["token"]) > 32
    assert "userName" not in body


def test_auth_wrong_key_is_401(lab):
    response = lab.api.post("/v1/auth", json={"authKeyId": AUTH_KEY_ID, "authKey": "secret-wrong"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "AUM0002"


def test_auth_unknown_key_id_is_401(lab):
    response = lab.api.post("/v1/auth", json={"authKeyId": "keyId-unknown", "authKey": AUTH_KEY})
    assert response.status_code == 401


def test_auth_unregistered_email_is_401(lab):
    response = lab.api.post("/v1/auth", json={"email": "root@example.com", "password": "pw"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "AUM0002"


def test_auth_registered_email_and_sam_user(lab):
    lab.admin.post("/_lab/auth_keys", json=[
        {"email": "root@example.com", "password": "pw-root", "operatorId": OPERATOR_ID},
        {"userName": "ci", "password": "pw-sam", "operatorId": OPERATOR_ID},
    ])
    root = lab.api.post("/v1/auth", json={"email": "root@example.com", "password": "pw-root"})
    sam = lab.api.post("/v1/auth", json={"operatorId": OPERATOR_ID, "userName": "ci", "password": "pw-sam"})
    assert root.status_code == 200
    assert sam.status_code == 200
    assert sam.get_json()["userName"] == "ci"


@pytest.mark.parametrize("timeout", [0, 172801, "60", True])
def test_auth_token_timeout_out_of_range_is_400(lab, timeout):
    response = lab.api.post("/v1/auth", json={"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY,
                                              "tokenTimeoutSeconds": timeout})
    assert response.status_code == 400
    assert "tokenTimeoutSeconds" in response.get_json()["message"]


def test_auth_token_expires_after_timeout(lab):
    headers = lab.login(tokenTimeoutSeconds=600)
    assert lab.api.get("/v1/sims", headers=headers).status_code == 200
    lab.clock.now += 599
    assert lab.api.get("/v1/sims", headers=headers).status_code == 200
    lab.clock.now += 1
    expired = lab.api.get("/v1/sims", headers=headers)
    assert expired.status_code == 401
    assert expired.get_json()["code"] == "LAB0001"


def test_auth_default_timeout_is_one_day(lab):
    headers = lab.login()
    lab.clock.now += 86399
    assert lab.api.get("/v1/sims", headers=headers).status_code == 200
    lab.clock.now += 1
    assert lab.api.get("/v1/sims", headers=headers).status_code == 401


@pytest.mark.parametrize("body", [
    {},
    {"authKeyId": AUTH_KEY_ID},
    {"authKeyId": 1, "authKey": AUTH_KEY},
])
def test_auth_malformed_body_is_400(lab, body):
    response = lab.api.post("/v1/auth", json=body)
    assert response.status_code == 400
    assert set(response.get_json()) == {"code", "message"}


def test_auth_body_not_json_is_400(lab):
    response = lab.api.post("/v1/auth", data="authKeyId=x", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "LAB0102"


def test_missing_token_is_401(lab):
    response = lab.api.get("/v1/sims")
    assert response.status_code == 401
    assert response.get_json()["code"] == "AUM0001"


def test_missing_token_message_in_japanese(lab):
    response = lab.api.get("/v1/sims", headers={"X-Soracom-Lang": "ja"})
    assert response.status_code == 401
    assert "トークン" in response.get_json()["message"]


def test_wrong_token_is_401(lab):
    headers = {**lab.headers, "X-Soracom-Token": "forged"}
    assert lab.api.get("/v1/sims", headers=headers).status_code == 401


def test_logout_revokes_session(lab):
    assert lab.call("POST", "/v1/auth/logout").status_code == 204
    assert lab.call("GET", "/v1/sims").status_code == 401


def test_unknown_route_is_json_404(lab):
    response = lab.call("GET", "/v1/nothing")
    assert response.status_code == 404
    assert set(response.get_json()) == {"code", "message"}


# ============================================================================ /credentials


def test_credentials_never_return_secrets(lab):
    add_aws_credential(lab, "krypton-aws", "AKIALABKEY0000000001", "lab-secret-value-123")
    created = lab.call("GET", "/v1/credentials")
    updated = lab.call("PUT", "/v1/credentials/krypton-aws", json={
        "type": "aws-credentials",
        "credentials": {"accessKeyId": "AKIALABKEY0000000002", "secretAccessKey": "lab-secret-value-456"},
    })
    listed = lab.call("GET", "/v1/credentials")
    for response in (created, updated, listed):
        text = response.get_data(as_text=True)
        assert "lab-secret-value" not in text
        assert "secretAccessKey" not in text
    entry = listed.get_json()[0]
    assert entry["credentialsId"] == "krypton-aws"
    assert entry["type"] == "aws-credentials"
    assert entry["credentials"] == {}
    assert updated.status_code == 200


def test_credential_create_returns_201_model(lab):
    response = lab.call("POST", "/v1/credentials/krypton-aws", json={
        "type": "aws-credentials",
        "description": "for Krypton",
        "credentials": {"accessKeyId": "AKIA1", "secretAccessKey": "s1"},
    })
    body = response.get_json()
    assert response.status_code == 201
    assert body["credentialsId"] == "krypton-aws"
    assert body["description"] == "for Krypton"
    assert isinstance(body["createDateTime"], int)
    assert isinstance(body["updateDateTime"], int)


def test_credential_duplicate_create_is_400(lab):
    add_aws_credential(lab, "krypton-aws", "AKIA1", "s1")
    response = lab.call("POST", "/v1/credentials/krypton-aws", json={
        "type": "aws-credentials", "credentials": {"accessKeyId": "AKIA2", "secretAccessKey": "s2"},
    })
    assert response.status_code == 400
    assert lab.state.snapshot()["credentials"][0]["credentials"]["accessKeyId"] == "AKIA1"


def test_credential_delete_then_404(lab):
    add_aws_credential(lab, "krypton-aws", "AKIA1", "s1")
    assert lab.call("DELETE", "/v1/credentials/krypton-aws").status_code == 204
    assert lab.call("DELETE", "/v1/credentials/krypton-aws").status_code == 404
    assert lab.call("GET", "/v1/credentials").get_json() == []


def test_credential_update_missing_is_404(lab):
    response = lab.call("PUT", "/v1/credentials/absent", json={
        "type": "aws-credentials", "credentials": {"accessKeyId": "AKIA1", "secretAccessKey": "s1"},
    })
    assert response.status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"type": "aws-credentials", "credentials": {"accessKeyId": "AKIA1"}}, "credentials.secretAccessKey"),
    ({"type": "aws-credentials", "credentials": {"accessKeyId": "", "secretAccessKey": "s"}},
     "credentials.accessKeyId"),
    ({"type": "aws-credentials"}, "credentials"),
    ({"type": "no-such-type", "credentials": {}}, "type"),
    ({"credentials": {}}, "type"),
    ({"type": "aws-credentials", "credentials": "AKIA1:s1"}, "credentials"),
])
def test_credential_bad_body_is_400(lab, body, field):
    response = lab.call("POST", "/v1/credentials/krypton-aws", json=body)
    assert response.status_code == 400
    assert f"'{field}'" in response.get_json()["message"]


def test_lab_state_shows_credential_secret(lab):
    add_aws_credential(lab, "krypton-aws", "AKIA1", "s1")
    state = lab.admin.get("/_lab/state").get_json()
    assert state["credentials"][0]["credentials"] == {"accessKeyId": "AKIA1", "secretAccessKey": "s1"}


# ============================================================================ /groups


def test_group_create_returns_201_group(lab):
    response = lab.call("POST", "/v1/groups", json={"tags": {"name": "fleet"}})
    body = response.get_json()
    assert response.status_code == 201
    assert body["tags"] == {"name": "fleet"}
    assert body["configuration"] == {}
    assert body["operatorId"] == OPERATOR_ID
    assert isinstance(body["createdTime"], int)
    assert lab.call("GET", f"/v1/groups/{body['groupId']}").get_json() == body


def test_group_duplicate_names_are_all_listed(lab):
    first = lab.create_group("fleet")
    second = lab.create_group("fleet")
    lab.create_group("other")
    response = lab.call("GET", "/v1/groups?tag_name=name&tag_value=fleet")
    assert response.status_code == 200
    assert sorted(group["groupId"] for group in response.get_json()) == sorted([first, second])


def test_group_prefix_filter(lab):
    lab.create_group("fleet-a")
    lab.create_group("fleet-b")
    lab.create_group("other")
    response = lab.call("GET", "/v1/groups?tag_name=name&tag_value=fleet-&tag_value_match_mode=prefix")
    assert len(response.get_json()) == 2


def test_group_tag_name_without_value_is_400(lab):
    response = lab.call("GET", "/v1/groups?tag_name=name")
    assert response.status_code == 400
    assert "tag_value" in response.get_json()["message"]


def test_group_list_pages_with_next_key(lab):
    created = {lab.create_group(f"group-{index}") for index in range(5)}
    seen, pages, query = [], 0, "/v1/groups?limit=2"
    while pages < 10:
        response = lab.call("GET", query)
        pages += 1
        seen.extend(group["groupId"] for group in response.get_json())
        next_key = response.headers.get("X-Soracom-Next-Key")
        if next_key is None:
            break
        query = f"/v1/groups?limit=2&last_evaluated_key={next_key}"
    assert pages == 3
    assert len(seen) == 5
    assert set(seen) == created


def test_group_config_put_merges_keys(lab):
    group_id = lab.create_group("fleet")
    first = lab.put_config(group_id, "SoracomKrypton", [{"key": "enabled", "value": True}])
    second = lab.put_config(group_id, "SoracomKrypton", [{"key": "AwsIot", "value": {"region": REGION}}])
    assert first.status_code == 200
    assert second.status_code == 200
    assert second.get_json()["configuration"]["SoracomKrypton"] == {"enabled": True, "AwsIot": {"region": REGION}}


def test_group_config_put_replaces_whole_value(lab):
    group_id = lab.create_group("fleet")
    lab.put_config(group_id, "SoracomKrypton", [{"key": "AwsIot", "value": {"region": REGION, "host": "h"}}])
    response = lab.put_config(group_id, "SoracomKrypton", [{"key": "AwsIot", "value": {"region": "us-east-1"}}])
    assert response.get_json()["configuration"]["SoracomKrypton"]["AwsIot"] == {"region": "us-east-1"}


def test_group_config_namespaces_are_separate(lab):
    group_id = lab.create_group("fleet")
    lab.put_config(group_id, "SoracomAir", [{"key": "metadata", "value": {"enabled": True}}])
    response = lab.put_config(group_id, "SoracomKrypton", [{"key": "enabled", "value": True}])
    assert response.get_json()["configuration"] == {
        "SoracomAir": {"metadata": {"enabled": True}},
        "SoracomKrypton": {"enabled": True},
    }


def test_group_config_delete_parameter(lab):
    group_id = lab.create_group("fleet")
    lab.put_config(group_id, "SoracomKrypton", krypton_configuration())
    assert lab.call("DELETE", f"/v1/groups/{group_id}/configuration/SoracomKrypton/AwsIot").status_code == 204
    group = lab.call("GET", f"/v1/groups/{group_id}").get_json()
    assert group["configuration"]["SoracomKrypton"] == {"enabled": True}
    assert lab.call("DELETE", f"/v1/groups/{group_id}/configuration/SoracomKrypton/AwsIot").status_code == 404


def test_group_config_delete_namespace(lab):
    group_id = lab.create_group("fleet")
    lab.put_config(group_id, "SoracomKrypton", krypton_configuration())
    assert lab.call("DELETE", f"/v1/groups/{group_id}/configuration/SoracomKrypton").status_code == 204
    assert lab.call("DELETE", f"/v1/groups/{group_id}/configuration/SoracomKrypton").status_code == 400


@pytest.mark.parametrize("namespace, body", [
    ("SoracomKrypton", {"key": "enabled", "value": True}),
    ("SoracomKrypton", [{"key": "enabled"}]),
    ("SoracomKrypton", [{"value": True}]),
    ("SoracomKrypton", [{"key": "enabled", "value": "yes"}]),
    ("SoracomKrypton", [{"key": "AwsIot", "value": {"region": 1}}]),
    ("SoracomKrypton", [{"key": "AwsIot", "value": "ap-northeast-1"}]),
    ("SoracomAir", [{"key": "metadata", "value": {"enabled": "true"}}]),
    ("NoSuchNamespace", [{"key": "enabled", "value": True}]),
])
def test_group_config_bad_body_is_400(lab, namespace, body):
    group_id = lab.create_group("fleet")
    response = lab.call("PUT", f"/v1/groups/{group_id}/configuration/{namespace}", json=body)
    assert response.status_code == 400
    assert set(response.get_json()) == {"code", "message"}


def test_group_config_unknown_krypton_key_is_kept(lab):
    group_id = lab.create_group("fleet")
    response = lab.put_config(group_id, "SoracomKrypton", [{"key": "AzureIoT", "value": {"x": 1}}])
    assert response.status_code == 200
    assert response.get_json()["configuration"]["SoracomKrypton"]["AzureIoT"] == {"x": 1}


def test_group_config_missing_group_is_404(lab):
    response = lab.put_config("no-such-group", "SoracomKrypton", [{"key": "enabled", "value": True}])
    assert response.status_code == 404


def test_group_tags_put_and_delete(lab):
    group_id = lab.create_group("fleet")
    response = lab.call("PUT", f"/v1/groups/{group_id}/tags", json=[{"tagName": "env", "tagValue": "lab"}])
    assert response.get_json()["tags"] == {"name": "fleet", "env": "lab"}
    assert lab.call("DELETE", f"/v1/groups/{group_id}/tags/env").status_code == 204
    assert lab.call("DELETE", f"/v1/groups/{group_id}/tags/env").status_code == 404


def test_group_delete_rejected_with_members(lab):
    group_id = lab.create_group("fleet")
    lab.set_group(1, group_id)
    assert lab.call("DELETE", f"/v1/groups/{group_id}").status_code == 400
    lab.call("POST", f"/v1/sims/{pi_sim(1)['sim_id']}/unset_group")
    assert lab.call("DELETE", f"/v1/groups/{group_id}").status_code == 204
    assert lab.call("GET", f"/v1/groups/{group_id}").status_code == 404


def test_group_subscribers_lists_members(lab):
    group_id = lab.create_group("fleet")
    lab.set_group(1, group_id)
    lab.set_group(3, group_id)
    response = lab.call("GET", f"/v1/groups/{group_id}/subscribers")
    assert [sim["simId"] for sim in response.get_json()] == [pi_sim(1)["sim_id"], pi_sim(3)["sim_id"]]


@pytest.mark.parametrize("kwargs", [
    {"data": "{}", "content_type": "text/plain"},
    {"data": "{not json", "content_type": "application/json"},
    {"json": []},
    {"json": {"tags": ["fleet"]}},
    {"json": {"tags": {"name": 1}}},
    {"json": {"configuration": {"SoracomKrypton": {"enabled": "yes"}}}},
])
def test_group_create_bad_body_is_400(lab, kwargs):
    response = lab.call("POST", "/v1/groups", **kwargs)
    assert response.status_code == 400
    assert set(response.get_json()) == {"code", "message"}


def test_groups_are_per_operator(lab):
    lab.admin.post("/_lab/auth_keys", json={"authKeyId": "keyId-other", "authKey": "secret-other",
                                            "operatorId": "OP0099000002"})
    group_id = lab.create_group("fleet")
    response = lab.api.post("/v1/auth", json={"authKeyId": "keyId-other", "authKey": "secret-other"})
    other = {"X-Soracom-API-Key": response.get_json()["apiKey"], "X-Soracom-Token": response.get_json()["token"]}
    assert lab.api.get("/v1/groups", headers=other).get_json() == []
    assert lab.api.get(f"/v1/groups/{group_id}", headers=other).status_code == 404
    assert lab.api.get("/v1/sims", headers=other).get_json() == []


# ============================================================================ /sims, /subscribers


def test_sim_shape_follows_spec(lab):
    sim = pi_sim(1)
    body = lab.call("GET", f"/v1/sims/{sim['sim_id']}").get_json()
    profile = body["profiles"][sim["iccid"]]
    assert body["simId"] == sim["sim_id"]
    assert body["status"] == "active"
    assert "groupId" not in body
    assert body["tags"] == {"name": ""}
    assert body["operatorId"] == OPERATOR_ID
    assert profile["primaryImsi"] == sim["imsi"]
    assert sim["imsi"] in profile["subscribers"]
    assert body["sessionStatus"]["online"] is True
    assert body["sessionStatus"]["ueIpAddress"] == sim["ip"]


def test_subscriber_shape_follows_spec(lab):
    sim = pi_sim(2)
    body = lab.call("GET", f"/v1/subscribers/{sim['imsi']}").get_json()
    assert body["imsi"] == sim["imsi"]
    assert body["simId"] == sim["sim_id"]
    assert body["iccid"] == sim["iccid"]
    assert body["ipAddress"] == sim["ip"]
    assert body["status"] == "active"
    assert body["sessionStatus"]["online"] is True


def test_sim_set_and_unset_group(lab):
    group_id = lab.create_group("fleet")
    sim_id = pi_sim(1)["sim_id"]
    set_response = lab.call("POST", f"/v1/sims/{sim_id}/set_group", json={"groupId": group_id})
    unset_response = lab.call("POST", f"/v1/sims/{sim_id}/unset_group")
    assert set_response.status_code == 200
    assert set_response.get_json()["groupId"] == group_id
    assert unset_response.status_code == 200
    assert "groupId" not in unset_response.get_json()
    assert lab.call("POST", f"/v1/sims/{sim_id}/unset_group").status_code == 404


def test_subscriber_set_and_unset_group(lab):
    group_id = lab.create_group("fleet")
    imsi = pi_sim(2)["imsi"]
    set_response = lab.call("POST", f"/v1/subscribers/{imsi}/set_group", json={"groupId": group_id})
    assert set_response.status_code == 200
    assert set_response.get_json()["groupId"] == group_id
    assert lab.call("GET", f"/v1/sims/{pi_sim(2)['sim_id']}").get_json()["groupId"] == group_id
    assert "groupId" not in lab.call("POST", f"/v1/subscribers/{imsi}/unset_group").get_json()
    assert lab.call("POST", f"/v1/subscribers/{imsi}/unset_group").status_code == 404


@pytest.mark.parametrize("body, status", [
    ({}, 400),
    ({"groupId": 5}, 400),
    ({"groupId": "no-such-group"}, 404),
])
def test_sim_set_group_rejects_bad_group(lab, body, status):
    response = lab.call("POST", f"/v1/sims/{pi_sim(1)['sim_id']}/set_group", json=body)
    assert response.status_code == status


def test_sim_unknown_is_404(lab):
    assert lab.call("GET", "/v1/sims/0000").status_code == 404
    assert lab.call("GET", "/v1/subscribers/0000").status_code == 404
    group_id = lab.create_group("fleet")
    assert lab.call("POST", "/v1/sims/0000/set_group", json={"groupId": group_id}).status_code == 404


def test_sim_tags_put_and_delete(lab):
    sim_id = pi_sim(1)["sim_id"]
    response = lab.call("PUT", f"/v1/sims/{sim_id}/tags", json=[{"tagName": "name", "tagValue": "pi01"}])
    assert response.get_json()["tags"] == {"name": "pi01"}
    assert lab.call("GET", "/v1/subscribers?tag_name=name&tag_value=pi01").get_json()[0]["simId"] == sim_id


def test_sims_page_across_pages(lab):
    seeded = lab.admin.post("/_lab/seed_sims", json={"count": 25}).get_json()
    assert seeded["created"] == 25
    sim_ids, pages, query = [], 0, "/v1/sims?limit=10"
    while pages < 10:
        response = lab.call("GET", query)
        pages += 1
        sim_ids.extend(sim["simId"] for sim in response.get_json())
        next_key = response.headers.get("X-Soracom-Next-Key")
        if next_key is None:
            assert "Link" not in response.headers
            break
        link = response.headers["Link"]
        assert parse_qs(urlsplit(link.split(">")[0].lstrip("<")).query)["last_evaluated_key"] == [next_key]
        query = f"/v1/sims?limit=10&last_evaluated_key={next_key}"
    assert pages == 3
    assert len(sim_ids) == 28
    assert len(set(sim_ids)) == 28
    assert sim_ids == sorted(sim_ids)


def test_subscribers_page_across_pages(lab):
    lab.admin.post("/_lab/seed_sims", json={"count": 150, "prefix": "44010399"})
    imsis, pages, query = [], 0, "/v1/subscribers"
    while pages < 10:
        response = lab.call("GET", query)
        pages += 1
        imsis.extend(subscriber["imsi"] for subscriber in response.get_json())
        next_key = response.headers.get("X-Soracom-Next-Key")
        if next_key is None:
            break
        query = f"/v1/subscribers?last_evaluated_key={next_key}"
    assert pages == 2
    assert len(set(imsis)) == 153


def test_subscribers_limit_over_100_is_400(lab):
    assert lab.call("GET", "/v1/subscribers?limit=101").status_code == 400
    assert lab.call("GET", "/v1/sims?limit=0").status_code == 400
    assert lab.call("GET", "/v1/sims?limit=ten").status_code == 400


def test_subscribers_status_filter(lab):
    lab.admin.post("/_lab/sims", json={"sim_id": pi_sim(3)["sim_id"], "status": "suspended"})
    response = lab.call("GET", "/v1/subscribers?status_filter=suspended|inactive")
    assert [subscriber["imsi"] for subscriber in response.get_json()] == [pi_sim(3)["imsi"]]


def test_thousand_sims_set_group(lab):
    lab.admin.post("/_lab/seed_sims", json={"count": 1000})
    group_id = lab.create_group("bulk")
    for number in range(1, 1001):
        imsi = f"44010399{number:07d}"
        response = lab.call("POST", f"/v1/subscribers/{imsi}/set_group", json={"groupId": group_id})
        assert response.status_code == 200
    members = [sim for sim in lab.state.snapshot()["sims"] if sim["group_id"] == group_id]
    assert len(members) == 1000


# ============================================================================ rate limit


def test_rate_limit_off_sends_no_headers(lab):
    response = lab.call("GET", "/v1/sims")
    assert "X-Soracom-Ratelimit-Limit" not in response.headers


def test_rate_limit_429_with_headers(lab):
    configured = lab.admin.post("/_lab/ratelimit", json={"enabled": True, "limit": 2})
    assert configured.get_json()["enabled"] is True
    first = lab.call("GET", "/v1/sims")
    second = lab.call("GET", "/v1/sims")
    third = lab.call("GET", "/v1/sims")
    assert first.headers["X-Soracom-Ratelimit-Limit"] == "2"
    assert first.headers["X-Soracom-Ratelimit-Remaining"] == "1"
    assert second.headers["X-Soracom-Ratelimit-Remaining"] == "0"
    assert third.status_code == 429
    assert third.get_json()["code"] == "LAB0429"
    assert third.headers["X-Soracom-Ratelimit-Limit"] == "2"
    assert third.headers["X-Soracom-Ratelimit-Remaining"] == "0"
    assert 1 <= int(third.headers["X-Soracom-Ratelimit-Seconds-Before-Refresh"]) <= 60


def test_rate_limit_counts_each_api_separately(lab):
    lab.admin.post("/_lab/ratelimit", json={"enabled": True, "limit": 1})
    assert lab.call("GET", "/v1/sims").status_code == 200
    assert lab.call("GET", "/v1/sims").status_code == 429
    assert lab.call("GET", "/v1/groups").status_code == 200
    sim_path = f"/v1/sims/{pi_sim(1)['sim_id']}"
    assert lab.call("GET", sim_path).status_code == 200
    assert lab.call("GET", f"/v1/sims/{pi_sim(2)['sim_id']}").status_code == 429


def test_rate_limit_path_override_and_off(lab):
    lab.admin.post("/_lab/ratelimit", json={"enabled": True, "limit": 1,
                                            "path_limits": {"GET /v1/sims": 3}})
    statuses = [lab.call("GET", "/v1/sims").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    lab.admin.post("/_lab/ratelimit", json={"enabled": False})
    assert lab.call("GET", "/v1/sims").status_code == 200


def test_rate_limit_auth_is_per_address(lab):
    lab.admin.post("/_lab/ratelimit", json={"enabled": True, "limit": 1})
    body = {"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY}
    first = lab.api.post("/v1/auth", json=body, environ_base={"REMOTE_ADDR": "127.0.0.5"})
    repeated = lab.api.post("/v1/auth", json=body, environ_base={"REMOTE_ADDR": "127.0.0.5"})
    other_address = lab.api.post("/v1/auth", json=body, environ_base={"REMOTE_ADDR": "127.0.0.6"})
    assert first.status_code == 200
    assert repeated.status_code == 429
    assert other_address.status_code == 200


# ============================================================================ admin API


def test_admin_reset_clears_groups_and_credentials(lab):
    group_id = lab.create_group("fleet")
    add_aws_credential(lab, "krypton-aws", "AKIA1", "s1")
    lab.set_group(1, group_id)
    assert lab.admin.post("/_lab/reset").status_code == 204
    state = lab.admin.get("/_lab/state").get_json()
    assert state["groups"] == []
    assert state["credentials"] == []
    assert all(sim["group_id"] is None for sim in state["sims"])
    assert len(state["sims"]) == 3
    assert lab.call("GET", "/v1/sims").status_code == 200


def test_admin_sims_update_keeps_other_fields(lab):
    group_id = lab.create_group("fleet")
    lab.set_group(1, group_id)
    response = lab.admin.post("/_lab/sims", json={"sim_id": pi_sim(1)["sim_id"], "online": False})
    sim = response.get_json()["sims"][0]
    assert sim["online"] is False
    assert sim["group_id"] == group_id
    assert sim["ip"] == pi_sim(1)["ip"]


@pytest.mark.parametrize("spec", [
    {"sim_id": "x1", "imsi": "440103000000099", "ip": "10.213.0.11"},
    {"sim_id": "x1", "imsi": pi_sim(1)["imsi"]},
    {"sim_id": "x1", "imsi": "4401"},
    {"sim_id": "x1", "imsi": "440103000000099", "ip": "not-an-ip"},
    {"sim_id": "x1", "imsi": "440103000000099", "group_id": "no-such-group"},
    {"sim_id": "x1", "imsi": "440103000000099", "colour": "red"},
    {"imsi": "440103000000099"},
])
def test_admin_sims_rejects_bad_spec(lab, spec):
    response = lab.admin.post("/_lab/sims", json=[spec])
    assert response.status_code == 400
    assert len(lab.state.snapshot()["sims"]) == 3


def test_admin_calls_count_and_clear(lab):
    lab.call("GET", "/v1/sims")
    lab.call("GET", "/v1/sims")
    lab.bootstrap("10.213.0.99")
    calls = lab.admin.get("/_lab/calls").get_json()
    assert calls["counts"]["api"]["GET /v1/sims"] == 2
    assert calls["counts"]["krypton"][f"POST {KRYPTON_PATH}"] == 1
    assert calls["log"][-1]["status"] == 403
    assert lab.admin.delete("/_lab/calls").status_code == 204
    assert lab.admin.get("/_lab/calls").get_json()["counts"] == {}


@pytest.mark.parametrize("body", [{"count": 0}, {"count": "5"}, {"count": 5, "prefix": "44a"},
                                  {"count": 100, "prefix": "44010300000009"}])
def test_admin_seed_sims_rejects_bad_body(lab, body):
    assert lab.admin.post("/_lab/seed_sims", json=body).status_code == 400


# ============================================================================ fault injection (test client)


def add_fault(lab: Lab, **spec) -> dict:
    response = lab.admin.post("/_lab/faults", json=spec)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["faults"][0]


def test_fault_status_default_body(lab):
    add_fault(lab, service="api", path="/v1/sims", type="status")
    response = lab.call("GET", "/v1/sims")
    assert response.status_code == 500
    assert response.get_json() == {"code": "LAB0900", "message": "The lab injected this HTTP 500 response."}
    assert lab.call("GET", "/v1/sims").status_code == 200


def test_fault_status_count_and_listing(lab):
    fault = add_fault(lab, service="api", path="/v1/sims", type="status", status=503, count=2)
    first = lab.call("GET", "/v1/sims")
    listed = lab.admin.get("/_lab/faults").get_json()
    second = lab.call("GET", "/v1/sims")
    third = lab.call("GET", "/v1/sims")
    assert fault["count"] == 2
    assert fault["remaining"] == 2
    assert first.status_code == 503
    assert listed["faults"][0]["remaining"] == 1
    assert second.status_code == 503
    assert third.status_code == 200
    assert lab.admin.get("/_lab/faults").get_json() == {"faults": [], "applied": 2}


def test_fault_status_custom_body_and_headers(lab):
    add_fault(lab, service="api", path="/v1/sims", type="status", status=502,
              body={"code": "GW", "message": "bad gateway"}, headers={"X-Test": "1"})
    response = lab.call("GET", "/v1/sims")
    assert response.status_code == 502
    assert response.get_json() == {"code": "GW", "message": "bad gateway"}
    assert response.headers["X-Test"] == "1"


def test_fault_matches_method_and_glob(lab):
    add_fault(lab, service="api", path="/v1/sims/*/set_group", method="post", type="status", count=5)
    sim_id = pi_sim(1)["sim_id"]
    group_id = lab.create_group("fleet")
    assert lab.call("GET", f"/v1/sims/{sim_id}").status_code == 200
    assert lab.call("POST", f"/v1/sims/{sim_id}/unset_group").status_code == 404
    assert lab.call("POST", f"/v1/sims/{sim_id}/set_group", json={"groupId": group_id}).status_code == 500


def test_fault_applies_only_to_its_service(lab):
    add_fault(lab, service="krypton", path=KRYPTON_PATH, type="status")
    assert lab.call("GET", "/v1/sims").status_code == 200
    assert lab.bootstrap(pi_sim(1)["ip"]).status_code == 500


def test_fault_html_body(lab):
    add_fault(lab, service="krypton", path=KRYPTON_PATH, type="html")
    response = lab.bootstrap(pi_sim(1)["ip"])
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert text.startswith("<!DOCTYPE html>")
    assert "200 OK" in text


def test_fault_html_custom_status_and_page(lab):
    add_fault(lab, service="metadata", path="/v1/subscriber", type="html", status=502, body="<p>down</p>")
    response = lab.read_metadata(pi_sim(2)["ip"])
    assert response.status_code == 502
    assert response.get_data(as_text=True) == "<p>down</p>"


def test_fault_ratelimit_headers(lab):
    add_fault(lab, service="krypton", path=KRYPTON_PATH, type="ratelimit", seconds=7, limit=30)
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 429
    assert response.headers["X-Soracom-Ratelimit-Limit"] == "30"
    assert response.headers["X-Soracom-Ratelimit-Remaining"] == "0"
    assert response.headers["X-Soracom-Ratelimit-Seconds-Before-Refresh"] == "7"
    assert response.headers["Retry-After"] == "7"
    assert response.get_json() == {
        "code": "LAB0429",
        "message": f"Too many requests for {KRYPTON_PATH}. Retry after 7 second(s).",
    }


def test_fault_delay_then_normal_answer(lab):
    add_fault(lab, service="api", path="/v1/sims", type="delay", seconds=0.3)
    started = time.monotonic()
    response = lab.call("GET", "/v1/sims")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert len(response.get_json()) == 3
    assert elapsed >= 0.3


def test_fault_late_response_applies_the_request_before_answering(lab):
    add_fault(lab, service="api", path="/v1/groups", method="POST", type="late_response", seconds=1.5)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        pending = pool.submit(lab.call, "POST", "/v1/groups", json={"tags": {"name": "late"}})
        deadline = started + 1.2
        created = False
        while not created and time.monotonic() < deadline:
            created = any(group["tags"].get("name") == "late"
                          for group in lab.admin.get("/_lab/state").get_json()["groups"])
            time.sleep(0.05)
        # The group exists while the response is still held back.
        assert created and not pending.done()
        response = pending.result(timeout=10)
    assert response.status_code == 201
    assert time.monotonic() - started >= 1.5


def test_fault_truncate_declares_full_length(lab):
    full = lab.call("GET", "/v1/sims").get_data()
    add_fault(lab, service="api", path="/v1/sims", type="truncate")
    response = lab.call("GET", "/v1/sims")
    sent = response.get_data()
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(full)
    assert sent == full[:len(full) // 2]


def test_fault_clock_offset_shifts_date(lab):
    add_fault(lab, service="krypton", path=KRYPTON_PATH, type="clock_offset", seconds=-3600)
    response = lab.bootstrap(pi_sim(1)["ip"])
    server_date = email.utils.parsedate_to_datetime(response.headers["Date"])
    offset = server_date.timestamp() - time.time()
    assert response.status_code == 403
    assert -3605 < offset < -3595


def test_fault_calls_are_counted(lab):
    add_fault(lab, service="krypton", path=KRYPTON_PATH, type="ratelimit")
    lab.bootstrap(pi_sim(1)["ip"])
    lab.bootstrap(pi_sim(1)["ip"])
    calls = lab.admin.get("/_lab/calls").get_json()
    statuses = [entry["status"] for entry in calls["log"] if entry["service"] == "krypton"]
    assert statuses == [429, 403]


def test_fault_delete_by_id_and_clear(lab):
    first = add_fault(lab, service="api", path="/v1/sims", type="status")
    add_fault(lab, service="api", path="/v1/groups", type="status")
    assert lab.admin.delete(f"/_lab/faults/{first['id']}").status_code == 204
    assert lab.admin.delete(f"/_lab/faults/{first['id']}").get_json()["code"] == "LAB0901"
    assert lab.call("GET", "/v1/sims").status_code == 200
    assert lab.admin.delete("/_lab/faults").status_code == 204
    assert lab.call("GET", "/v1/groups").status_code == 200


def test_fault_array_adds_all(lab):
    response = lab.admin.post("/_lab/faults", json=[
        {"service": "api", "path": "/v1/sims", "type": "status"},
        {"service": "api", "path": "/v1/groups", "type": "html"},
    ])
    assert [fault["type"] for fault in response.get_json()["faults"]] == ["status", "html"]


def test_fault_cleared_by_reset(lab):
    add_fault(lab, service="api", path="/v1/sims", type="status")
    lab.admin.post("/_lab/reset")
    assert lab.call("GET", "/v1/sims").status_code == 200


@pytest.mark.parametrize("spec, field", [
    ({"service": "api", "path": "/v1/sims"}, "type"),
    ({"service": "api", "path": "/v1/sims", "type": "explode"}, "type"),
    ({"service": "admin", "path": "/_lab/state", "type": "status"}, "service"),
    ({"service": "api", "path": "v1/sims", "type": "status"}, "path"),
    ({"service": "api", "path": "/v1/sims", "type": "status", "method": "FETCH"}, "method"),
    ({"service": "api", "path": "/v1/sims", "type": "status", "count": 0}, "count"),
    ({"service": "api", "path": "/v1/sims", "type": "status", "status": 99}, "status"),
    ({"service": "api", "path": "/v1/sims", "type": "delay"}, "seconds"),
    ({"service": "api", "path": "/v1/sims", "type": "delay", "seconds": 121}, "seconds"),
    ({"service": "api", "path": "/v1/sims", "type": "delay", "seconds": True}, "seconds"),
    ({"service": "api", "path": "/v1/sims", "type": "late_response"}, "seconds"),
    ({"service": "api", "path": "/v1/sims", "type": "late_response", "seconds": 121}, "seconds"),
    ({"service": "api", "path": "/v1/sims", "type": "clock_offset", "seconds": 1.5}, "seconds"),
    ({"service": "api", "path": "/v1/sims", "type": "ratelimit", "seconds": -1}, "seconds"),
    ({"service": "api", "path": "/v1/sims", "type": "truncate", "seconds": 1}, "seconds"),
    ({"service": "api", "path": "/v1/sims", "type": "html", "body": {"not": "text"}}, "body"),
])
def test_fault_bad_spec_is_400(lab, spec, field):
    response = lab.admin.post("/_lab/faults", json=spec)
    assert response.status_code == 400
    assert f"'{field}'" in response.get_json()["message"]
    assert lab.admin.get("/_lab/faults").get_json()["faults"] == []


def test_fault_bad_entry_adds_nothing(lab):
    response = lab.admin.post("/_lab/faults", json=[
        {"service": "api", "path": "/v1/sims", "type": "status"},
        {"service": "api", "path": "/v1/sims", "type": "status", "count": -1},
    ])
    assert response.status_code == 400
    assert "[1].count" in response.get_json()["message"]
    assert lab.admin.get("/_lab/faults").get_json()["faults"] == []


# ============================================================================ Krypton (no AWS)


def krypton_group(lab: Lab, parameters: list[dict] | None = None, sim_number: int = 1) -> str:
    group_id = lab.create_group("krypton")
    if parameters is not None:
        assert lab.put_config(group_id, "SoracomKrypton", parameters).status_code == 200
    lab.set_group(sim_number, group_id)
    return group_id


def test_krypton_unknown_source_is_403(lab):
    response = lab.bootstrap("192.0.2.10")
    assert response.status_code == 403
    assert "SORACOM Air session" in response.get_json()["message"]


def test_krypton_offline_sim_is_403(lab):
    lab.admin.post("/_lab/sims", json={"sim_id": pi_sim(1)["sim_id"], "online": False})
    assert lab.bootstrap(pi_sim(1)["ip"]).status_code == 403


def test_krypton_inactive_sim_is_403(lab):
    lab.admin.post("/_lab/sims", json={"sim_id": pi_sim(1)["sim_id"], "status": "suspended"})
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 403
    assert "suspended" in response.get_json()["message"]


def test_krypton_sim_without_group_is_403(lab):
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 403
    assert response.get_json() == {
        "code": "LAB2003",
        "message": f"SIM {pi_sim(1)['imsi']} does not belong to a group. Add it to a group whose "
                   "SoracomKrypton configuration is enabled.",
    }


def test_krypton_group_without_namespace_is_403(lab):
    group_id = krypton_group(lab)
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 403
    assert response.get_json() == {
        "code": "LAB2004",
        "message": f"SORACOM Krypton is not enabled for group '{group_id}' of SIM {pi_sim(1)['imsi']}: "
                   "the group has no SoracomKrypton configuration",
    }


def test_krypton_disabled_is_403(lab):
    parameters = krypton_configuration()
    parameters[0]["value"] = False
    group_id = krypton_group(lab, parameters)
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 403
    assert response.get_json() == {
        "code": "LAB2004",
        "message": f"SORACOM Krypton is not enabled for group '{group_id}' of SIM {pi_sim(1)['imsi']}: "
                   "SoracomKrypton.enabled is not true",
    }


def test_krypton_error_message_in_japanese(lab):
    response = lab.krypton.post(KRYPTON_PATH, headers={"X-Soracom-Lang": "ja"},
                                environ_base={"REMOTE_ADDR": pi_sim(1)["ip"]})
    assert response.status_code == 403
    assert response.get_json()["code"] == "LAB2003"
    assert "グループに所属していません" in response.get_json()["message"]


def test_krypton_missing_aws_iot_is_400(lab):
    group_id = krypton_group(lab, [{"key": "enabled", "value": True}])
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 400
    assert response.get_json() == {
        "code": "LAB2005",
        "message": f"The SoracomKrypton configuration of group '{group_id}' is incomplete: "
                   "SoracomKrypton.AwsIot is missing",
    }


def test_krypton_incomplete_aws_iot_names_fields(lab):
    parameters = krypton_configuration()
    del parameters[1]["value"]["policyName"]
    del parameters[1]["value"]["host"]
    krypton_group(lab, parameters)
    response = lab.bootstrap(pi_sim(1)["ip"])
    message = response.get_json()["message"]
    assert response.status_code == 400
    assert response.get_json()["code"] == "LAB2005"
    assert "SoracomKrypton.AwsIot.policyName" in message
    assert "SoracomKrypton.AwsIot.host" in message


def test_krypton_missing_credential_set_is_400(lab):
    group_id = krypton_group(lab, krypton_configuration("absent-credentials"))
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 400
    assert response.get_json() == {
        "code": "LAB2006",
        "message": f"Credential set 'absent-credentials' named in group '{group_id}' does not exist.",
    }


def test_krypton_wrong_credential_type_is_400(lab):
    lab.call("POST", "/v1/credentials/psk-1", json={"type": "psk", "credentials": {"key": "k"}})
    group_id = krypton_group(lab, krypton_configuration("psk-1"))
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 400
    assert response.get_json() == {
        "code": "LAB2006",
        "message": f"Credential set 'psk-1' named in group '{group_id}' has type psk, not aws-credentials.",
    }


@pytest.mark.parametrize("body", [
    {"requestParameters": {"thingName": "has space"}},
    {"requestParameters": {"thingName": 7}},
    {"requestParameters": "pi01"},
])
def test_krypton_bad_thing_name_is_400(lab, body):
    add_aws_credential(lab, "krypton-aws", "AKIA1", "s1")
    krypton_group(lab, krypton_configuration())
    assert lab.bootstrap(pi_sim(1)["ip"], body).status_code == 400


def test_krypton_unreachable_aws_is_502(lab):
    add_aws_credential(lab, "krypton-aws", "AKIA1", "s1")
    krypton_group(lab, krypton_configuration())
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 502
    assert response.get_json()["code"] == "LAB2008"
    assert "DescribeThing" in response.get_json()["message"]


def test_krypton_sees_group_change_at_once(lab):
    group_id = krypton_group(lab, krypton_configuration())
    assert lab.bootstrap(pi_sim(1)["ip"]).status_code == 400
    lab.call("POST", f"/v1/sims/{pi_sim(1)['sim_id']}/unset_group")
    assert lab.bootstrap(pi_sim(1)["ip"]).status_code == 403
    lab.set_group(1, group_id)
    assert lab.bootstrap(pi_sim(1)["ip"]).status_code == 400


def test_krypton_other_paths_are_404(lab):
    response = lab.krypton.post("/v1/provisioning/aws/cognito/credentials",
                                environ_base={"REMOTE_ADDR": pi_sim(1)["ip"]})
    assert response.status_code == 404


# ============================================================================ Krypton light mode (no AWS)


class FakeProvisioner:
    """Stands in for AwsIotProvisioner: one self-signed certificate per call, or a preset error."""

    def __init__(self, error=None) -> None:
        self.error = error
        self.calls: list[dict] = []

    def bootstrap(self, region, access_key_id, secret_access_key, thing_name, policy_name) -> dict:
        self.calls.append({"region": region, "access_key_id": access_key_id, "thing_name": thing_name,
                           "policy_name": policy_name})
        if self.error is not None:
            raise self.error
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AWS IoT Certificate")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
        )
        certificate_id = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
        return {
            "certificateArn": f"arn:aws:iot:{region}:123456789012:cert/{certificate_id}",
            "certificateId": certificate_id,
            "certificatePem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
            "privateKey": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption()).decode(),
        }


@pytest.fixture
def light_lab() -> Lab:
    """Return a lab with SIM 1 in a Krypton group, whose AWS calls go to a FakeProvisioner."""
    lab = Lab(provisioner=FakeProvisioner())
    add_aws_credential(lab, "krypton-aws", "AKIA1", "s1")
    krypton_group(lab, krypton_configuration())
    return lab


LIGHT = {"requestParameters": {"skipCertificates": True}}
CERTIFICATES_PATH = "/v1/provisioning/aws/iot/certificates"
CA_CERTIFICATE_PATH = "/v1/provisioning/aws/iot/ca_certificate"


def test_krypton_full_response_fields(light_lab):
    response = light_lab.bootstrap(pi_sim(1)["ip"])
    body = response.get_json()
    assert response.status_code == 200
    assert set(body) == {"certificate", "privateKey", "rootCaCertificate", "host", "clientId", "region"}
    assert body["clientId"] == f"lab-{pi_sim(1)['imsi']}"
    assert body["rootCaCertificate"] == ROOT_CA_PEM


def test_krypton_light_mode_skips_certificates(light_lab):
    response = light_lab.bootstrap(pi_sim(1)["ip"], LIGHT)
    body = response.get_json()
    assert response.status_code == 200
    assert set(body) == {"privateKey", "certificateId", "host", "clientId", "region"}
    assert body["privateKey"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert re.fullmatch(r"[0-9a-f]{64}", body["certificateId"])
    assert body["host"] == ATS_HOST
    assert body["clientId"] == f"lab-{pi_sim(1)['imsi']}"
    assert body["region"] == REGION


def test_krypton_light_certificate_download(light_lab):
    light = light_lab.bootstrap(pi_sim(1)["ip"], LIGHT).get_json()
    response = light_lab.bootstrap(pi_sim(1)["ip"], path=f"{CERTIFICATES_PATH}/{light['certificateId']}")
    certificate = x509.load_pem_x509_certificate(response.get_json()["certificate"].encode())
    private_key = serialization.load_pem_private_key(light["privateKey"].encode(), password=None)
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert response.status_code == 200
    assert set(response.get_json()) == {"certificate"}
    assert hashlib.sha256(der).hexdigest() == light["certificateId"]
    assert certificate.public_key().public_numbers() == private_key.public_key().public_numbers()


def test_krypton_light_certificate_of_other_sim_is_404(light_lab):
    light = light_lab.bootstrap(pi_sim(1)["ip"], LIGHT).get_json()
    light_lab.set_group(2, light_lab.state.snapshot()["groups"][0]["groupId"])
    response = light_lab.bootstrap(pi_sim(2)["ip"], path=f"{CERTIFICATES_PATH}/{light['certificateId']}")
    assert response.status_code == 404
    assert response.get_json() == {
        "code": "LAB2010",
        "message": f"Certificate '{light['certificateId']}' was not issued to SIM {pi_sim(2)['imsi']} "
                   "by a bootstrap with skipCertificates.",
    }


def test_krypton_full_bootstrap_certificate_not_downloadable(light_lab):
    full = light_lab.bootstrap(pi_sim(1)["ip"]).get_json()
    certificate = x509.load_pem_x509_certificate(full["certificate"].encode())
    certificate_id = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    response = light_lab.bootstrap(pi_sim(1)["ip"], path=f"{CERTIFICATES_PATH}/{certificate_id}")
    assert response.status_code == 404


def test_krypton_light_certificates_kept_per_sim(light_lab):
    # More bootstraps than Krypton's rate limit allows in one second.
    light_lab.admin.post("/_lab/krypton_ratelimit", json={"enabled": False})
    first = light_lab.bootstrap(pi_sim(1)["ip"], LIGHT).get_json()["certificateId"]
    for _ in range(LIGHT_CERTIFICATES_PER_SIM):
        last = light_lab.bootstrap(pi_sim(1)["ip"], LIGHT).get_json()["certificateId"]
    assert light_lab.bootstrap(pi_sim(1)["ip"], path=f"{CERTIFICATES_PATH}/{first}").status_code == 404
    assert light_lab.bootstrap(pi_sim(1)["ip"], path=f"{CERTIFICATES_PATH}/{last}").status_code == 200


def test_krypton_ca_certificate_download(light_lab):
    response = light_lab.bootstrap(pi_sim(1)["ip"], path=CA_CERTIFICATE_PATH)
    assert response.status_code == 200
    assert response.get_json() == {"rootCaCertificate": ROOT_CA_PEM}


@pytest.mark.parametrize("path", [f"{CERTIFICATES_PATH}/abc", CA_CERTIFICATE_PATH])
def test_krypton_downloads_need_krypton_group(lab, path):
    unknown = lab.bootstrap("192.0.2.10", path=path)
    without_group = lab.bootstrap(pi_sim(1)["ip"], path=path)
    assert unknown.status_code == 403
    assert unknown.get_json()["code"] == "LAB2001"
    assert without_group.status_code == 403
    assert without_group.get_json()["code"] == "LAB2003"


@pytest.mark.parametrize("value", ["true", 1, None])
def test_krypton_skip_certificates_must_be_boolean(light_lab, value):
    response = light_lab.bootstrap(pi_sim(1)["ip"], {"requestParameters": {"skipCertificates": value}})
    assert response.status_code == 400
    assert response.get_json() == {
        "code": "LAB0105",
        "message": "Field 'requestParameters.skipCertificates' must be a boolean.",
    }


def test_krypton_aws_access_denied_names_credential_set(lab):
    error = api_error("krypton_aws_error", status=403, operation="CreateKeysAndCertificate",
                      aws_code="AccessDeniedException",
                      aws_message="User: arn:aws:iam::123456789012:user/krypton is not authorized to perform: "
                                  "iot:CreateKeysAndCertificate.")
    lab = Lab(provisioner=FakeProvisioner(error=error))
    add_aws_credential(lab, "krypton-aws", "AKIA1", "s1")
    krypton_group(lab, krypton_configuration())
    response = lab.bootstrap(pi_sim(1)["ip"])
    assert response.status_code == 403
    assert response.get_json() == {
        "code": "LAB2009",
        "message": "AWS IoT CreateKeysAndCertificate was denied for the IAM user of credential set 'krypton-aws': "
                   "AccessDeniedException: User: arn:aws:iam::123456789012:user/krypton is not authorized to "
                   "perform: iot:CreateKeysAndCertificate. Give that user the missing permission.",
    }


# ============================================================================ metadata (test client)


def metadata_group(lab: Lab, metadata: dict, userdata: str | None = None) -> str:
    group_id = lab.create_group("metadata")
    parameters = [{"key": "metadata", "value": metadata}]
    if userdata is not None:
        parameters.append({"key": "userdata", "value": userdata})
    assert lab.put_config(group_id, "SoracomAir", parameters).status_code == 200
    lab.set_group(2, group_id)
    return group_id


def test_metadata_returns_calling_subscriber(lab):
    group_id = metadata_group(lab, {"enabled": True})
    response = lab.read_metadata(pi_sim(2)["ip"])
    body = response.get_json()
    assert response.status_code == 200
    assert body["imsi"] == pi_sim(2)["imsi"]
    assert body["groupId"] == group_id
    assert body["sessionStatus"]["ueIpAddress"] == pi_sim(2)["ip"]


def test_metadata_field_and_userdata(lab):
    metadata_group(lab, {"enabled": True, "allowOrigin": "http://app.example"}, userdata="firmware=2")
    imsi = lab.read_metadata(pi_sim(2)["ip"], "/v1/subscriber.imsi")
    online = lab.read_metadata(pi_sim(2)["ip"], "/v1/subscriber.sessionStatus.online")
    userdata = lab.read_metadata(pi_sim(2)["ip"], "/v1/userdata")
    assert imsi.get_data(as_text=True) == pi_sim(2)["imsi"]
    assert imsi.mimetype == "text/plain"
    assert imsi.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert online.get_json() is True
    assert userdata.get_data(as_text=True) == "firmware=2"
    assert lab.read_metadata(pi_sim(2)["ip"], "/v1/subscriber.nothing").status_code == 404


def test_metadata_disabled_is_403(lab):
    metadata_group(lab, {"enabled": False})
    response = lab.read_metadata(pi_sim(2)["ip"])
    assert response.status_code == 403
    assert "not enabled" in response.get_json()["message"]


def test_metadata_without_group_is_403(lab):
    assert lab.read_metadata(pi_sim(2)["ip"]).status_code == 403


def test_metadata_unknown_source_is_403(lab):
    assert lab.read_metadata("192.0.2.20").status_code == 403


def test_metadata_write_is_403_when_read_only(lab):
    metadata_group(lab, {"enabled": True, "readonly": True})
    assert lab.read_metadata(pi_sim(2)["ip"], "/v1/subscriber/tags", method="PUT").status_code == 403


def test_metadata_sees_group_change_at_once(lab):
    group_id = metadata_group(lab, {"enabled": True})
    assert lab.read_metadata(pi_sim(2)["ip"]).status_code == 200
    lab.put_config(group_id, "SoracomAir", [{"key": "metadata", "value": {"enabled": False}}])
    assert lab.read_metadata(pi_sim(2)["ip"]).status_code == 403


# ============================================================================ OpenAPI spec validation

# SORACOM's OpenAPI spec from soracom-cli. The tests that need it are skipped when it is absent.
SPEC_PATH = Path(os.environ.get("SORACOM_OPENAPI_SPEC", "/work/shared/reference/soracom-api/soracom-api.en.yaml"))


def skip_without_spec() -> None:
    if not SPEC_PATH.is_file():
        pytest.skip(f"SORACOM OpenAPI spec not found at {SPEC_PATH}; set SORACOM_OPENAPI_SPEC to its path")


@pytest.fixture(scope="session")
def openapi_spec(tmp_path_factory):
    skip_without_spec()
    from soracom_emulator.specvalidation import OpenApiSpec

    return OpenApiSpec.load(str(SPEC_PATH), tmp_path_factory.mktemp("spec-cache"))


@pytest.fixture
def spec_lab(openapi_spec) -> Lab:
    return Lab(spec=openapi_spec)


def spec_report(lab: Lab) -> dict:
    return lab.admin.get("/_lab/spec_violations").get_json()


def test_spec_off_reports_disabled(lab):
    assert spec_report(lab) == {"enabled": False, "spec": None, "count": 0, "violations": [],
                                "rejected_request_count": 0, "rejected_requests": []}


def test_spec_valid_request_passes(spec_lab):
    response = spec_lab.api.post("/v1/auth", json={"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY,
                                                   "tokenTimeoutSeconds": 600})
    report = spec_report(spec_lab)
    assert response.status_code == 200
    assert report["enabled"] is True
    assert report["spec"] == str(SPEC_PATH)
    assert report["rejected_request_count"] == 0
    assert report["count"] == 0


def test_spec_wrong_type_is_400(spec_lab):
    response = spec_lab.call("POST", f"/v1/sims/{pi_sim(1)['sim_id']}/set_group", json={"groupId": 5})
    assert response.status_code == 400
    assert response.get_json() == {
        "code": "LAB0110",
        "message": "The request does not match the SORACOM API specification (operation setSimGroup): "
                   "request body: groupId: 5 is not of type 'string'",
    }
    assert spec_report(spec_lab)["rejected_requests"][0]["operation"] == "setSimGroup"


def test_spec_missing_required_field_is_400(spec_lab):
    group_id = spec_lab.create_group("fleet")
    response = spec_lab.call("PUT", f"/v1/groups/{group_id}/configuration/SoracomKrypton", json=[{"key": "enabled"}])
    assert response.status_code == 400
    assert response.get_json()["code"] == "LAB0110"
    assert "putConfigurationParameters" in response.get_json()["message"]
    assert "0: 'value' is a required property" in response.get_json()["message"]


def test_spec_auth_wrong_type_is_400(spec_lab):
    response = spec_lab.api.post("/v1/auth", json={"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY,
                                                   "tokenTimeoutSeconds": "600"})
    assert response.status_code == 400
    assert "tokenTimeoutSeconds: '600' is not of type 'integer'" in response.get_json()["message"]


@pytest.mark.parametrize("method, path, kwargs, expected", [
    ("GET", "/v1/subscribers?limit=many", {}, "Query parameter error: limit"),
    ("PUT", "/v1/groups/g-1/configuration/SoracomNothing", {"json": []}, "Invalid path parameter: namespace"),
    ("POST", "/v1/groups", {"data": "{}", "content_type": "text/plain"}, "text/plain"),
    ("POST", "/v1/groups", {}, "Missing required request body"),
])
def test_spec_bad_request_is_400(spec_lab, method, path, kwargs, expected):
    response = spec_lab.call(method, path, **kwargs)
    assert response.status_code == 400
    assert response.get_json()["code"] == "LAB0110"
    assert expected in response.get_json()["message"]


def test_spec_missing_token_is_still_401(spec_lab):
    response = spec_lab.api.post(f"/v1/sims/{pi_sim(1)['sim_id']}/set_group", json={"groupId": 5})
    assert response.status_code == 401
    assert response.get_json()["code"] == "AUM0001"


def test_spec_unknown_route_is_still_404(spec_lab):
    response = spec_lab.call("GET", "/v1/no_such_api")
    assert response.status_code == 404
    assert spec_report(spec_lab)["rejected_request_count"] == 0


# Every operation the collection sends, as (method, path template) of the spec.
COLLECTION_OPERATIONS = [
    ("POST", "/v1/auth"),
    ("GET", "/v1/credentials"),
    ("POST", "/v1/credentials/{credentials_id}"),
    ("PUT", "/v1/credentials/{credentials_id}"),
    ("DELETE", "/v1/credentials/{credentials_id}"),
    ("GET", "/v1/groups"),
    ("POST", "/v1/groups"),
    ("GET", "/v1/groups/{group_id}"),
    ("DELETE", "/v1/groups/{group_id}"),
    ("PUT", "/v1/groups/{group_id}/tags"),
    ("PUT", "/v1/groups/{group_id}/configuration/{namespace}"),
    ("DELETE", "/v1/groups/{group_id}/configuration/{namespace}"),
    ("DELETE", "/v1/groups/{group_id}/configuration/{namespace}/{name}"),
    ("GET", "/v1/sims"),
    ("GET", "/v1/sims/{sim_id}"),
    ("POST", "/v1/sims/{sim_id}/set_group"),
    ("POST", "/v1/sims/{sim_id}/unset_group"),
    ("GET", "/v1/subscribers"),
    ("POST", "/v1/subscribers/{imsi}/set_group"),
]


@pytest.fixture(scope="module")
def collection_calls(openapi_spec) -> dict:
    """Send each operation of COLLECTION_OPERATIONS with the bodies the collection sends.

    Returns the spec report and the status of each operation, keyed as in COLLECTION_OPERATIONS.
    """
    lab = Lab(spec=openapi_spec)
    sim_id, imsi = pi_sim(1)["sim_id"], pi_sim(2)["imsi"]
    statuses = {}

    def send(method: str, template: str, path: str, **kwargs) -> dict:
        response = lab.call(method, path, **kwargs)
        statuses.setdefault((method, template), []).append(response.status_code)
        return response.get_json(silent=True)

    send("POST", "/v1/auth", "/v1/auth", json={"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY})
    aws = {"type": "aws-credentials", "description": "Krypton",
           "credentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret"}}
    send("POST", "/v1/credentials/{credentials_id}", "/v1/credentials/krypton-aws", json=aws)
    send("PUT", "/v1/credentials/{credentials_id}", "/v1/credentials/krypton-aws", json=aws)
    send("GET", "/v1/credentials", "/v1/credentials")
    group = send("POST", "/v1/groups", "/v1/groups", json={"tags": {"name": "fleet"}})
    group_id = group["groupId"]
    send("GET", "/v1/groups", "/v1/groups?tag_name=name&tag_value=fleet&limit=10")
    send("GET", "/v1/groups/{group_id}", f"/v1/groups/{group_id}")
    send("PUT", "/v1/groups/{group_id}/tags", f"/v1/groups/{group_id}/tags",
         json=[{"tagName": "purpose", "tagValue": "krypton"}])
    configuration = f"/v1/groups/{group_id}/configuration/SoracomKrypton"
    send("PUT", "/v1/groups/{group_id}/configuration/{namespace}", configuration, json=krypton_configuration())
    send("POST", "/v1/sims/{sim_id}/set_group", f"/v1/sims/{sim_id}/set_group", json={"groupId": group_id})
    send("GET", "/v1/sims", "/v1/sims?limit=2")
    send("GET", "/v1/sims/{sim_id}", f"/v1/sims/{sim_id}")
    send("POST", "/v1/sims/{sim_id}/unset_group", f"/v1/sims/{sim_id}/unset_group")
    send("POST", "/v1/subscribers/{imsi}/set_group", f"/v1/subscribers/{imsi}/set_group", json={"groupId": group_id})
    send("GET", "/v1/subscribers", "/v1/subscribers?limit=100")
    send("POST", "/v1/sims/{sim_id}/unset_group", f"/v1/sims/{pi_sim(2)['sim_id']}/unset_group")
    send("DELETE", "/v1/groups/{group_id}/configuration/{namespace}/{name}", f"{configuration}/AwsIot")
    send("DELETE", "/v1/groups/{group_id}/configuration/{namespace}", configuration)
    send("DELETE", "/v1/groups/{group_id}", f"/v1/groups/{group_id}")
    send("DELETE", "/v1/credentials/{credentials_id}", "/v1/credentials/krypton-aws")
    return {"report": spec_report(lab), "statuses": statuses}


@pytest.mark.parametrize("method, template", COLLECTION_OPERATIONS)
def test_spec_collection_operation_fits(collection_calls, method, template):
    statuses = collection_calls["statuses"][(method, template)]
    pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
    violations = [entry for entry in collection_calls["report"]["violations"]
                  if entry["method"] == method and pattern.match(entry["path"])]
    assert all(200 <= status < 300 for status in statuses), statuses
    assert violations == []


def test_spec_no_rejected_collection_requests(collection_calls):
    assert collection_calls["report"]["rejected_requests"] == []


def test_spec_violation_recorded_and_logged(spec_lab, monkeypatch, caplog):
    monkeypatch.setattr(spec_lab.state, "list_credentials", lambda operator_id: [{"credentialsId": 5}])
    with caplog.at_level(logging.WARNING, logger="soracom_emulator.accounting"):
        response = spec_lab.call("GET", "/v1/credentials")
    report = spec_report(spec_lab)
    assert response.status_code == 200
    assert report["count"] == 1
    assert report["violations"][0]["operation"] == "listCredentials"
    assert "0.credentialsId: 5 is not of type 'string'" in report["violations"][0]["errors"][0]
    assert "spec violation 1: response 200 to GET /v1/credentials (listCredentials)" in caplog.text


def test_spec_violation_of_auth_never_quotes_token(spec_lab, monkeypatch):
    secret_token = 987654321
    monkeypatch.setattr(spec_lab.state, "authenticate", lambda form, identity, timeout: {
        "apiKey": "api-x", "operatorId": OPERATOR_ID, "token": secret_token})
    spec_lab.api.post("/v1/auth", json={"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY})
    report = spec_report(spec_lab)
    assert report["count"] == 1
    assert "token: fails the 'type' check" in report["violations"][0]["errors"][0]
    assert str(secret_token) not in json.dumps(report)


def test_spec_undeclared_success_status_is_violation(spec_lab, monkeypatch):
    monkeypatch.setattr(spec_lab.state, "delete_credential", lambda operator_id, credentials_id: None)
    spec_lab.call("DELETE", "/v1/credentials/any")
    assert spec_report(spec_lab)["count"] == 0
    monkeypatch.setattr(spec_lab.state, "create_credential", lambda operator_id, credentials_id, body: {})
    response = spec_lab.call("POST", "/v1/credentials/x", json={"type": "aws-credentials", "credentials": {
        "accessKeyId": "a", "secretAccessKey": "b"}})
    assert response.status_code == 201
    assert "credentialsId' is a required property" in spec_report(spec_lab)["violations"][0]["errors"][0]


def test_spec_error_statuses_are_not_violations(spec_lab):
    spec_lab.call("GET", "/v1/sims/0000")
    spec_lab.call("POST", f"/v1/sims/{pi_sim(1)['sim_id']}/unset_group")
    spec_lab.api.get("/v1/sims")
    assert spec_report(spec_lab)["count"] == 0


def test_spec_fault_responses_are_not_checked(spec_lab):
    spec_lab.admin.post("/_lab/faults", json={"service": "api", "path": "/v1/sims", "type": "status",
                                               "status": 200, "body": {"not": "a list"}})
    assert spec_lab.call("GET", "/v1/sims").get_json() == {"not": "a list"}
    assert spec_report(spec_lab)["count"] == 0


def test_spec_violations_cleared(spec_lab, monkeypatch):
    monkeypatch.setattr(spec_lab.state, "list_credentials", lambda operator_id: "not a list")
    spec_lab.call("GET", "/v1/credentials")
    spec_lab.call("POST", f"/v1/sims/{pi_sim(1)['sim_id']}/set_group", json={"groupId": 5})
    assert spec_report(spec_lab)["count"] == 1
    assert spec_lab.admin.delete("/_lab/spec_violations").status_code == 204
    assert spec_report(spec_lab)["count"] == 0
    assert spec_report(spec_lab)["rejected_request_count"] == 0


def test_spec_cache_is_reused(openapi_spec, tmp_path):
    from soracom_emulator.specvalidation import OpenApiSpec

    first = OpenApiSpec.load(str(SPEC_PATH), tmp_path)
    second = OpenApiSpec.load(str(SPEC_PATH), tmp_path)
    assert first.cache_hit is False
    assert second.cache_hit is True
    assert second.path_count == first.path_count == openapi_spec.path_count
    assert second.spec_errors == first.spec_errors
    assert len(list(tmp_path.glob("soracom-api-*.json"))) == 1


def test_spec_cache_of_other_file_is_ignored(openapi_spec, tmp_path):
    from soracom_emulator.specvalidation import OpenApiSpec

    OpenApiSpec.load(str(SPEC_PATH), tmp_path)
    cache_file = next(tmp_path.glob("soracom-api-*.json"))
    cache_file.write_text(json.dumps({"format": 1, "sha256": "0" * 64, "spec": {}, "spec_errors": []}))
    assert OpenApiSpec.load(str(SPEC_PATH), tmp_path).cache_hit is False


def test_spec_not_openapi_is_rejected(tmp_path):
    skip_without_spec()
    from soracom_emulator.specvalidation import OpenApiSpec

    path = tmp_path / "broken.yaml"
    path.write_text("just: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        OpenApiSpec.load(str(path), None)
    path.write_text("openapi: 3.0.0\n")
    with pytest.raises(ValueError, match="no 'paths'"):
        OpenApiSpec.load(str(path), None)


# ============================================================================ end to end: server.py + moto


def wait_for_http(url: str, process: subprocess.Popen, log_path: Path) -> None:
    subprocesses.wait_for_http(url, process, log_path, STARTUP_TIMEOUT)


def make_pki(directory: Path) -> dict[str, Path]:
    """Write a CA and a server certificate for 127.0.0.1 into ``directory`` and return their paths."""
    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(name("Test SORACOM Lab CA")).issuer_name(name("Test SORACOM Lab CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca_cert.subject)
        .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address(HOST))]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "ca.crt", "cert": directory / "server.crt", "key": directory / "server.key"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return paths


def aws_client(service: str, endpoint: str, keys: tuple[str, str]):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=keys[0], aws_secret_access_key=keys[1])


def create_iam_user(iam, name: str, inline_actions: list[str]) -> tuple[str, str]:
    """Create a user with AWSIoTThingsRegistration plus an inline policy and return its access key."""
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name,
                           PolicyArn="arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration")
    if inline_actions:
        iam.put_user_policy(UserName=name, PolicyName="krypton-extra", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": inline_actions, "Resource": "*"}],
        }))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """moto on 127.0.0.1 with IAM enforcement on, an admin, and two Krypton IAM users."""
    if not MOTO_LAB_SERVER.exists():
        pytest.skip(f"{MOTO_LAB_SERVER} is missing; stock moto 5.2.5 rejects body-less IoT calls "
                    "(CreateKeysAndCertificate) with SignatureDoesNotMatch once IAM enforcement is on")
    directory = tmp_path_factory.mktemp("moto")
    log_path = directory / "moto.log"
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(name, None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, str(MOTO_LAB_SERVER), "-H", HOST, "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_http(f"{endpoint}/moto-api/", process, log_path)
        iam = aws_client("iam", endpoint, ("bootstrap", "bootstrap"))
        iam.create_user(UserName="lab-admin")
        iam.attach_user_policy(UserName="lab-admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        admin_key = iam.create_access_key(UserName="lab-admin")["AccessKey"]
        admin = (admin_key["AccessKeyId"], admin_key["SecretAccessKey"])
        krypton = create_iam_user(iam, "krypton", ["iot:CreateKeysAndCertificate"])
        no_certificates = create_iam_user(iam, "krypton-no-certificates", [])
        aws_client("iot", endpoint, admin).create_policy(policyName=IOT_POLICY, policyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
        }))
        request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        yield {"endpoint": endpoint, "admin": admin, "krypton": krypton, "no_certificates": no_certificates}
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory, moto_server):
    """server.py on 127.0.0.1 with free ports, TLS from a throwaway CA, AWS calls to moto."""
    directory = tmp_path_factory.mktemp("soracom")
    pki = make_pki(directory)
    ports = {name: free_port() for name in ("api", "krypton", "metadata", "admin")}
    log_path = directory / "soracom.log"
    stderr_path = directory / "stderr.log"
    command = [sys.executable, str(SERVER)]
    for name, port in ports.items():
        command += [f"--{name}", f"{HOST}:{port}"]
    command += ["--cert", str(pki["cert"]), "--key", str(pki["key"]), "--root-ca", str(pki["ca"]),
                "--aws-endpoint", moto_server["endpoint"], "--log", str(log_path)]
    validating = SPEC_PATH.is_file()
    if validating:
        command += ["--validate-spec", str(SPEC_PATH), "--spec-cache", str(directory / "spec-cache")]
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stderr, stderr=subprocess.STDOUT)
    urls = {name: f"http://{HOST}:{port}" for name, port in ports.items()}
    urls["api"] = f"https://{HOST}:{ports['api']}"
    urls["krypton"] = f"https://{HOST}:{ports['krypton']}"
    try:
        wait_for_http(f"{urls['admin']}/_lab/state", process, stderr_path)
        admin_post(urls["admin"], "/_lab/auth_keys",
                   {"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY, "operatorId": OPERATOR_ID})
        yield {"urls": urls, "pki": pki, "log": log_path, "process": process, "moto": moto_server,
               "validating": validating}
    finally:
        stop_process(process)


def admin_post(admin_url: str, path: str, body) -> dict | None:
    request = urllib.request.Request(f"{admin_url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def admin_get(admin_url: str, path: str) -> dict:
    with urllib.request.urlopen(f"{admin_url}{path}", timeout=10) as response:
        return json.loads(response.read())


def request_from(source: str, method: str, url: str, body=None, headers: dict | None = None,
                 cafile: Path | None = None) -> tuple[int, dict, bytes]:
    """Send one request with the client socket bound to ``source`` (a 127.0.0.x address)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=str(cafile))
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context,
                                                 source_address=(source, 0), timeout=30)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, source_address=(source, 0), timeout=30)
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json"} if data else {}
    all_headers.update(headers or {})
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=data,
                           headers=all_headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class ApiSession:
    """A logged-in SORACOM API client over HTTPS, verifying the test CA."""

    def __init__(self, emulator: dict) -> None:
        self.url = emulator["urls"]["api"]
        self.cafile = emulator["pki"]["ca"]
        status, _, body = self.call("POST", "/v1/auth", {"authKeyId": AUTH_KEY_ID, "authKey": AUTH_KEY},
                                    authenticated=False)
        assert status == 200, body
        login = json.loads(body)
        self.headers = {"X-Soracom-API-Key": login["apiKey"], "X-Soracom-Token": login["token"]}

    def call(self, method: str, path: str, body=None, authenticated: bool = True):
        headers = self.headers if authenticated else {}
        return request_from(HOST, method, f"{self.url}{path}", body, headers, cafile=self.cafile)

    def json(self, method: str, path: str, body=None, expected: int = 200):
        status, _, payload = self.call(method, path, body)
        assert status == expected, payload
        return json.loads(payload) if payload else None


@pytest.fixture(scope="module")
def e2e(emulator) -> dict:
    """Two loopback SIMs (127.0.0.2 for Krypton, 127.0.0.3 for metadata) and a logged-in session."""
    admin_post(emulator["urls"]["admin"], "/_lab/sims", [pi_sim(21, ip="127.0.0.2"), pi_sim(22, ip="127.0.0.3")])
    return {**emulator, "api": ApiSession(emulator)}


@pytest.fixture
def krypton_setup(e2e):
    """Create a Krypton group for SIM 21 whose credential set contains the Krypton IAM user's key."""
    admin_post(e2e["urls"]["admin"], "/_lab/reset", {})
    api = e2e["api"]
    credentials_id = f"krypton-{uuid.uuid4().hex[:8]}"
    access_key_id, secret_access_key = e2e["moto"]["krypton"]
    api.json("POST", f"/v1/credentials/{credentials_id}", {
        "type": "aws-credentials",
        "credentials": {"accessKeyId": access_key_id, "secretAccessKey": secret_access_key},
    }, expected=201)
    group = api.json("POST", "/v1/groups", {"tags": {"name": "krypton-e2e"}}, expected=201)
    prefix = f"e2e{uuid.uuid4().hex[:6]}"
    api.json("PUT", f"/v1/groups/{group['groupId']}/configuration/SoracomKrypton",
             krypton_configuration(credentials_id, thingNamePattern=f"{prefix}-$imsi"))
    api.json("POST", f"/v1/sims/{pi_sim(21)['sim_id']}/set_group", {"groupId": group["groupId"]})
    return {"group_id": group["groupId"], "credentials_id": credentials_id, "prefix": prefix}


def bootstrap_from(e2e: dict, source: str = "127.0.0.2", body=None, path: str = KRYPTON_PATH):
    status, _, payload = request_from(source, "POST", f"{e2e['urls']['krypton']}{path}", body,
                                      cafile=e2e["pki"]["ca"])
    return status, json.loads(payload)


def test_e2e_krypton_happy_path(e2e, krypton_setup):
    status, body = bootstrap_from(e2e)
    thing_name = f"{krypton_setup['prefix']}-{pi_sim(21)['imsi']}"
    assert status == 200, body
    assert set(body) == {"certificate", "privateKey", "rootCaCertificate", "host", "clientId", "region"}
    assert body["clientId"] == thing_name
    assert body["host"] == ATS_HOST
    assert body["region"] == REGION
    assert body["rootCaCertificate"] == e2e["pki"]["ca"].read_text()
    certificate = x509.load_pem_x509_certificate(body["certificate"].encode())
    private_key = serialization.load_pem_private_key(body["privateKey"].encode(), password=None)
    assert certificate.public_key().public_numbers() == private_key.public_key().public_numbers()

    iot = aws_client("iot", e2e["moto"]["endpoint"], e2e["moto"]["admin"])
    principals = iot.list_thing_principals(thingName=thing_name)["principals"]
    assert len(principals) == 1
    policies = iot.list_attached_policies(target=principals[0])["policies"]
    assert [policy["policyName"] for policy in policies] == [IOT_POLICY]
    description = iot.describe_certificate(certificateId=principals[0].rsplit("/", 1)[1])
    assert description["certificateDescription"]["status"] == "ACTIVE"


def test_e2e_krypton_second_call_reuses_thing(e2e, krypton_setup):
    first_status, first = bootstrap_from(e2e)
    second_status, second = bootstrap_from(e2e)
    thing_name = first["clientId"]
    iot = aws_client("iot", e2e["moto"]["endpoint"], e2e["moto"]["admin"])
    things = [thing for thing in iot.list_things()["things"] if thing["thingName"] == thing_name]
    assert first_status == 200
    assert second_status == 200
    assert first["certificate"] != second["certificate"]
    assert len(things) == 1
    assert len(iot.list_thing_principals(thingName=thing_name)["principals"]) == 2


def test_e2e_krypton_thing_name_from_request(e2e, krypton_setup):
    thing_name = f"{krypton_setup['prefix']}-custom"
    status, body = bootstrap_from(e2e, body={"requestParameters": {"thingName": thing_name}})
    assert status == 200, body
    assert body["clientId"] == thing_name


def test_e2e_krypton_access_denied_reported(e2e, krypton_setup):
    api = e2e["api"]
    credentials_id = krypton_setup["credentials_id"]
    access_key_id, secret_access_key = e2e["moto"]["no_certificates"]
    api.json("PUT", f"/v1/credentials/{credentials_id}", {
        "type": "aws-credentials",
        "credentials": {"accessKeyId": access_key_id, "secretAccessKey": secret_access_key},
    })
    status, body = bootstrap_from(e2e)
    assert status == 403
    assert body["code"] == "LAB2009"
    assert body["message"].startswith(
        f"AWS IoT CreateKeysAndCertificate was denied for the IAM user of credential set '{credentials_id}': "
        "AccessDenied")
    assert "user/krypton-no-certificates is not authorized to perform: iot:CreateKeysAndCertificate" in body["message"]
    assert body["message"].endswith(". Give that user the missing permission.")


def test_e2e_krypton_unknown_policy_is_reported(e2e, krypton_setup):
    api = e2e["api"]
    settings = krypton_configuration(krypton_setup["credentials_id"], policyName="no-such-policy",
                                     thingNamePattern=f"{krypton_setup['prefix']}-$imsi")
    api.json("PUT", f"/v1/groups/{krypton_setup['group_id']}/configuration/SoracomKrypton", settings)
    status, body = bootstrap_from(e2e)
    assert status == 404
    assert "AttachPolicy" in body["message"]
    assert "ResourceNotFoundException" in body["message"]


def test_e2e_krypton_parallel_bootstraps(e2e, krypton_setup):
    numbers = range(31, 36)
    admin_post(e2e["urls"]["admin"], "/_lab/sims", [pi_sim(number, ip=f"127.0.0.{number}") for number in numbers])
    for number in numbers:
        e2e["api"].json("POST", f"/v1/sims/{pi_sim(number)['sim_id']}/set_group",
                        {"groupId": krypton_setup["group_id"]})
    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda number: bootstrap_from(e2e, source=f"127.0.0.{number}"), numbers))
    statuses = [status for status, _ in results]
    client_ids = {body["clientId"] for _, body in results}
    assert statuses == [200] * 5
    assert client_ids == {f"{krypton_setup['prefix']}-{pi_sim(number)['imsi']}" for number in numbers}


def test_e2e_krypton_unknown_source_is_403(e2e, krypton_setup):
    status, body = bootstrap_from(e2e, source="127.0.0.9")
    assert status == 403
    assert "127.0.0.9" in body["message"]


def test_e2e_krypton_calls_are_counted(e2e, krypton_setup):
    admin_url = e2e["urls"]["admin"]
    urllib.request.urlopen(urllib.request.Request(f"{admin_url}/_lab/calls", method="DELETE"), timeout=5)
    bootstrap_from(e2e)
    bootstrap_from(e2e, source="127.0.0.9")
    calls = admin_get(admin_url, "/_lab/calls")
    assert calls["counts"]["krypton"][f"POST {KRYPTON_PATH}"] == 2
    assert [entry["status"] for entry in calls["log"] if entry["service"] == "krypton"] == [200, 403]


def test_e2e_credential_last_used_is_set(e2e, krypton_setup):
    before = e2e["api"].json("GET", "/v1/credentials")
    bootstrap_from(e2e)
    after = e2e["api"].json("GET", "/v1/credentials")
    assert before[0]["lastUsedDateTime"] == 0
    assert after[0]["lastUsedDateTime"] > 0


def test_e2e_krypton_light_mode(e2e, krypton_setup):
    status, light = bootstrap_from(e2e, body={"requestParameters": {"skipCertificates": True}})
    certificate_status, certificate_body = bootstrap_from(
        e2e, path=f"/v1/provisioning/aws/iot/certificates/{light['certificateId']}")
    ca_status, ca_body = bootstrap_from(e2e, path="/v1/provisioning/aws/iot/ca_certificate")
    certificate = x509.load_pem_x509_certificate(certificate_body["certificate"].encode())
    private_key = serialization.load_pem_private_key(light["privateKey"].encode(), password=None)
    iot = aws_client("iot", e2e["moto"]["endpoint"], e2e["moto"]["admin"])
    description = iot.describe_certificate(certificateId=light["certificateId"])["certificateDescription"]
    assert status == 200, light
    assert set(light) == {"privateKey", "certificateId", "host", "clientId", "region"}
    assert certificate_status == 200
    assert hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest() == light["certificateId"]
    assert certificate.public_key().public_numbers() == private_key.public_key().public_numbers()
    assert description["status"] == "ACTIVE"
    assert ca_status == 200
    assert ca_body == {"rootCaCertificate": e2e["pki"]["ca"].read_text()}


def test_e2e_metadata_over_http(e2e):
    api = e2e["api"]
    admin_post(e2e["urls"]["admin"], "/_lab/reset", {})
    group = api.json("POST", "/v1/groups", {"tags": {"name": "metadata-e2e"}}, expected=201)
    api.json("PUT", f"/v1/groups/{group['groupId']}/configuration/SoracomAir",
             [{"key": "metadata", "value": {"enabled": True, "readonly": True}}])
    api.json("POST", f"/v1/subscribers/{pi_sim(22)['imsi']}/set_group", {"groupId": group["groupId"]})
    url = f"{e2e['urls']['metadata']}/v1/subscriber"
    status, _, payload = request_from("127.0.0.3", "GET", url)
    assert status == 200
    assert json.loads(payload)["imsi"] == pi_sim(22)["imsi"]
    status, _, payload = request_from("127.0.0.3", "GET", f"{url}.imsi")
    assert payload.decode() == pi_sim(22)["imsi"]
    api.json("POST", f"/v1/subscribers/{pi_sim(22)['imsi']}/unset_group")
    status, _, _ = request_from("127.0.0.3", "GET", url)
    assert status == 403


def test_e2e_api_rejects_untrusted_tls(e2e):
    context = ssl.create_default_context()
    with pytest.raises(urllib.error.URLError) as raised:
        with urllib.request.urlopen(f"{e2e['urls']['api']}/v1/sims", context=context, timeout=5):
            pass
    assert isinstance(raised.value.reason, ssl.SSLCertVerificationError)


def test_e2e_silent_client_does_not_block_api(e2e):
    silent = socket.create_connection((HOST, int(urlsplit(e2e["urls"]["api"]).port)), timeout=5)
    try:
        status, _, _ = e2e["api"].call("GET", "/v1/sims")
        assert status == 200
    finally:
        silent.close()


def test_e2e_log_has_requests_without_secrets(e2e, krypton_setup):
    bootstrap_from(e2e)
    log = e2e["log"].read_text()
    state = admin_get(e2e["urls"]["admin"], "/_lab/state")
    secret = e2e["moto"]["krypton"][1]
    assert f"krypton 127.0.0.2 POST {KRYPTON_PATH} 200" in log
    assert f"imsi={pi_sim(21)['imsi']}" in log
    assert AUTH_KEY not in log
    assert secret not in log
    assert e2e["api"].headers["X-Soracom-Token"] not in log
    assert "PRIVATE KEY" not in log
    assert state["credentials"][0]["credentials"]["secretAccessKey"] == secret


def raw_api_get(e2e: dict, path: str) -> tuple[http.client.HTTPResponse, http.client.HTTPSConnection]:
    """Send an authenticated GET to the API over TLS and return the unread response and its connection."""
    parts = urlsplit(e2e["urls"]["api"])
    context = ssl.create_default_context(cafile=str(e2e["pki"]["ca"]))
    connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
    connection.request("GET", path, headers=e2e["api"].headers)
    return connection.getresponse(), connection


def test_e2e_fault_truncated_body_is_incomplete(e2e):
    admin_post(e2e["urls"]["admin"], "/_lab/faults", {"service": "api", "path": "/v1/sims", "type": "truncate"})
    response, connection = raw_api_get(e2e, "/v1/sims")
    try:
        declared = int(response.getheader("Content-Length"))
        with pytest.raises(http.client.IncompleteRead) as raised:
            response.read()
    finally:
        connection.close()
    assert len(raised.value.partial) == declared // 2
    assert raised.value.expected == declared - declared // 2


def test_e2e_fault_clock_offset_sends_one_date(e2e):
    admin_post(e2e["urls"]["admin"], "/_lab/faults",
               {"service": "api", "path": "/v1/sims", "type": "clock_offset", "seconds": 7200})
    shifted, connection = raw_api_get(e2e, "/v1/sims")
    shifted.read()
    connection.close()
    normal, connection = raw_api_get(e2e, "/v1/sims")
    normal.read()
    connection.close()
    shifted_dates = [value for name, value in shifted.getheaders() if name.lower() == "date"]
    normal_dates = [value for name, value in normal.getheaders() if name.lower() == "date"]
    offset = email.utils.parsedate_to_datetime(shifted_dates[0]).timestamp() - time.time()
    assert len(shifted_dates) == 1
    assert 7190 < offset < 7210
    assert len(normal_dates) == 1
    assert abs(email.utils.parsedate_to_datetime(normal_dates[0]).timestamp() - time.time()) < 10


def test_e2e_fault_html_over_tls(e2e):
    admin_post(e2e["urls"]["admin"], "/_lab/faults",
               {"service": "krypton", "path": KRYPTON_PATH, "type": "html", "status": 502})
    status, headers, payload = request_from("127.0.0.2", "POST", f"{e2e['urls']['krypton']}{KRYPTON_PATH}",
                                            cafile=e2e["pki"]["ca"])
    assert status == 502
    assert headers["Content-Type"].startswith("text/html")
    assert payload.startswith(b"<!DOCTYPE html>")


def test_e2e_spec_validation_loaded(e2e):
    if not e2e["validating"]:
        pytest.skip(f"SORACOM OpenAPI spec not found at {SPEC_PATH}; set SORACOM_OPENAPI_SPEC to its path")
    report = admin_get(e2e["urls"]["admin"], "/_lab/spec_violations")
    assert report["enabled"] is True
    assert "OpenAPI spec" in e2e["log"].read_text()
    status, _, payload = e2e["api"].call("POST", f"/v1/sims/{pi_sim(21)['sim_id']}/set_group", {"groupId": 5})
    assert status == 400
    assert json.loads(payload)["code"] == "LAB0110"


def test_e2e_no_spec_violations(e2e):
    """Runs after the other end-to-end tests, whose API responses were all checked against the spec."""
    if not e2e["validating"]:
        pytest.skip(f"SORACOM OpenAPI spec not found at {SPEC_PATH}; set SORACOM_OPENAPI_SPEC to its path")
    report = admin_get(e2e["urls"]["admin"], "/_lab/spec_violations")
    assert report["count"] == 0, report["violations"]


# ============================================================================ command line


@pytest.mark.parametrize("endpoint", ["http://203.0.113.5:5000", "https://aws.example.com", "ftp://127.0.0.1"])
def test_cli_rejects_aws_endpoint_outside_lab(tmp_path, endpoint):
    command = [sys.executable, str(SERVER), "--api", "127.0.0.1:1", "--krypton", "127.0.0.1:2",
               "--metadata", "127.0.0.1:3", "--admin", "127.0.0.1:4", "--cert", "c", "--key", "k",
               "--root-ca", "r", "--aws-endpoint", endpoint, "--log", str(tmp_path / "log")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--aws-endpoint" in result.stderr


def test_cli_validate_spec_missing_file_fails(tmp_path):
    pki = make_pki(tmp_path)
    ports = [free_port() for _ in range(4)]
    command = [sys.executable, str(SERVER)]
    for name, port in zip(("api", "krypton", "metadata", "admin"), ports):
        command += [f"--{name}", f"{HOST}:{port}"]
    command += ["--cert", str(pki["cert"]), "--key", str(pki["key"]), "--root-ca", str(pki["ca"]),
                "--aws-endpoint", "http://127.0.0.1:9", "--log", str(tmp_path / "log"),
                "--validate-spec", str(tmp_path / "absent.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "startup failed" in result.stderr
    assert "absent.yaml" in result.stderr


# ============================================================================ Krypton rate limit


def test_krypton_rate_limit_answers_429_with_retry_after(lab):
    krypton_group(lab)
    assert lab.admin.post("/_lab/krypton_ratelimit", json={"limit": 2}).status_code == 200
    statuses = [lab.bootstrap(pi_sim(1)["ip"]).status_code for _ in range(3)]
    # The first two reach the view (403: the group has no SoracomKrypton), the third is limited.
    assert statuses[:2] == [403, 403]
    assert statuses[2] == 429
    limited = lab.bootstrap(pi_sim(1)["ip"])
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-Soracom-Ratelimit-Limit"] == "2"
    assert limited.get_json()["code"] == "LAB0429"


def test_krypton_rate_limit_per_operator_on_by_default(lab):
    settings = lab.admin.get("/_lab/krypton_ratelimit").get_json()
    assert settings["enabled"] is True
    assert settings["window_seconds"] == 1
    assert settings["limit"] >= 1


def test_krypton_rate_limit_off(lab):
    assert lab.admin.post("/_lab/krypton_ratelimit", json={"enabled": False, "limit": 1}).status_code == 200
    statuses = {lab.bootstrap(pi_sim(1)["ip"]).status_code for _ in range(3)}
    assert 429 not in statuses


def test_krypton_rate_limit_rejects_zero(lab):
    response = lab.admin.post("/_lab/krypton_ratelimit", json={"limit": 0})
    assert response.status_code == 400
