# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils._aws import AwsApiError
from ansible_collections.soracom.krypton.plugins.module_utils._iot_things import (
    CertificateReferenceError,
    ThingAttributeError,
    apply_attribute_update,
    build_certificate_delete_plan,
    build_thing_delete_plan,
    certificate_diff_view,
    certificate_id_from_arn,
    describe_step,
    format_certificate,
    format_thing,
    normalize_attributes,
    parse_certificate_reference,
    plan_attribute_update,
    predict_certificate_view,
    predict_thing_view,
    split_certificates_by_use,
    step_failure_message,
    thing_diff_view,
)

CERT_ID = "3f2a9c0e5b7d41a8c6e2f0b9d8a7c6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9"
CERT_ARN = "arn:aws:iot:ap-northeast-1:123456789012:cert/" + CERT_ID
OTHER_ID = "0" * 64
OTHER_ARN = "arn:aws:iot:ap-northeast-1:123456789012:cert/" + OTHER_ID
CREATED = datetime(2026, 4, 1, 9, 30, tzinfo=timezone.utc)
NOT_AFTER = datetime(2049, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def api_error(code, message, operation="DeleteCertificate"):
    return AwsApiError(operation=operation, code=code, message=message, http_status=409, service="IoT")


# Certificate IDs and ARNs


def test_parse_reference_bare_id():
    assert parse_certificate_reference(CERT_ID) == (CERT_ID, None)


def test_parse_reference_upper_case_id_lowered():
    assert parse_certificate_reference(CERT_ID.upper()) == (CERT_ID, None)


def test_parse_reference_arn_gives_region():
    assert parse_certificate_reference(CERT_ARN) == (CERT_ID, "ap-northeast-1")


def test_parse_reference_other_partition():
    arn = "arn:aws-cn:iot:cn-north-1:123456789012:cert/" + CERT_ID

    assert parse_certificate_reference(arn) == (CERT_ID, "cn-north-1")


def test_parse_reference_strips_whitespace():
    assert parse_certificate_reference("  %s\n" % CERT_ID) == (CERT_ID, None)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(CERT_ID[:63], id="63-digits"),
        pytest.param(CERT_ID + "0", id="65-digits"),
        pytest.param("g" * 64, id="not-hex"),
        pytest.param("arn:aws:iot:ap-northeast-1:123456789012:thing/pi01", id="thing-arn"),
        pytest.param("arn:aws:iot:ap-northeast-1:123456789012:cacert/" + CERT_ID, id="ca-certificate-arn"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
    ],
)
def test_parse_reference_rejects(value):
    with pytest.raises(CertificateReferenceError) as excinfo:
        parse_certificate_reference(value)

    assert "Invalid certificate_id" in str(excinfo.value)
    assert "64 hexadecimal digits" in str(excinfo.value)


def test_certificate_id_from_arn():
    assert certificate_id_from_arn(CERT_ARN) == CERT_ID


@pytest.mark.parametrize("principal", ["us-east-1:3c1f0a2b-cognito-identity", "arn:aws:iot:ap-northeast-1:1:thing/x", "", None])
def test_certificate_id_from_other_principals(principal):
    assert certificate_id_from_arn(principal) is None


# Attributes


def test_normalize_none_leaves_alone():
    assert normalize_attributes(None) is None


def test_normalize_converts_scalars():
    result = normalize_attributes({"count": 42, "ratio": 1.5, "enabled": True, "off": False, "gone": None, "site": "a"})

    assert result == {"count": "42", "ratio": "1.5", "enabled": "true", "off": "false", "gone": "", "site": "a"}


def test_normalize_rejects_bad_name():
    with pytest.raises(ThingAttributeError) as excinfo:
        normalize_attributes({"bad name": "x"})

    assert "Invalid attribute name 'bad name'" in str(excinfo.value)


def test_normalize_rejects_bad_value():
    with pytest.raises(ThingAttributeError) as excinfo:
        normalize_attributes({"site": "tokyo 01"})

    assert "Invalid value 'tokyo 01' for attribute 'site'" in str(excinfo.value)


def test_normalize_rejects_long_value():
    with pytest.raises(ThingAttributeError):
        normalize_attributes({"site": "x" * 801})


def test_normalize_rejects_nested_value():
    with pytest.raises(ThingAttributeError) as excinfo:
        normalize_attributes({"site": {"city": "tokyo"}})

    assert "expected a string, number or boolean, not dict" in str(excinfo.value)


def test_attribute_update_none_requested():
    assert plan_attribute_update({"a": "1"}, None, purge=True) == {}


def test_attribute_update_same_values():
    assert plan_attribute_update({"a": "1", "b": "2"}, {"a": "1"}, purge=False) == {}


def test_attribute_update_changed_and_new():
    assert plan_attribute_update({"a": "1"}, {"a": "2", "b": "3"}, purge=False) == {"a": "2", "b": "3"}


def test_attribute_update_purge_removes_others():
    assert plan_attribute_update({"a": "1", "b": "2"}, {"a": "1"}, purge=True) == {"b": ""}


