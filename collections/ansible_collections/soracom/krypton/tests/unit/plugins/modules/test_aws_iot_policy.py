# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.module_utils._aws import translate_client_error
from ansible_collections.soracom.krypton.plugins.modules import aws_iot_policy

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
ClientError = pytest.importorskip("botocore.exceptions").ClientError

REGION = "ap-northeast-1"
NAME = "KryptonDevicePolicy"


def document(*actions):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions) or ["iot:Connect"], "Resource": "*"}],
    }


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
    with moto.mock_aws():
        yield boto3.client("iot", region_name=REGION)


def run_module(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            aws_iot_policy.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = excinfo.value.code
    return result


def version_ids(iot, name=NAME):
    return sorted(int(v["versionId"]) for v in iot.list_policy_versions(policyName=name)["policyVersions"])


def default_document(iot, name=NAME):
    return json.loads(iot.get_policy(policyName=name)["policyDocument"])


def test_create_policy(iot, capsys):
    result = run_module(capsys, name=NAME, policy=document())

    assert result["changed"] is True
    assert result["policy"]["policy_name"] == NAME
    assert result["policy"]["policy_arn"].endswith(":policy/" + NAME)
    assert result["policy"]["default_version_id"] == "1"
    assert result["policy"]["policy_document"] == document()
    assert [v["version_id"] for v in result["policy"]["versions"]] == ["1"]
    assert default_document(iot) == document()


def test_same_document_not_changed(iot, capsys):
    run_module(capsys, name=NAME, policy=document("iot:Connect", "iot:Publish"))
    as_string = json.dumps(
        {"Statement": [{"Resource": "*", "Action": ["iot:Connect", "iot:Publish"], "Effect": "Allow"}], "Version": "2012-10-17"},
        indent=3,
    )

    result = run_module(capsys, name=NAME, policy=as_string)

    assert result["changed"] is False
    assert version_ids(iot) == [1]


def test_check_mode_create_writes_nothing(iot, capsys):
    result = run_module(capsys, name=NAME, policy=document(), _ansible_check_mode=True)

    assert result["changed"] is True
    assert result["policy"] == {}
    assert iot.list_policies()["policies"] == []


def test_check_mode_unchanged(iot, capsys):
    run_module(capsys, name=NAME, policy=document())

    result = run_module(capsys, name=NAME, policy=document(), _ansible_check_mode=True)

    assert result["changed"] is False
    assert result["policy"]["default_version_id"] == "1"


def test_check_mode_update_writes_nothing(iot, capsys):
    run_module(capsys, name=NAME, policy=document())

    result = run_module(capsys, name=NAME, policy=document("iot:Publish"), _ansible_check_mode=True)

    assert result["changed"] is True
    assert result["policy"]["policy_document"] == document()
    assert version_ids(iot) == [1]


def test_changed_document_new_default_version(iot, capsys):
    run_module(capsys, name=NAME, policy=document())

    result = run_module(capsys, name=NAME, policy=document("iot:Publish"))

    assert result["changed"] is True
    assert result["policy"]["default_version_id"] == "2"
    assert result["policy"]["policy_document"] == document("iot:Publish")
    assert version_ids(iot) == [1, 2]
    assert default_document(iot) == document("iot:Publish")


def test_statement_order_is_a_change(iot, capsys):
    two = {"Version": "2012-10-17", "Statement": [document("iot:Connect")["Statement"][0], document("iot:Publish")["Statement"][0]]}
    run_module(capsys, name=NAME, policy=two)
    swapped = dict(two, Statement=list(reversed(two["Statement"])))

    result = run_module(capsys, name=NAME, policy=swapped)

    assert result["changed"] is True


def test_diff_shows_documents(iot, capsys):
    run_module(capsys, name=NAME, policy=document())

    result = run_module(capsys, name=NAME, policy=document("iot:Publish"), _ansible_diff=True)

    assert result["diff"]["before"] == {"policy_name": NAME, "policy_document": document()}
    assert result["diff"]["after"] == {"policy_name": NAME, "policy_document": document("iot:Publish")}


def test_no_diff_without_diff_mode(iot, capsys):
    result = run_module(capsys, name=NAME, policy=document())

    assert "diff" not in result


def test_sixth_change_prunes_oldest_non_default(iot, capsys):
    for number in range(5):
        run_module(capsys, name=NAME, policy=document("iot:Action%d" % number))
    assert version_ids(iot) == [1, 2, 3, 4, 5]

    result = run_module(capsys, name=NAME, policy=document("iot:Action5"))

    assert result["changed"] is True
    assert result["policy"]["default_version_id"] == "6"
    assert version_ids(iot) == [2, 3, 4, 5, 6]
    assert [v["version_id"] for v in result["policy"]["versions"]] == ["2", "3", "4", "5", "6"]


def test_prune_keeps_old_default(iot, capsys):
    for number in range(5):
        run_module(capsys, name=NAME, policy=document("iot:Action%d" % number))
    iot.set_default_policy_version(policyName=NAME, policyVersionId="1")

    result = run_module(capsys, name=NAME, policy=document("iot:Action5"))

    assert result["changed"] is True
    assert version_ids(iot) == [1, 3, 4, 5, 6]
    assert default_document(iot) == document("iot:Action5")


def test_absent_attached_fails_naming_targets(iot, capsys):
    run_module(capsys, name=NAME, policy=document())
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=NAME, target=certificate["certificateArn"])

    result = run_module(capsys, name=NAME, state="absent")

    assert result["failed"] is True
    assert result["rc"] == 1
    assert certificate["certificateId"] in result["msg"]
    assert "certificate " + certificate["certificateId"] in result["msg"]
    assert "detach-policy" in result["msg"]
    assert result["targets"] == [certificate["certificateArn"]]
    assert iot.get_policy(policyName=NAME)["policyName"] == NAME


