# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.module_utils import _iot_registry
from ansible_collections.soracom.krypton.plugins.module_utils._aws import translate_client_error
from ansible_collections.soracom.krypton.plugins.modules import aws_iot_thing

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
ClientError = pytest.importorskip("botocore.exceptions").ClientError

REGION = "ap-northeast-1"
NAME = "pi01"
POLICY = "KryptonDevicePolicy"


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
    # AnsibleModule collects warnings in a process-wide registry; start each test empty.
    monkeypatch.setattr(module_warnings, "_global_warnings", {})
    with moto.mock_aws(config={"iot": {"use_valid_cert": True}}):
        yield boto3.client("iot", region_name=REGION)


@pytest.fixture
def sleeps(monkeypatch):
    """Record the retry delays of run_plan instead of sleeping."""
    recorded = []
    monkeypatch.setattr(_iot_registry.time, "sleep", recorded.append)
    return recorded


def run_module(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            aws_iot_thing.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = excinfo.value.code
    return result


def warning_texts(result):
    """Return the warning messages of a result. ansible-core 2.19 wraps each in an event dict."""
    texts = []
    for warning in result.get("warnings", []):
        if isinstance(warning, dict):
            warning = warning.get("event", {}).get("msg", "")
        texts.append(warning)
    return texts


def attach_certificate(iot, *thing_names, policy=True):
    """Create an active certificate, attach it to the things and the policy, and return its ID and ARN."""
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    arn = certificate["certificateArn"]
    if policy:
        try:
            iot.create_policy(policyName=POLICY, policyDocument='{"Version": "2012-10-17", "Statement": []}')
        except iot.exceptions.ResourceAlreadyExistsException:
            pass
        iot.attach_policy(policyName=POLICY, target=arn)
    for name in thing_names:
        iot.attach_thing_principal(thingName=name, principal=arn)
    return certificate["certificateId"], arn


def thing_names(iot):
    return sorted(thing["thingName"] for thing in iot.list_things()["things"])


def attributes(iot, name=NAME):
    return iot.describe_thing(thingName=name)["attributes"]


def certificate_ids(iot):
    return sorted(certificate["certificateId"] for certificate in iot.list_certificates()["certificates"])


# Create and update


def test_create_thing(iot, capsys):
    result = run_module(capsys, name=NAME)

    assert result["changed"] is True
    assert result["thing"]["thing_name"] == NAME
    assert result["thing"]["thing_arn"].endswith(":thing/" + NAME)
    assert result["thing"]["thing_id"]
    assert result["thing"]["attributes"] == {}
    assert result["thing"]["version"] == 1
    assert result["thing"]["principals"] == []
    assert thing_names(iot) == [NAME]


def test_create_with_attributes(iot, capsys):
    result = run_module(capsys, name=NAME, attributes={"site": "tokyo-01", "slot": 3, "empty": ""})

    assert result["changed"] is True
    assert result["thing"]["attributes"] == {"site": "tokyo-01", "slot": "3"}
    assert attributes(iot) == {"site": "tokyo-01", "slot": "3"}


def test_existing_thing_not_changed(iot, capsys):
    run_module(capsys, name=NAME, attributes={"site": "tokyo-01"})

    result = run_module(capsys, name=NAME, attributes={"site": "tokyo-01"})

    assert result["changed"] is False
    assert result["thing"]["attributes"] == {"site": "tokyo-01"}


def test_existing_thing_keeps_id(iot, capsys):
    # moto's CreateThing replaces an existing thing, so a second create would change the ID.
    thing_id = run_module(capsys, name=NAME)["thing"]["thing_id"]

    result = run_module(capsys, name=NAME)

    assert result["changed"] is False
    assert result["thing"]["thing_id"] == thing_id


def test_principals_returned(iot, capsys):
    iot.create_thing(thingName=NAME)
    arn = attach_certificate(iot, NAME)[1]

    result = run_module(capsys, name=NAME)

    assert result["changed"] is False
    assert result["thing"]["principals"] == [arn]


def test_check_mode_create_writes_nothing(iot, capsys):
    result = run_module(capsys, name=NAME, attributes={"site": "tokyo-01"}, _ansible_check_mode=True, _ansible_diff=True)

    assert result["changed"] is True
    assert result["thing"] == {}
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"] == {"thing_name": NAME, "attributes": {"site": "tokyo-01"}, "principals": []}
    assert thing_names(iot) == []


def test_check_mode_unchanged(iot, capsys):
    run_module(capsys, name=NAME, attributes={"site": "tokyo-01"})

    result = run_module(capsys, name=NAME, attributes={"site": "tokyo-01"}, _ansible_check_mode=True)

    assert result["changed"] is False


def test_attributes_merged_by_default(iot, capsys):
    iot.create_thing(thingName=NAME, attributePayload={"attributes": {"site": "tokyo-01", "owner": "ops"}})

    result = run_module(capsys, name=NAME, attributes={"site": "osaka-02"}, _ansible_diff=True)

    assert result["changed"] is True
    assert result["thing"]["attributes"] == {"site": "osaka-02", "owner": "ops"}
    assert result["diff"]["before"]["attributes"] == {"site": "tokyo-01", "owner": "ops"}
    assert result["diff"]["after"]["attributes"] == {"site": "osaka-02", "owner": "ops"}
    assert attributes(iot) == {"site": "osaka-02", "owner": "ops"}


def test_purge_attributes(iot, capsys):
    iot.create_thing(thingName=NAME, attributePayload={"attributes": {"site": "tokyo-01", "owner": "ops"}})

    result = run_module(capsys, name=NAME, attributes={"site": "tokyo-01"}, purge_attributes=True)

    assert result["changed"] is True
    assert attributes(iot) == {"site": "tokyo-01"}


def test_purge_without_attributes_leaves_alone(iot, capsys):
    iot.create_thing(thingName=NAME, attributePayload={"attributes": {"site": "tokyo-01"}})

    result = run_module(capsys, name=NAME, purge_attributes=True)

    assert result["changed"] is False
    assert attributes(iot) == {"site": "tokyo-01"}


def test_purge_with_empty_dict_removes_all(iot, capsys):
    iot.create_thing(thingName=NAME, attributePayload={"attributes": {"site": "tokyo-01", "owner": "ops"}})

    result = run_module(capsys, name=NAME, attributes={}, purge_attributes=True)

    assert result["changed"] is True
    assert attributes(iot) == {}


def test_empty_value_removes_attribute(iot, capsys):
    iot.create_thing(thingName=NAME, attributePayload={"attributes": {"site": "tokyo-01", "owner": "ops"}})

    result = run_module(capsys, name=NAME, attributes={"owner": None})

    assert result["changed"] is True
    assert attributes(iot) == {"site": "tokyo-01"}


def test_check_mode_update_writes_nothing(iot, capsys):
    iot.create_thing(thingName=NAME, attributePayload={"attributes": {"site": "tokyo-01"}})

    result = run_module(capsys, name=NAME, attributes={"site": "osaka-02"}, _ansible_check_mode=True, _ansible_diff=True)

    assert result["changed"] is True
    assert result["thing"]["attributes"] == {"site": "tokyo-01"}
    assert result["diff"]["after"]["attributes"] == {"site": "osaka-02"}
    assert attributes(iot) == {"site": "tokyo-01"}


def test_invalid_name_fails(iot, capsys):
    result = run_module(capsys, name="pi 01")

    assert result["failed"] is True
    assert result["msg"] == "Invalid thing name 'pi 01': use 1 to 128 letters, digits or the characters :_-"


def test_invalid_attribute_fails(iot, capsys):
    result = run_module(capsys, name=NAME, attributes={"site": "tokyo 01"})

    assert result["failed"] is True
    assert result["msg"].startswith("Invalid value 'tokyo 01' for attribute 'site'")
    assert thing_names(iot) == []


# Deletion


def test_absent_missing_not_changed(iot, capsys):
    result = run_module(capsys, name=NAME, state="absent", _ansible_diff=True)

    assert result["changed"] is False
    assert result["thing"] == {}
    assert result["deleted_certificate_ids"] == []
    assert result["diff"] == {"before": {}, "after": {}}


def test_absent_detaches_and_keeps_certificates(iot, capsys):
    iot.create_thing(thingName=NAME, attributePayload={"attributes": {"site": "tokyo-01"}})
    certificate_id, arn = attach_certificate(iot, NAME)

    result = run_module(capsys, name=NAME, state="absent", _ansible_diff=True)

    assert result["changed"] is True
    assert result["thing"] == {}
    assert result["deleted_certificate_ids"] == []
    assert result["diff"]["before"] == {"thing_name": NAME, "attributes": {"site": "tokyo-01"}, "principals": [arn]}
    assert result["diff"]["after"] == {}
    assert thing_names(iot) == []
    assert certificate_ids(iot) == [certificate_id]
    assert iot.list_principal_things(principal=arn)["things"] == []


def test_absent_deletes_principals(iot, capsys):
    iot.create_thing(thingName=NAME)
    certificate_id, arn = attach_certificate(iot, NAME)

    result = run_module(capsys, name=NAME, state="absent", delete_principals=True)

    assert result["changed"] is True
    assert result["deleted_certificate_ids"] == [certificate_id]
    assert thing_names(iot) == []
    assert certificate_ids(iot) == []
    assert iot.list_targets_for_policy(policyName=POLICY)["targets"] == []


def test_absent_keeps_shared_certificate(iot, capsys):
    iot.create_thing(thingName=NAME)
    iot.create_thing(thingName="pi02")
    own_id = attach_certificate(iot, NAME)[0]
    shared_id, shared_arn = attach_certificate(iot, NAME, "pi02")

    result = run_module(capsys, name=NAME, state="absent", delete_principals=True)

    assert result["changed"] is True
    assert result["deleted_certificate_ids"] == [own_id]
    warnings = warning_texts(result)
    assert len(warnings) == 1
    assert warnings[0].startswith("Certificate %s was detached from thing '%s' but not deleted" % (shared_id, NAME))
    assert warnings[0].endswith("these things still use it: pi02.")
    assert certificate_ids(iot) == [shared_id]
    assert iot.list_principal_things(principal=shared_arn)["things"] == ["pi02"]
    assert thing_names(iot) == ["pi02"]


def test_absent_check_mode_predicts_deletions(iot, capsys):
    iot.create_thing(thingName=NAME)
    certificate_id, arn = attach_certificate(iot, NAME)

    result = run_module(capsys, name=NAME, state="absent", delete_principals=True, _ansible_check_mode=True, _ansible_diff=True)

    assert result["changed"] is True
    assert result["deleted_certificate_ids"] == [certificate_id]
    assert result["thing"]["principals"] == [arn]
    assert result["diff"]["after"] == {}
    assert thing_names(iot) == [NAME]
    assert certificate_ids(iot) == [certificate_id]
    assert iot.list_thing_principals(thingName=NAME)["principals"] == [arn]


def test_absent_check_mode_warns_about_shared_certificate(iot, capsys):
    iot.create_thing(thingName=NAME)
    iot.create_thing(thingName="pi02")
    shared_id = attach_certificate(iot, NAME, "pi02")[0]

    result = run_module(capsys, name=NAME, state="absent", delete_principals=True, _ansible_check_mode=True)

    assert result["changed"] is True
    assert result["deleted_certificate_ids"] == []
    assert warning_texts(result) == [
        "Certificate %s would be detached from thing '%s' but not deleted, because these things still use it: pi02."
        % (shared_id, NAME)
    ]


def test_absent_twice_not_changed(iot, capsys):
    iot.create_thing(thingName=NAME)
    attach_certificate(iot, NAME)
    run_module(capsys, name=NAME, state="absent", delete_principals=True)

    result = run_module(capsys, name=NAME, state="absent", delete_principals=True)

    assert result["changed"] is False
    assert result["deleted_certificate_ids"] == []


def test_absent_without_detach_fails_listing_principals(iot, capsys):
    iot.create_thing(thingName=NAME)
    arn = attach_certificate(iot, NAME)[1]

    result = run_module(capsys, name=NAME, state="absent", detach_principals=False)

    assert result["failed"] is True
    assert result["msg"].startswith("IoT thing '%s' has 1 attached principal(s): %s." % (NAME, arn))
    assert "Set detach_principals=true" in result["msg"]
    assert result["principals"] == [arn]
    assert thing_names(iot) == [NAME]


def test_absent_without_detach_and_no_principals(iot, capsys):
    iot.create_thing(thingName=NAME)

    result = run_module(capsys, name=NAME, state="absent", detach_principals=False)

    assert result["changed"] is True
    assert thing_names(iot) == []


def test_delete_principals_needs_detach(iot, capsys):
    result = run_module(capsys, name=NAME, state="absent", detach_principals=False, delete_principals=True)

    assert result["failed"] is True
    assert result["msg"].startswith("delete_principals=true requires detach_principals=true")


def test_absent_retries_delete_while_still_attached(iot, capsys, monkeypatch, sleeps):
    # AWS IoT applies DetachThingPrincipal asynchronously, which moto does not
    # model, so the first DeleteThing is made to fail as AWS would.
    iot.create_thing(thingName=NAME)
    attach_certificate(iot, NAME)
    real_call = _iot_registry.call
    failures = [1]

    def call_detaching_slowly(client, method, **params):
        if method == "delete_thing" and failures[0]:
            failures[0] -= 1
            error = ClientError(
                {"Error": {"Code": "InvalidRequestException",
                           "Message": "Cannot delete. Thing pi01 is still attached to one or more principals"},
                 "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "r-1"}},
                "DeleteThing",
            )
            raise translate_client_error(error, service="IoT")
        return real_call(client, method, **params)

    monkeypatch.setattr(_iot_registry, "call", call_detaching_slowly)

    result = run_module(capsys, name=NAME, state="absent")

    assert result["changed"] is True
    assert sleeps == [_iot_registry.DELETE_RETRY_DELAY]
    assert thing_names(iot) == []


def test_absent_access_denied_names_step(iot, capsys, monkeypatch, sleeps):
    iot.create_thing(thingName=NAME)
    real_call = _iot_registry.call

    def call_denied(client, method, **params):
        if method == "delete_thing":
            error = ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "User is not authorized to perform: iot:DeleteThing"},
                 "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": "r-1"}},
                "DeleteThing",
            )
            raise translate_client_error(error, service="IoT")
        return real_call(client, method, **params)

    monkeypatch.setattr(_iot_registry, "call", call_denied)

    result = run_module(capsys, name=NAME, state="absent")

    assert result["failed"] is True
    assert result["msg"].startswith("Failed to delete thing 'pi01': AWS IoT DeleteThing was denied (AccessDeniedException, HTTP 403)")
    assert result["error"]["code"] == "AccessDeniedException"
    assert sleeps == []
    assert thing_names(iot) == [NAME]