def test_attribute_update_empty_value_removes():
    assert plan_attribute_update({"a": "1"}, {"a": ""}, purge=False) == {"a": ""}


def test_attribute_update_empty_value_for_missing():
    assert plan_attribute_update({}, {"a": ""}, purge=False) == {}


def test_attribute_update_purge_all_with_empty_dict():
    assert plan_attribute_update({"a": "1", "b": "2"}, {}, purge=True) == {"a": "", "b": ""}


def test_apply_attribute_update():
    assert apply_attribute_update({"a": "1", "b": "2"}, {"a": "", "b": "3", "c": "4"}) == {"b": "3", "c": "4"}


# Plans


def test_certificate_delete_plan_active():
    plan = build_certificate_delete_plan(CERT_ID, CERT_ARN, "ACTIVE", ["p2", "p1"], ["pi02", "pi01"])

    assert plan == [
        ("update_certificate", {"certificateId": CERT_ID, "newStatus": "INACTIVE"}),
        ("detach_policy", {"policyName": "p1", "target": CERT_ARN}),
        ("detach_policy", {"policyName": "p2", "target": CERT_ARN}),
        ("detach_thing_principal", {"thingName": "pi01", "principal": CERT_ARN}),
        ("detach_thing_principal", {"thingName": "pi02", "principal": CERT_ARN}),
        ("delete_certificate", {"certificateId": CERT_ID}),
    ]


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED"])
def test_certificate_delete_plan_skips_deactivation(status):
    plan = build_certificate_delete_plan(CERT_ID, CERT_ARN, status, [], [])

    assert plan == [("delete_certificate", {"certificateId": CERT_ID})]


def test_split_certificates_by_use():
    unused, shared = split_certificates_by_use("pi01", {CERT_ARN: ["pi01"], OTHER_ARN: ["pi03", "pi01", "pi02"]})

    assert unused == [CERT_ARN]
    assert shared == {OTHER_ARN: ["pi02", "pi03"]}


def test_split_certificates_unattached_counts_as_unused():
    unused, shared = split_certificates_by_use("pi01", {CERT_ARN: []})

    assert unused == [CERT_ARN]
    assert shared == {}


def test_thing_delete_plan_order():
    certificate = dict(certificate_id=CERT_ID, certificate_arn=CERT_ARN, status="ACTIVE", policies=["p1"], things=["pi01"])

    plan = build_thing_delete_plan("pi01", [OTHER_ARN, CERT_ARN], [certificate])

    assert plan == [
        ("update_certificate", {"certificateId": CERT_ID, "newStatus": "INACTIVE"}),
        ("detach_policy", {"policyName": "p1", "target": CERT_ARN}),
        ("detach_thing_principal", {"thingName": "pi01", "principal": CERT_ARN}),
        ("delete_certificate", {"certificateId": CERT_ID}),
        ("detach_thing_principal", {"thingName": "pi01", "principal": OTHER_ARN}),
        ("delete_thing", {"thingName": "pi01"}),
    ]


def test_thing_delete_plan_deactivates_all_before_detaching():
    first = dict(certificate_id=CERT_ID, certificate_arn=CERT_ARN, status="ACTIVE", policies=[], things=["pi01"])
    second = dict(certificate_id=OTHER_ID, certificate_arn=OTHER_ARN, status="ACTIVE", policies=[], things=["pi01"])

    plan = build_thing_delete_plan("pi01", [CERT_ARN, OTHER_ARN], [first, second])

    methods = [method for method, dummy in plan]
    assert methods[:2] == ["update_certificate", "update_certificate"]
    assert methods.index("detach_thing_principal") == 2
    assert plan[-1] == ("delete_thing", {"thingName": "pi01"})


def test_thing_delete_plan_inactive_certificate_keeps_status():
    certificate = dict(certificate_id=CERT_ID, certificate_arn=CERT_ARN, status="INACTIVE", policies=[], things=["pi01"])

    plan = build_thing_delete_plan("pi01", [CERT_ARN], [certificate])

    assert plan == [
        ("detach_thing_principal", {"thingName": "pi01", "principal": CERT_ARN}),
        ("delete_certificate", {"certificateId": CERT_ID}),
        ("delete_thing", {"thingName": "pi01"}),
    ]


def test_thing_delete_plan_without_principals():
    assert build_thing_delete_plan("pi01", [], []) == [("delete_thing", {"thingName": "pi01"})]


@pytest.mark.parametrize(
    "method, params, expected",
    [
        ("detach_policy", {"policyName": "p1", "target": CERT_ARN}, "detach policy 'p1' from certificate " + CERT_ID),
        ("detach_thing_principal", {"thingName": "pi01", "principal": CERT_ARN}, "detach principal %s from thing 'pi01'" % CERT_ID),
        ("update_certificate", {"certificateId": CERT_ID, "newStatus": "INACTIVE"}, "set certificate %s to INACTIVE" % CERT_ID),
        ("delete_certificate", {"certificateId": CERT_ID}, "delete certificate " + CERT_ID),
        ("delete_thing", {"thingName": "pi01"}, "delete thing 'pi01'"),
        ("create_thing", {"thingName": "pi01"}, "create thing 'pi01'"),
        ("update_thing", {"thingName": "pi01", "attributePayload": {}}, "update the attributes of thing 'pi01'"),
        ("detach_thing_principal", {"thingName": "pi01", "principal": "cognito-id"}, "detach principal cognito-id from thing 'pi01'"),
    ],
)
def test_describe_step(method, params, expected):
    assert describe_step(method, params) == expected


