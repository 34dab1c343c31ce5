# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.soracom.krypton.plugins.module_utils._krypton_iam import (
    KRYPTON_ACTIONS,
    hands_on_managed_policy_arn,
    hands_on_warning,
    least_privilege_document,
    thing_name_prefix_from_pattern,
    validate_thing_name_prefix,
)

THINGS = "arn:aws:iot:ap-northeast-1:123456789012:thing/krypton-*"
CERTIFICATES = "arn:aws:iot:ap-northeast-1:123456789012:cert/*"


def statements_by_action(document):
    """Return {action: [resources]} over all statements of a document."""
    found = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            found.setdefault(action, []).extend(resources)
    return found


def test_document_allows_only_krypton_actions():
    document = least_privilege_document("aws", "ap-northeast-1", "123456789012", "krypton-")

    assert document["Version"] == "2012-10-17"
    assert sorted(statements_by_action(document)) == sorted(KRYPTON_ACTIONS)


@pytest.mark.parametrize("action,resources", [
    ("iot:CreateThing", [THINGS]),
    ("iot:DescribeThing", [THINGS]),
    ("iot:CreateKeysAndCertificate", ["*"]),
    ("iot:AttachPolicy", [CERTIFICATES]),
    ("iot:AttachPrincipalPolicy", [CERTIFICATES]),
    ("iot:AttachThingPrincipal", [THINGS, CERTIFICATES]),
])
def test_document_resources(action, resources):
    document = least_privilege_document("aws", "ap-northeast-1", "123456789012", "krypton-")

    assert statements_by_action(document)[action] == resources


def test_document_without_prefix_covers_all_things():
    document = least_privilege_document("aws", "us-east-1", "210987654321")

    assert statements_by_action(document)["iot:CreateThing"] == ["arn:aws:iot:us-east-1:210987654321:thing/*"]


def test_document_partition_and_sids_unique():
    document = least_privilege_document("aws-cn", "cn-north-1", "123456789012", "pi-")

    assert statements_by_action(document)["iot:DescribeThing"] == ["arn:aws-cn:iot:cn-north-1:123456789012:thing/pi-*"]
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert len(sids) == len(set(sids))


@pytest.mark.parametrize("pattern,prefix", [
    ("krypton-$imsi", "krypton-"),
    ("$imsi", ""),
    ("$imsi-pi", ""),
    ("fleet:a_1-$imsi", "fleet:a_1-"),
    ("pi-$iccid-$imsi", "pi-"),
    ("", ""),
])
def test_prefix_from_pattern(pattern, prefix):
    assert thing_name_prefix_from_pattern(pattern) == prefix


@pytest.mark.parametrize("prefix", ["", "krypton-", "a:b_c-D9", "x" * 127])
def test_valid_prefixes(prefix):
    assert validate_thing_name_prefix(prefix) is None


@pytest.mark.parametrize("prefix", ["krypton-*", "pi?", "a/b", "x" * 128, "has space"])
def test_invalid_prefixes(prefix):
    message = validate_thing_name_prefix(prefix)

    assert message.startswith("Invalid thing_name_prefix '%s'" % prefix)


def test_hands_on_arn_and_warning():
    arn = hands_on_managed_policy_arn("aws-us-gov")

    assert arn == "arn:aws-us-gov:iam::aws:policy/service-role/AWSIoTThingsRegistration"
    warning = hands_on_warning(arn)
    assert arn in warning
    assert "CreateThing" in warning
    assert "policy_mode=least_privilege" in warning
