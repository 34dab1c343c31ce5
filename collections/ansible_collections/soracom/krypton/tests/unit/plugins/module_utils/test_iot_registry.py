# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils._iot_registry import (
    DELETE_ATTEMPTS,
    IotOperationError,
    read_certificate,
    read_thing,
    run_plan,
)

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
ClientError = pytest.importorskip("botocore.exceptions").ClientError

REGION = "ap-northeast-1"
CERT_ID = "3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9"


class ScriptedClient:
    """Stand-in for a boto3 IoT client whose methods raise the queued errors, then succeed."""

    def __init__(self, failures):
        self.failures = {method: list(errors) for method, errors in failures.items()}
        self.calls = []
        self.meta = boto3.client("iot", region_name=REGION).meta

    def __getattr__(self, method):
        def invoke(**params):
            self.calls.append((method, params))
            queued = self.failures.get(method) or []
            if queued:
                raise queued.pop(0)
            return {"ResponseMetadata": {}}

        return invoke


def client_error(code, message, operation, status=409):
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "r-1"}},
        operation,
    )


def still_attached():
    return client_error("InvalidRequestException", "Cannot delete. Thing pi01 is still attached to one or more principals",
                        "DeleteThing", status=400)


@pytest.fixture
def sleeps():
    return []


def test_run_plan_calls_in_order(sleeps):
    client = ScriptedClient({})
    plan = [("detach_thing_principal", {"thingName": "pi01", "principal": "arn"}), ("delete_thing", {"thingName": "pi01"})]

    run_plan(client, plan, sleep=sleeps.append)

    assert client.calls == plan
    assert sleeps == []


def test_run_plan_retries_still_attached(sleeps):
    client = ScriptedClient({"delete_thing": [still_attached(), still_attached()]})

    run_plan(client, [("delete_thing", {"thingName": "pi01"})], sleep=sleeps.append, delay=3.0)

    assert len(client.calls) == 3
    assert sleeps == [3.0, 3.0]


def test_run_plan_gives_up_after_attempts(sleeps):
    client = ScriptedClient({"delete_thing": [still_attached() for attempt in range(DELETE_ATTEMPTS)]})

    with pytest.raises(IotOperationError) as excinfo:
        run_plan(client, [("delete_thing", {"thingName": "pi01"})], sleep=sleeps.append)

    assert len(client.calls) == DELETE_ATTEMPTS
    assert len(sleeps) == DELETE_ATTEMPTS - 1
    assert excinfo.value.message.startswith("Failed to delete thing 'pi01': AWS IoT DeleteThing failed")
    assert "Run the task again in a minute." in excinfo.value.message
    assert excinfo.value.fail_kwargs()["error"]["code"] == "InvalidRequestException"


def test_run_plan_does_not_retry_other_errors(sleeps):
    error = client_error("InvalidRequestException", "The request is not valid.", "DeleteThing", status=400)
    client = ScriptedClient({"delete_thing": [error]})

    with pytest.raises(IotOperationError) as excinfo:
        run_plan(client, [("delete_thing", {"thingName": "pi01"})], sleep=sleeps.append)

    assert len(client.calls) == 1
    assert sleeps == []
    assert excinfo.value.message.endswith("Fix the cause and run the task again.")
    assert "step(s) before it were done" not in excinfo.value.message


def test_run_plan_does_not_retry_detach(sleeps):
    error = client_error("DeleteConflictException", "still attached", "DetachPolicy")
    client = ScriptedClient({"detach_policy": [error]})

    with pytest.raises(IotOperationError):
        run_plan(client, [("detach_policy", {"policyName": "p1", "target": "arn"})], sleep=sleeps.append)

    assert len(client.calls) == 1


def test_run_plan_skips_missing_resources(sleeps):
    missing = client_error("ResourceNotFoundException", "The specified resource does not exist", "DetachPolicy", status=404)
    client = ScriptedClient({"detach_policy": [missing]})
    plan = [("detach_policy", {"policyName": "p1", "target": "arn"}), ("delete_certificate", {"certificateId": CERT_ID})]

    run_plan(client, plan, sleep=sleeps.append)

    assert [call[0] for call in client.calls] == ["detach_policy", "delete_certificate"]


def test_run_plan_failure_counts_done_steps(sleeps):
    error = client_error("InternalFailureException", "Internal error.", "DeleteThing", status=500)
    client = ScriptedClient({"delete_thing": [error]})
    plan = [("detach_thing_principal", {"thingName": "pi01", "principal": "arn"}), ("delete_thing", {"thingName": "pi01"})]

    with pytest.raises(IotOperationError) as excinfo:
        run_plan(client, plan, sleep=sleeps.append)

    assert "Failed to delete thing 'pi01'" in excinfo.value.message
    assert "The 1 step(s) before it were done." in excinfo.value.message


def test_run_plan_failure_keeps_error_details(sleeps):
    error = client_error("CertificateStateException", "Certificate is pending transfer.", "DeleteCertificate", status=406)
    client = ScriptedClient({"delete_certificate": [error]})

    with pytest.raises(IotOperationError) as excinfo:
        run_plan(client, [("delete_certificate", {"certificateId": CERT_ID})], sleep=sleeps.append)

    kwargs = excinfo.value.fail_kwargs()
    assert kwargs["msg"].startswith("Failed to delete certificate " + CERT_ID)
    assert "PENDING_TRANSFER" in kwargs["msg"]
    assert kwargs["error"] == {
        "operation": "DeleteCertificate",
        "code": "CertificateStateException",
        "message": "Certificate is pending transfer.",
        "http_status": 406,
        "request_id": "r-1",
    }


@pytest.fixture
def iot(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IOT", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws(config={"iot": {"use_valid_cert": True}}):
        yield boto3.client("iot", region_name=REGION)


def test_read_certificate_with_attachments(iot):
    iot.create_policy(policyName="p1", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    iot.create_thing(thingName="pi01")
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName="p1", target=certificate["certificateArn"])
    iot.attach_thing_principal(thingName="pi01", principal=certificate["certificateArn"])

    result = read_certificate(iot, certificate["certificateId"])

    assert result["certificate_id"] == certificate["certificateId"]
    assert result["certificate_arn"] == certificate["certificateArn"]
    assert result["status"] == "ACTIVE"
    assert result["policies"] == ["p1"]
    assert result["things"] == ["pi01"]
    assert "not_after" in result


def test_read_missing_certificate(iot):
    assert read_certificate(iot, CERT_ID) is None


def test_read_thing_with_principal(iot):
    iot.create_thing(thingName="pi01", attributePayload={"attributes": {"site": "tokyo"}})
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName="pi01", principal=certificate["certificateArn"])

    result = read_thing(iot, "pi01")

    assert result["thing_name"] == "pi01"
    assert result["attributes"] == {"site": "tokyo"}
    assert result["principals"] == [certificate["certificateArn"]]
    assert result["thing_id"]


def test_read_missing_thing(iot):
    assert read_thing(iot, "pi99") is None