def test_failure_message_still_attached():
    error = api_error("DeleteConflictException", "Things must be detached before deletion")

    message = step_failure_message("delete_certificate", {"certificateId": CERT_ID}, error, still_attached=True)

    assert message.startswith("Failed to delete certificate %s: AWS IoT DeleteCertificate failed" % CERT_ID)
    assert "Run the task again in a minute." in message


def test_failure_message_certificate_state():
    error = api_error("CertificateStateException", "The certificate is pending transfer.", operation="UpdateCertificate")

    message = step_failure_message("update_certificate", {"certificateId": CERT_ID, "newStatus": "ACTIVE"}, error)

    assert "set certificate %s to ACTIVE" % CERT_ID in message
    assert "PENDING_TRANSFER needs its transfer cancelled or rejected" in message


def test_failure_message_access_denied_keeps_advice():
    error = api_error("AccessDeniedException", "User is not authorized to perform iot:DeleteThing", operation="DeleteThing")

    message = step_failure_message("delete_thing", {"thingName": "pi01"}, error)

    assert message.startswith("Failed to delete thing 'pi01': AWS IoT DeleteThing was denied")
    assert message.endswith("Grant that IAM permission to the caller or use other credentials.")


def test_failure_message_other_error():
    error = api_error("InternalFailureException", "Internal error.", operation="DeleteThing")

    message = step_failure_message("delete_thing", {"thingName": "pi01"}, error)

    assert message.startswith("Failed to delete thing 'pi01': AWS IoT DeleteThing failed")
    assert message.endswith("Fix the cause and run the task again.")
    assert "step(s) before it" not in message


def test_failure_message_counts_done_steps():
    error = api_error("InternalFailureException", "Internal error.", operation="DeleteThing")

    message = step_failure_message("delete_thing", {"thingName": "pi01"}, error, steps_done=3)

    assert "Internal error. The 3 step(s) before it were done. Fix the cause" in message


# Results and diffs


def description(**overrides):
    result = dict(
        certificateId=CERT_ID,
        certificateArn=CERT_ARN,
        status="ACTIVE",
        creationDate=CREATED,
        validity=dict(notBefore=CREATED, notAfter=NOT_AFTER),
    )
    result.update(overrides)
    return result


def test_format_certificate():
    result = format_certificate(description(), ["p2", "p1"], ["pi01"])

    assert result == dict(
        certificate_id=CERT_ID,
        certificate_arn=CERT_ARN,
        status="ACTIVE",
        creation_date="2026-04-01T09:30:00+00:00",
        not_after="2049-12-31T23:59:59+00:00",
        policies=["p1", "p2"],
        things=["pi01"],
    )


def test_format_certificate_without_validity():
    result = format_certificate(description(validity=None), [], [])

    assert "not_after" not in result


def test_certificate_diff_and_prediction():
    before = certificate_diff_view(format_certificate(description(), ["p1"], ["pi01"]))

    assert before == dict(certificate_id=CERT_ID, status="ACTIVE", policies=["p1"], things=["pi01"])
    assert predict_certificate_view(before, "inactive") == dict(before, status="INACTIVE")
    assert predict_certificate_view(before, "active") == before
    assert predict_certificate_view(before, "absent") == {}
    assert certificate_diff_view({}) == {}


def test_format_thing():
    entry = dict(thingName="pi01", thingArn="arn:thing", thingId="id-1", attributes={"a": "1"}, version=3)

    result = format_thing(entry, [CERT_ARN])

    assert result == dict(
        thing_name="pi01", thing_arn="arn:thing", thing_id="id-1", attributes={"a": "1"}, version=3, principals=[CERT_ARN]
    )


def test_format_thing_from_list_entry_with_type():
    entry = dict(thingName="pi01", thingArn="arn:thing", thingTypeName="RaspberryPi", attributes={}, version=1)

    result = format_thing(entry, [])

    assert "thing_id" not in result
    assert result["thing_type_name"] == "RaspberryPi"


def test_thing_diff_and_prediction():
    thing = format_thing(dict(thingName="pi01", thingArn="arn", attributes={"a": "1"}, version=1), [CERT_ARN])
    before = thing_diff_view(thing)

    assert before == dict(thing_name="pi01", attributes={"a": "1"}, principals=[CERT_ARN])
    assert predict_thing_view("pi01", before, {"a": "", "b": "2"}) == dict(before, attributes={"b": "2"})
    assert predict_thing_view("pi02", {}, {"b": "2"}) == dict(thing_name="pi02", attributes={"b": "2"}, principals=[])
    assert thing_diff_view({}) == {}
