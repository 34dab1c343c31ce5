# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils._iot_policy import (
    MAX_POLICY_VERSIONS,
    PolicyDocumentError,
    build_delete_plan,
    describe_target,
    format_versions,
    parse_policy_document,
    policy_documents_equal,
    serialize_policy_document,
    version_to_prune,
    versions_to_prune,
)

BASE = datetime(2026, 4, 1, 9, 0, 0, tzinfo=timezone.utc)

DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "*"},
    ],
}


def version(version_id, minutes, default=False):
    return dict(versionId=str(version_id), isDefaultVersion=default, createDate=BASE + timedelta(minutes=minutes))


@pytest.mark.parametrize(
    "left, right",
    [
        pytest.param(DOCUMENT, json.dumps(DOCUMENT), id="dict-vs-string"),
        pytest.param(DOCUMENT, json.dumps(DOCUMENT, indent=4), id="whitespace"),
        pytest.param(
            DOCUMENT,
            json.dumps({"Statement": DOCUMENT["Statement"], "Version": "2012-10-17"}),
            id="top-level-key-order",
        ),
        pytest.param(
            DOCUMENT,
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Resource": "*", "Action": "iot:Connect", "Effect": "Allow"},
                    {"Resource": "*", "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"]},
                ],
            },
            id="statement-key-order",
        ),
        pytest.param(json.dumps(DOCUMENT).encode(), DOCUMENT, id="bytes"),
    ],
)
def test_documents_equal(left, right):
    assert policy_documents_equal(left, right)


@pytest.mark.parametrize(
    "right",
    [
        pytest.param(
            {"Version": "2012-10-17", "Statement": list(reversed(DOCUMENT["Statement"]))},
            id="statement-order",
        ),
        pytest.param(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*"},
                    DOCUMENT["Statement"][1],
                ],
            },
            id="action-string-vs-list",
        ),
        pytest.param(
            {
                "Version": "2012-10-17",
                "Statement": [
                    DOCUMENT["Statement"][0],
                    {"Effect": "Allow", "Action": ["iot:Receive", "iot:Publish"], "Resource": "*"},
                ],
            },
            id="action-order",
        ),
        pytest.param({"Version": "2012-10-17", "Statement": DOCUMENT["Statement"][:1]}, id="statement-removed"),
    ],
)
def test_documents_differ(right):
    assert not policy_documents_equal(DOCUMENT, right)


def test_parse_rejects_invalid_json():
    with pytest.raises(PolicyDocumentError, match="not valid JSON"):
        parse_policy_document('{"Version": ')


@pytest.mark.parametrize("value", ["[]", '"text"', "3", [1, 2]])
def test_parse_rejects_non_object(value):
    with pytest.raises(PolicyDocumentError, match="must be a JSON object"):
        parse_policy_document(value)


def test_serialize_is_compact_json():
    text = serialize_policy_document(DOCUMENT)

    assert " " not in text.replace('"Version"', "")
    assert json.loads(text) == DOCUMENT


def test_prune_nothing_below_limit():
    versions = [version(i, i, default=(i == 4)) for i in range(1, 5)]

    assert versions_to_prune(versions) == []
    assert version_to_prune(versions) is None


def test_prune_oldest_non_default():
    versions = [version(i, i, default=(i == 5)) for i in range(1, 6)]

    assert version_to_prune(versions) == "1"


def test_prune_skips_default_when_oldest():
    versions = [version(i, i, default=(i == 1)) for i in range(1, 6)]

    assert version_to_prune(versions) == "2"


def test_prune_uses_create_date_not_list_order():
    versions = [
        version(5, 50),
        version(3, 30, default=True),
        version(4, 40),
        version(2, 20),
        version(6, 60),
    ]

    assert version_to_prune(versions) == "2"


def test_prune_tie_by_version_id():
    # AWS reports creation dates in whole seconds, so several versions can share one.
    versions = [version(10, 0), version(9, 0), version(11, 0), version(12, 0, default=True), version(13, 1)]

    assert version_to_prune(versions) == "9"


def test_prune_several_when_over_limit():
    versions = [version(i, i, default=(i == 3)) for i in range(1, 8)]

    assert versions_to_prune(versions) == ["1", "2", "4"]


def test_prune_limit_constant_is_five():
    assert MAX_POLICY_VERSIONS == 5


def test_delete_plan_versions_then_policy():
    versions = [version(3, 30), version(1, 10), version(2, 20, default=True)]

    plan = build_delete_plan("DevicePolicy", versions)

    assert plan == [
        ("delete_policy_version", {"policyName": "DevicePolicy", "policyVersionId": "1"}),
        ("delete_policy_version", {"policyName": "DevicePolicy", "policyVersionId": "3"}),
        ("delete_policy", {"policyName": "DevicePolicy"}),
    ]


def test_delete_plan_single_version():
    plan = build_delete_plan("DevicePolicy", [version(1, 0, default=True)])

    assert plan == [("delete_policy", {"policyName": "DevicePolicy"})]


def test_describe_target_certificate():
    arn = "arn:aws:iot:ap-northeast-1:123456789012:cert/3f2a9c"

    assert describe_target(arn) == "certificate 3f2a9c (%s)" % arn


def test_describe_target_unknown_text_unchanged():
    assert describe_target("not-an-arn") == "not-an-arn"


def test_format_versions_snake_case_oldest_first():
    result = format_versions([version(2, 20, default=True), version(1, 10)])

    assert result == [
        {"version_id": "1", "is_default_version": False, "create_date": "2026-04-01T09:10:00+00:00"},
        {"version_id": "2", "is_default_version": True, "create_date": "2026-04-01T09:20:00+00:00"},
    ]
