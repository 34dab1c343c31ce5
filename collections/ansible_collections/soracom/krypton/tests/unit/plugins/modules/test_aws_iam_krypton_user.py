# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.module_utils._aws import AwsError
from ansible_collections.soracom.krypton.plugins.module_utils._krypton_iam import least_privilege_document
from ansible_collections.soracom.krypton.plugins.modules import aws_iam_krypton_user
from ansible_collections.soracom.krypton.plugins.modules.aws_iam_krypton_user import (
    NEW_KEY_PLACEHOLDER,
    TooManyAccessKeysError,
    plan_access_keys,
)

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

NAME = "soracom-krypton"
MANAGED_ARN = "arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration"
INLINE_NAME = "KryptonProvisioning"
HANDS_ON_INLINE_NAME = "KryptonCreateKeysAndCertificate"
# moto's default account.
ACCOUNT_ID = "123456789012"
REGION = "ap-northeast-1"


@pytest.fixture(scope="module")
def aws_mock():
    """Start moto's in-process mock once per file, because loading the AWS managed policies takes seconds."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        with moto.mock_aws():
            yield


def delete_all_users(client):
    for user in client.list_users()["Users"]:
        name = user["UserName"]
        for key in client.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            client.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy in client.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            client.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in client.list_user_policies(UserName=name)["PolicyNames"]:
            client.delete_user_policy(UserName=name, PolicyName=policy_name)
        client.delete_user(UserName=name)


@pytest.fixture
def iam(aws_mock):
    """Yield an IAM client on the shared mock and delete every user after the test."""
    client = boto3.client("iam")
    delete_all_users(client)
    yield client
    delete_all_users(client)


def run_module(capsys, **args):
    args.setdefault("name", NAME)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            aws_iam_krypton_user.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = excinfo.value.code
    return result


def key_ids(iam, name=NAME):
    return sorted(key["AccessKeyId"] for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"])


def key_metadata(key_id, status="Active", day=1):
    return dict(AccessKeyId=key_id, Status=status, CreateDate=datetime(2026, 4, day, tzinfo=timezone.utc))


def test_create_user_policies_and_key(iam, capsys):
    result = run_module(capsys)

    assert result["changed"] is True
    assert result["user"]["user_name"] == NAME
    assert result["user"]["path"] == "/"
    assert result["user"]["arn"].endswith(":user/" + NAME)
    assert result["user"]["user_id"]
    assert result["policies"]["managed_policy_arns"] == []
    assert result["policies"]["inline_policy_names"] == [INLINE_NAME]
    assert result["policies"]["policy_mode"] == "least_privilege"
    assert result["policies"]["inline_policy_document"] == least_privilege_document("aws", REGION, ACCOUNT_ID)
    assert result["access_key"]["status"] == "Active"
    assert result["access_key"]["secret_access_key"]
    assert key_ids(iam) == [result["access_key"]["access_key_id"]]
    assert "hands_on" not in json.dumps(result.get("warnings", []))


def test_created_state_checked_with_boto3(iam, capsys):
    run_module(capsys, thing_name_prefix="krypton-")

    attached = iam.list_attached_user_policies(UserName=NAME)["AttachedPolicies"]
    inline = iam.get_user_policy(UserName=NAME, PolicyName=INLINE_NAME)["PolicyDocument"]
    assert attached == []
    assert inline == least_privilege_document("aws", REGION, ACCOUNT_ID, "krypton-")
    assert inline["Statement"][0]["Resource"] == "arn:aws:iot:%s:%s:thing/krypton-*" % (REGION, ACCOUNT_ID)


def test_hands_on_attaches_managed_policy_and_warns(iam, capsys):
    result = run_module(capsys, policy_mode="hands_on")

    assert result["changed"] is True
    assert result["policies"]["managed_policy_arns"] == [MANAGED_ARN]
    assert result["policies"]["inline_policy_names"] == [HANDS_ON_INLINE_NAME]
    inline = iam.get_user_policy(UserName=NAME, PolicyName=HANDS_ON_INLINE_NAME)["PolicyDocument"]
    assert inline["Statement"] == [{"Effect": "Allow", "Action": "iot:CreateKeysAndCertificate", "Resource": "*"}]
    warnings = json.dumps(result["warnings"])
    assert "policy_mode=hands_on attaches %s" % MANAGED_ARN in warnings
    assert "more AWS IoT actions than Krypton uses" in warnings


def test_hands_on_rerun_not_changed(iam, capsys):
    run_module(capsys, policy_mode="hands_on")

    result = run_module(capsys, policy_mode="hands_on")

    assert result["changed"] is False
    assert "more AWS IoT actions than Krypton uses" in json.dumps(result["warnings"])


def test_switch_to_least_privilege_detaches_only_hands_on_policy(iam, capsys):
    run_module(capsys, policy_mode="hands_on")
    other_arn = "arn:aws:iam::aws:policy/AWSIoTDataAccess"
    iam.attach_user_policy(UserName=NAME, PolicyArn=other_arn)

    result = run_module(capsys, thing_name_prefix="krypton-", _ansible_diff=True)

    assert result["changed"] is True
    attached = [policy["PolicyArn"] for policy in iam.list_attached_user_policies(UserName=NAME)["AttachedPolicies"]]
    assert attached == [other_arn]
    assert iam.list_user_policies(UserName=NAME)["PolicyNames"] == [INLINE_NAME]
    assert result["diff"]["before"]["managed_policy_arns"] == sorted([MANAGED_ARN, other_arn])
    assert result["diff"]["after"]["managed_policy_arns"] == [other_arn]
    assert result["diff"]["after"]["inline_policy_names"] == [INLINE_NAME]


def test_switch_check_mode_predicts_detach(iam, capsys):
    run_module(capsys, policy_mode="hands_on")

    result = run_module(capsys, _ansible_check_mode=True, _ansible_diff=True)

    assert result["changed"] is True
    assert result["diff"]["after"]["managed_policy_arns"] == []
    assert result["diff"]["after"]["inline_policy_names"] == [INLINE_NAME]
    assert result["diff"]["after"]["inline_policy_document"] == least_privilege_document("aws", REGION, ACCOUNT_ID)
    attached = iam.list_attached_user_policies(UserName=NAME)["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == [MANAGED_ARN]


def test_switch_to_hands_on_deletes_least_privilege_policy(iam, capsys):
    run_module(capsys)

    result = run_module(capsys, policy_mode="hands_on")

    assert result["changed"] is True
    assert iam.list_user_policies(UserName=NAME)["PolicyNames"] == [HANDS_ON_INLINE_NAME]
    attached = iam.list_attached_user_policies(UserName=NAME)["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == [MANAGED_ARN]


def test_thing_name_prefix_change_rewrites_policy(iam, capsys):
    run_module(capsys, thing_name_prefix="krypton-")

    result = run_module(capsys, thing_name_prefix="pi-", _ansible_diff=True)

    assert result["changed"] is True
    before = result["diff"]["before"]["inline_policy_document"]["Statement"][0]["Resource"]
    after = result["diff"]["after"]["inline_policy_document"]["Statement"][0]["Resource"]
    assert before.endswith(":thing/krypton-*")
    assert after.endswith(":thing/pi-*")


def test_custom_inline_policy_name(iam, capsys):
    run_module(capsys, inline_policy_name="SoracomKrypton")

    assert iam.list_user_policies(UserName=NAME)["PolicyNames"] == ["SoracomKrypton"]
    assert run_module(capsys, inline_policy_name="SoracomKrypton")["changed"] is False


@pytest.mark.parametrize("prefix", ["krypton-*", "pi/", "a" * 128, "krypton $"])
def test_invalid_thing_name_prefix_fails(iam, capsys, prefix):
    result = run_module(capsys, thing_name_prefix=prefix)

    assert result["failed"] is True
    assert "Invalid thing_name_prefix" in result["msg"]
    assert iam.list_users()["Users"] == []


def test_least_privilege_without_region_fails(iam, capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION")

    result = run_module(capsys)

    assert result["failed"] is True
    assert "No AWS region set for sts" in result["msg"]
    assert iam.list_users()["Users"] == []


def test_hands_on_without_region_works(iam, capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION")

    result = run_module(capsys, policy_mode="hands_on")

    assert result["changed"] is True
    assert result["policies"]["managed_policy_arns"] == [MANAGED_ARN]


def test_rerun_keeps_key_without_secret(iam, capsys):
    first = run_module(capsys)

    second = run_module(capsys)

    assert second["changed"] is False
    assert second["access_key"]["access_key_id"] == first["access_key"]["access_key_id"]
    assert "secret_access_key" not in second["access_key"]
    assert key_ids(iam) == [first["access_key"]["access_key_id"]]


def test_check_mode_new_user_creates_nothing(iam, capsys):
    result = run_module(capsys, _ansible_check_mode=True, _ansible_diff=True)

    assert result["changed"] is True
    assert result["user"] == {}
    assert result["access_key"] == {}
    assert result["diff"]["after"]["access_key_ids"] == [NEW_KEY_PLACEHOLDER]
    assert result["diff"]["after"]["managed_policy_arns"] == []
    assert result["diff"]["after"]["inline_policy_names"] == [INLINE_NAME]
    assert result["diff"]["after"]["inline_policy_document"] == least_privilege_document("aws", REGION, ACCOUNT_ID)
    assert iam.list_users()["Users"] == []


def test_check_mode_existing_user_unchanged(iam, capsys):
    first = run_module(capsys)

    result = run_module(capsys, _ansible_check_mode=True)

    assert result["changed"] is False
    assert result["access_key"]["access_key_id"] == first["access_key"]["access_key_id"]
    assert "secret_access_key" not in result["access_key"]


def test_check_mode_replace_creates_no_key(iam, capsys):
    first = run_module(capsys)

    result = run_module(capsys, replace_access_key=True, _ansible_check_mode=True)

    assert result["changed"] is True
    assert result["access_key"] == {}
    assert key_ids(iam) == [first["access_key"]["access_key_id"]]


def test_diff_never_contains_secret(iam, capsys):
    result = run_module(capsys, _ansible_diff=True)

    secret = result["access_key"]["secret_access_key"]
    assert secret not in json.dumps(result["diff"])
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["access_key_ids"] == [result["access_key"]["access_key_id"]]
    assert result["diff"]["after"]["inline_policy_names"] == [INLINE_NAME]


def test_two_keys_fail_listing_ids(iam, capsys):
    run_module(capsys)
    iam.create_access_key(UserName=NAME)
    before = key_ids(iam)

    result = run_module(capsys)

    assert result["failed"] is True
    for key_id in before:
        assert key_id in result["msg"]
    assert "replace_access_key=true" in result["msg"]
    assert key_ids(iam) == before


def test_replace_one_key(iam, capsys):
    first = run_module(capsys)

    result = run_module(capsys, replace_access_key=True)

    new_id = result["access_key"]["access_key_id"]
    assert result["changed"] is True
    assert new_id != first["access_key"]["access_key_id"]
    assert result["access_key"]["secret_access_key"]
    assert key_ids(iam) == [new_id]


def test_replace_two_keys(iam, capsys):
    run_module(capsys)
    iam.create_access_key(UserName=NAME)

    result = run_module(capsys, replace_access_key=True)

    assert result["changed"] is True
    assert key_ids(iam) == [result["access_key"]["access_key_id"]]


def test_reruns_keep_one_key(iam, capsys):
    run_module(capsys)
    for _run in range(3):
        run_module(capsys)

    assert len(key_ids(iam)) == 1


def test_user_without_key_gets_one(iam, capsys):
    iam.create_user(UserName=NAME)

    result = run_module(capsys)

    assert result["changed"] is True
    assert result["access_key"]["secret_access_key"]
    assert len(key_ids(iam)) == 1


def test_inline_policy_drift_corrected(iam, capsys):
    run_module(capsys)
    iam.put_user_policy(
        UserName=NAME,
        PolicyName=INLINE_NAME,
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}),
    )

    result = run_module(capsys, _ansible_diff=True)

    assert result["changed"] is True
    assert result["diff"]["before"]["inline_policy_document"]["Statement"][0]["Effect"] == "Deny"
    document = iam.get_user_policy(UserName=NAME, PolicyName=INLINE_NAME)["PolicyDocument"]
    assert document == least_privilege_document("aws", REGION, ACCOUNT_ID)


def test_path_updated(iam, capsys):
    run_module(capsys)

    result = run_module(capsys, path="/soracom/")

    assert result["changed"] is True
    assert iam.get_user(UserName=NAME)["User"]["Path"] == "/soracom/"


def test_inactive_key_warns(iam, capsys):
    first = run_module(capsys)
    iam.update_access_key(UserName=NAME, AccessKeyId=first["access_key"]["access_key_id"], Status="Inactive")

    result = run_module(capsys)

    assert result["changed"] is False
    # ansible-core 2.19 returns each warning as a structured event, not a string.
    assert "is Inactive" in json.dumps(result["warnings"])


def test_absent_deletes_everything(iam, capsys):
    run_module(capsys)
    extra = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:ListThings", "Resource": "*"}]}
    iam.put_user_policy(UserName=NAME, PolicyName="extra", PolicyDocument=json.dumps(extra))

    result = run_module(capsys, state="absent", _ansible_diff=True)

    assert result["changed"] is True
    assert result["user"] == {}
    assert result["diff"]["after"] == {}
    assert result["diff"]["before"]["inline_policy_names"] == ["KryptonProvisioning", "extra"]
    assert iam.list_users()["Users"] == []


def test_absent_twice_not_changed(iam, capsys):
    run_module(capsys)
    run_module(capsys, state="absent")

    result = run_module(capsys, state="absent")

    assert result["changed"] is False


def test_absent_check_mode_keeps_user(iam, capsys):
    run_module(capsys)

    result = run_module(capsys, state="absent", _ansible_check_mode=True)

    assert result["changed"] is True
    assert iam.get_user(UserName=NAME)["User"]["UserName"] == NAME
    assert len(key_ids(iam)) == 1


def test_cn_region_default_arn_partition(iam, capsys):
    result = run_module(capsys, region="cn-north-1", policy_mode="hands_on", _ansible_check_mode=True,
                        _ansible_diff=True)

    assert result["diff"]["after"]["managed_policy_arns"] == [
        "arn:aws-cn:iam::aws:policy/service-role/AWSIoTThingsRegistration"
    ]


def test_cn_region_least_privilege_arns(iam, capsys):
    result = run_module(capsys, region="cn-north-1", _ansible_check_mode=True, _ansible_diff=True)

    document = result["diff"]["after"]["inline_policy_document"]
    assert document["Statement"][0]["Resource"].startswith("arn:aws-cn:iot:cn-north-1:")


def test_missing_managed_policy_reported(iam, capsys):
    result = run_module(capsys, policy_mode="hands_on",
                        managed_policy_arn="arn:aws:iam::aws:policy/service-role/NoSuchPolicy")

    assert result["failed"] is True
    assert "AttachUserPolicy" in result["msg"]
    assert "NoSuchEntity" in result["msg"]


def test_invalid_path_fails(iam, capsys):
    result = run_module(capsys, path="soracom")

    assert result["failed"] is True
    assert "Invalid path 'soracom'" in result["msg"]


def test_unknown_region_fails(iam, capsys):
    result = run_module(capsys, region="tokyo")

    assert result["failed"] is True
    assert "Unknown AWS region 'tokyo'" in result["msg"]
    assert iam.list_users()["Users"] == []


def test_failure_after_key_creation_returns_key(iam, capsys, monkeypatch):
    run_module(capsys)
    real_call = aws_iam_krypton_user.call

    def call_failing_delete(client, method, **params):
        if method == "delete_access_key":
            raise AwsError("AWS IAM DeleteAccessKey failed (ServiceFailure, HTTP 500): internal error")
        return real_call(client, method, **params)

    monkeypatch.setattr(aws_iam_krypton_user, "call", call_failing_delete)

    result = run_module(capsys, replace_access_key=True)

    assert result["failed"] is True
    assert "DeleteAccessKey failed" in result["msg"]
    assert result["access_key"]["secret_access_key"]
    assert result["access_key"]["access_key_id"] in result["msg"]
    assert len(key_ids(iam)) == 2


def test_plan_no_keys_creates():
    plan = plan_access_keys(NAME, [], replace=False)

    assert plan == dict(delete_before=[], create=True, delete_after=[], keep=None)


def test_plan_one_key_kept():
    key = key_metadata("AKIAONE")

    plan = plan_access_keys(NAME, [key], replace=False)

    assert plan["create"] is False
    assert plan["keep"] == key


def test_plan_two_keys_rejected():
    with pytest.raises(TooManyAccessKeysError, match="AKIAONE, AKIATWO"):
        plan_access_keys(NAME, [key_metadata("AKIAONE"), key_metadata("AKIATWO")], replace=False)


def test_plan_replace_inactive_first():
    keys = [key_metadata("AKIAOLD", day=1), key_metadata("AKIAIDLE", status="Inactive", day=2)]

    plan = plan_access_keys(NAME, keys, replace=True)

    assert plan == dict(delete_before=["AKIAIDLE"], create=True, delete_after=["AKIAOLD"], keep=None)


def test_plan_replace_oldest_first():
    keys = [key_metadata("AKIANEW", day=5), key_metadata("AKIAOLD", day=1)]

    plan = plan_access_keys(NAME, keys, replace=True)

    assert plan["delete_before"] == ["AKIAOLD"]
    assert plan["delete_after"] == ["AKIANEW"]