def test_absent_attached_fails_in_check_mode(iot, capsys):
    run_module(capsys, name=NAME, policy=document())
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=NAME, target=certificate["certificateArn"])

    result = run_module(capsys, name=NAME, state="absent", _ansible_check_mode=True)

    assert result["failed"] is True
    assert certificate["certificateId"] in result["msg"]


def test_absent_deletes_versions_and_policy(iot, capsys):
    for number in range(3):
        run_module(capsys, name=NAME, policy=document("iot:Action%d" % number))

    result = run_module(capsys, name=NAME, state="absent", _ansible_diff=True)

    assert result["changed"] is True
    assert result["policy"] == {}
    assert result["diff"]["after"] == {}
    assert result["diff"]["before"]["policy_document"] == document("iot:Action2")
    assert iot.list_policies()["policies"] == []


def test_absent_twice_not_changed(iot, capsys):
    run_module(capsys, name=NAME, policy=document())
    run_module(capsys, name=NAME, state="absent")

    result = run_module(capsys, name=NAME, state="absent")

    assert result["changed"] is False


def test_absent_check_mode_keeps_policy(iot, capsys):
    run_module(capsys, name=NAME, policy=document())

    result = run_module(capsys, name=NAME, state="absent", _ansible_check_mode=True)

    assert result["changed"] is True
    assert iot.get_policy(policyName=NAME)["policyName"] == NAME


def test_invalid_json_fails(iot, capsys):
    result = run_module(capsys, name=NAME, policy='{"Version": "2012-10-17",')

    assert result["failed"] is True
    assert result["msg"].startswith("Invalid value for policy: The policy document is not valid JSON")


def test_invalid_name_fails(iot, capsys):
    result = run_module(capsys, name="bad name", policy=document())

    assert result["failed"] is True
    assert "Invalid policy name 'bad name'" in result["msg"]


def test_present_requires_policy(iot, capsys):
    result = run_module(capsys, name=NAME)

    assert result["failed"] is True
    assert "policy" in result["msg"]


def test_unknown_region_fails(iot, capsys):
    result = run_module(capsys, name=NAME, policy=document(), region="ap-northest-1")

    assert result["failed"] is True
    assert "Unknown AWS region 'ap-northest-1'" in result["msg"]
    assert iot.list_policies()["policies"] == []


def test_api_error_reported_with_details(iot, capsys, monkeypatch):
    # moto accepts every CreatePolicy for a new name, so the service error is injected.
    real_call = aws_iot_policy.call

    def call_with_limit(client, method, **params):
        if method != "create_policy":
            return real_call(client, method, **params)
        error = ClientError(
            {
                "Error": {"Code": "LimitExceededException", "Message": "Too many policies"},
                "ResponseMetadata": {"HTTPStatusCode": 410, "RequestId": "r-1"},
            },
            "CreatePolicy",
        )
        raise translate_client_error(error, service="IoT")

    monkeypatch.setattr(aws_iot_policy, "call", call_with_limit)

    result = run_module(capsys, name=NAME, policy=document())

    assert result["failed"] is True
    assert result["msg"] == "AWS IoT CreatePolicy failed (LimitExceededException, HTTP 410): Too many policies"
    assert result["error"]["code"] == "LimitExceededException"
    assert result["error"]["request_id"] == "r-1"
