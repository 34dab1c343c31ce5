# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.module_utils import _iot_registry
from ansible_collections.soracom.krypton.plugins.module_utils._aws import translate_client_error
from ansible_collections.soracom.krypton.plugins.modules import aws_iot_certificate

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
ClientError = pytest.importorskip("botocore.exceptions").ClientError

REGION = "ap-northeast-1"
POLICY = "KryptonDevicePolicy"
MISSING_ID = "ab" * 32


@pytest.fixture
def iot(monkeypatch):
    """Yield an IoT client on moto's in-process mock, which the module under test also reaches."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IOT", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    # Certificate IDs are the SHA-256 of the DER certificate, as in AWS.
    with moto.mock_aws(config={"iot": {"use_valid_cert": True}}):
        yield boto3.client("iot", region_name=REGION)


@pytest.fixture
def sleeps(monkeypatch):
    """Record the retry delays of run_plan instead of sleeping."""
    recorded = []
    monkeypatch.setattr(_iot_registry.time, "sleep", recorded.append)
    return recorded


def aws_error(code, message, operation, status_code):
    """Return the AwsApiError that call() raises for an AWS error response."""
    error = ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status_code, "RequestId": "r-1"}},
        operation,
    )
    return translate_client_error(error, service="IoT")


def run_module(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            aws_iot_certificate.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = excinfo.value.code
    return result


def new_certificate(iot, active=True, policy=False, things=()):
    certificate = iot.create_keys_and_certificate(setAsActive=active)
    arn = certificate["certificateArn"]
    if policy:
        iot.create_policy(policyName=POLICY, policyDocument='{"Version": "2012-10-17", "Statement": []}')
        iot.attach_policy(policyName=POLICY, target=arn)
    for name in things:
        iot.create_thing(thingName=name)
        iot.attach_thing_principal(thingName=name, principal=arn)
    return certificate["certificateId"], arn


def status(iot, certificate_id):
    return iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]["status"]


def certificate_ids(iot):
    return [certificate["certificateId"] for certificate in iot.list_certificates()["certificates"]]


# Status


def test_deactivate(iot, capsys):
    certificate_id, arn = new_certificate(iot, policy=True, things=["pi01"])

    result = run_module(capsys, certificate_id=certificate_id, state="inactive")

    assert result["changed"] is True
    assert result["certificate"]["status"] == "INACTIVE"
    assert result["certificate"]["certificate_id"] == certificate_id
    assert result["certificate"]["certificate_arn"] == arn
    assert result["certificate"]["policies"] == [POLICY]
    assert result["certificate"]["things"] == ["pi01"]
    assert result["certificate"]["creation_date"]
    assert result["certificate"]["not_after"]
    assert status(iot, certificate_id) == "INACTIVE"


def test_same_status_not_changed(iot, capsys):
    certificate_id = new_certificate(iot)[0]

    result = run_module(capsys, certificate_id=certificate_id, state="active")

    assert result["changed"] is False
    assert result["certificate"]["status"] == "ACTIVE"


def test_activate(iot, capsys):
    certificate_id = new_certificate(iot, active=False)[0]

    result = run_module(capsys, certificate_id=certificate_id, state="active")

    assert result["changed"] is True
    assert status(iot, certificate_id) == "ACTIVE"


def test_check_mode_predicts_and_writes_nothing(iot, capsys):
    certificate_id = new_certificate(iot)[0]

    result = run_module(capsys, certificate_id=certificate_id, state="inactive", _ansible_check_mode=True, _ansible_diff=True)

    assert result["changed"] is True
    assert result["certificate"]["status"] == "ACTIVE"
    assert result["diff"]["before"]["status"] == "ACTIVE"
    assert result["diff"]["after"]["status"] == "INACTIVE"
    assert status(iot, certificate_id) == "ACTIVE"


def test_check_mode_unchanged(iot, capsys):
    certificate_id = new_certificate(iot, active=False)[0]

    result = run_module(capsys, certificate_id=certificate_id, state="inactive", _ansible_check_mode=True)

    assert result["changed"] is False


def test_diff_shows_status_policies_things(iot, capsys):
    certificate_id = new_certificate(iot, policy=True, things=["pi01"])[0]

    result = run_module(capsys, certificate_id=certificate_id, state="inactive", _ansible_diff=True)

    assert result["diff"]["before"] == {"certificate_id": certificate_id, "status": "ACTIVE", "policies": [POLICY], "things": ["pi01"]}
    assert result["diff"]["after"] == {"certificate_id": certificate_id, "status": "INACTIVE", "policies": [POLICY], "things": ["pi01"]}


def test_no_diff_without_diff_mode(iot, capsys):
    certificate_id = new_certificate(iot)[0]

    result = run_module(capsys, certificate_id=certificate_id, state="inactive")

    assert "diff" not in result


def test_certificate_arn_alias(iot, capsys):
    certificate_id, arn = new_certificate(iot)

    result = run_module(capsys, certificate_arn=arn, state="inactive")

    assert result["changed"] is True
    assert result["certificate"]["certificate_id"] == certificate_id
    assert status(iot, certificate_id) == "INACTIVE"


def test_upper_case_id(iot, capsys):
    certificate_id = new_certificate(iot)[0]

    result = run_module(capsys, certificate_id=certificate_id.upper(), state="inactive")

    assert result["changed"] is True
    assert status(iot, certificate_id) == "INACTIVE"


def test_arn_in_other_region_fails(iot, capsys):
    certificate_id = new_certificate(iot)[0]
    arn = "arn:aws:iot:us-east-1:123456789012:cert/" + certificate_id

    result = run_module(capsys, certificate_id=arn, state="inactive")

    assert result["failed"] is True
    assert result["msg"].startswith("The certificate ARN is in region us-east-1, but the module connects to region ap-northeast-1.")
    assert "Set region to us-east-1" in result["msg"]
    assert status(iot, certificate_id) == "ACTIVE"


def test_invalid_id_fails(iot, capsys):
    result = run_module(capsys, certificate_id="3f2a", state="inactive")

    assert result["failed"] is True
    assert result["msg"].startswith("Invalid certificate_id '3f2a': expected the 64 hexadecimal digits")


def test_missing_certificate_fails(iot, capsys):
    result = run_module(capsys, certificate_id=MISSING_ID, state="active")

    assert result["failed"] is True
    assert result["msg"].startswith("IoT certificate %s was not found in region ap-northeast-1." % MISSING_ID)
    assert "SORACOM Krypton creates one" in result["msg"]


def test_revoked_certificate_cannot_be_activated(iot, capsys):
    certificate_id = new_certificate(iot)[0]
    iot.update_certificate(certificateId=certificate_id, newStatus="REVOKED")

    result = run_module(capsys, certificate_id=certificate_id, state="active")

    assert result["failed"] is True
    assert "IoT certificate %s is REVOKED" % certificate_id in result["msg"]
    assert "state=absent" in result["msg"]
    assert status(iot, certificate_id) == "REVOKED"


def test_state_is_required(iot, capsys):
    result = run_module(capsys, certificate_id=MISSING_ID)

    assert result["failed"] is True
    assert "state" in result["msg"]


def test_update_failure_names_certificate(iot, capsys, monkeypatch):
    # moto accepts every status change, so the AWS error is injected.
    certificate_id = new_certificate(iot)[0]
    real_call = _iot_registry.call

    def call_with_state_error(client, method, **params):
        if method != "update_certificate":
            return real_call(client, method, **params)
        raise aws_error("CertificateStateException", "The certificate is pending transfer.", "UpdateCertificate", 406)

    monkeypatch.setattr(_iot_registry, "call", call_with_state_error)

    result = run_module(capsys, certificate_id=certificate_id, state="inactive")

    assert result["failed"] is True
    assert result["msg"].startswith("Failed to set certificate %s to INACTIVE: AWS IoT UpdateCertificate failed" % certificate_id)
    assert "PENDING_TRANSFER" in result["msg"]
    assert result["error"]["code"] == "CertificateStateException"


# Deletion


def test_absent_detaches_and_deletes(iot, capsys):
    certificate_id, arn = new_certificate(iot, policy=True, things=["pi01", "pi02"])

    result = run_module(capsys, certificate_id=certificate_id, state="absent", _ansible_diff=True)

    assert result["changed"] is True
    assert result["certificate"] == {}
    assert result["diff"]["before"] == {
        "certificate_id": certificate_id, "status": "ACTIVE", "policies": [POLICY], "things": ["pi01", "pi02"],
    }
    assert result["diff"]["after"] == {}
    assert certificate_ids(iot) == []
    assert iot.list_targets_for_policy(policyName=POLICY)["targets"] == []
    assert iot.list_thing_principals(thingName="pi01")["principals"] == []
    assert iot.list_thing_principals(thingName="pi02")["principals"] == []


def test_absent_inactive_certificate(iot, capsys):
    certificate_id = new_certificate(iot, active=False)[0]

    result = run_module(capsys, certificate_id=certificate_id, state="absent")

    assert result["changed"] is True
    assert certificate_ids(iot) == []


def test_absent_revoked_certificate(iot, capsys):
    certificate_id = new_certificate(iot, policy=True)[0]
    iot.update_certificate(certificateId=certificate_id, newStatus="REVOKED")

    result = run_module(capsys, certificate_id=certificate_id, state="absent")

    assert result["changed"] is True
    assert certificate_ids(iot) == []


def test_absent_deactivates_before_detaching(iot, capsys, monkeypatch):
    certificate_id = new_certificate(iot, policy=True, things=["pi01"])[0]
    calls = []
    real_call = _iot_registry.call

    def recording_call(client, method, **params):
        calls.append(method)
        return real_call(client, method, **params)

    monkeypatch.setattr(_iot_registry, "call", recording_call)

    result = run_module(capsys, certificate_id=certificate_id, state="absent")

    assert result["changed"] is True
    writes = [method for method in calls if not method.startswith(("describe_", "list_"))]
    assert writes == ["update_certificate", "detach_policy", "detach_thing_principal", "delete_certificate"]


def test_absent_without_detach_things_fails_when_attached(iot, capsys):
    certificate_id = new_certificate(iot, policy=True, things=["pi01", "pi02"])[0]

    result = run_module(capsys, certificate_id=certificate_id, state="absent", detach_things=False)

    assert result["failed"] is True
    assert result["things"] == ["pi01", "pi02"]
    assert "attached to thing(s) pi01, pi02" in result["msg"]
    assert status(iot, certificate_id) == "ACTIVE"
    assert iot.list_thing_principals(thingName="pi01")["principals"] != []


def test_absent_without_detach_things_deletes_unattached(iot, capsys):
    certificate_id = new_certificate(iot, policy=True)[0]

    result = run_module(capsys, certificate_id=certificate_id, state="absent", detach_things=False)

    assert result["changed"] is True
    assert certificate_ids(iot) == []


def test_absent_without_detach_things_check_mode_fails_too(iot, capsys):
    certificate_id = new_certificate(iot, things=["pi01"])[0]

    result = run_module(
        capsys, certificate_id=certificate_id, state="absent", detach_things=False, _ansible_check_mode=True
    )

    assert result["failed"] is True
    assert result["things"] == ["pi01"]


def test_absent_check_mode_keeps_certificate(iot, capsys):
    certificate_id = new_certificate(iot, policy=True, things=["pi01"])[0]

    result = run_module(capsys, certificate_id=certificate_id, state="absent", _ansible_check_mode=True, _ansible_diff=True)

    assert result["changed"] is True
    assert result["certificate"]["status"] == "ACTIVE"
    assert result["diff"]["after"] == {}
    assert certificate_ids(iot) == [certificate_id]
    assert status(iot, certificate_id) == "ACTIVE"
    assert iot.list_thing_principals(thingName="pi01")["principals"] != []


def test_absent_twice_not_changed(iot, capsys):
    certificate_id = new_certificate(iot)[0]
    run_module(capsys, certificate_id=certificate_id, state="absent")

    result = run_module(capsys, certificate_id=certificate_id, state="absent")

    assert result["changed"] is False
    assert result["certificate"] == {}


def test_absent_missing_in_check_mode_not_changed(iot, capsys):
    result = run_module(capsys, certificate_id=MISSING_ID, state="absent", _ansible_check_mode=True, _ansible_diff=True)

    assert result["changed"] is False
    assert result["diff"] == {"before": {}, "after": {}}


def test_absent_retries_while_still_attached(iot, capsys, monkeypatch, sleeps):
    # AWS IoT applies a detachment asynchronously, which moto does not model, so
    # the first two deletes are made to fail as AWS would.
    certificate_id = new_certificate(iot, things=["pi01"])[0]
    real_call = _iot_registry.call
    failures = [2]

    def call_detaching_slowly(client, method, **params):
        if method == "delete_certificate" and failures[0]:
            failures[0] -= 1
            raise aws_error("DeleteConflictException", "Things must be detached before deletion", "DeleteCertificate", 409)
        return real_call(client, method, **params)

    monkeypatch.setattr(_iot_registry, "call", call_detaching_slowly)

    result = run_module(capsys, certificate_id=certificate_id, state="absent")

    assert result["changed"] is True
    assert sleeps == [_iot_registry.DELETE_RETRY_DELAY, _iot_registry.DELETE_RETRY_DELAY]
    assert certificate_ids(iot) == []


def test_absent_delete_failure_names_certificate(iot, capsys, monkeypatch, sleeps):
    certificate_id = new_certificate(iot, things=["pi01"])[0]
    real_call = _iot_registry.call

    def call_never_detached(client, method, **params):
        if method == "delete_certificate":
            raise aws_error("DeleteConflictException", "Things must be detached before deletion", "DeleteCertificate", 409)
        return real_call(client, method, **params)

    monkeypatch.setattr(_iot_registry, "call", call_never_detached)

    result = run_module(capsys, certificate_id=certificate_id, state="absent")

    assert result["failed"] is True
    assert result["msg"].startswith("Failed to delete certificate %s" % certificate_id)
    assert "Run the task again in a minute." in result["msg"]
    assert len(sleeps) == _iot_registry.DELETE_ATTEMPTS - 1
    assert status(iot, certificate_id) == "INACTIVE"


def test_unknown_region_fails(iot, capsys):
    result = run_module(capsys, certificate_id=MISSING_ID, state="absent", region="ap-northest-1")

    assert result["failed"] is True
    assert "Unknown AWS region 'ap-northest-1'" in result["msg"]
