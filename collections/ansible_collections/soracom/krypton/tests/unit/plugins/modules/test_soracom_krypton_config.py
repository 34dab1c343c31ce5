# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.soracom.krypton.plugins.modules import soracom_krypton_config
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    api,
    run,
    warning_texts,
)

HOST = "a2labkrypton00-ats.iot.ap-northeast-1.amazonaws.com"
AWS_IOT = dict(
    region="ap-northeast-1",
    credentials_id="krypton-aws",
    policy_name="krypton-device-policy",
    thing_name_pattern="pi-$imsi",
    host=HOST,
)
WIRE = {
    "region": "ap-northeast-1",
    "credentialsId": "krypton-aws",
    "policyName": "krypton-device-policy",
    "thingNamePattern": "pi-$imsi",
    "host": HOST,
}


@pytest.fixture
def group_id(api):
    api.add_credential("krypton-aws")
    return api.add_group("krypton-pis")


def krypton(api, group_id):
    return api.groups[group_id]["configuration"].get("SoracomKrypton")


def test_present_cycle(api, capsys, group_id):
    args = dict(group_name="krypton-pis", enabled=True, aws_iot=AWS_IOT)

    check = run(soracom_krypton_config, capsys, check_mode=True, diff=True, **args)
    assert check["changed"] is True
    assert krypton(api, group_id) is None
    assert check["diff"]["before"] == {}
    assert check["diff"]["after"]["aws_iot"]["credentials_id"] == "krypton-aws"

    result = run(soracom_krypton_config, capsys, diff=True, **args)
    assert result["changed"] is True
    assert result["group_id"] == group_id
    assert krypton(api, group_id) == {"enabled": True, "AwsIot": WIRE}
    assert result["config"] == {"enabled": True, "aws_iot": dict(AWS_IOT)}
    assert api.writes() == [("PUT", "/groups/%s/configuration/SoracomKrypton" % group_id)]
    put_body = [call[2] for call in api.calls if call[0] == "PUT"][0]
    assert put_body == [{"key": "enabled", "value": True}, {"key": "AwsIot", "value": WIRE}]

    for check_mode in (True, False):
        again = run(soracom_krypton_config, capsys, check_mode=check_mode, diff=True, **args)
        assert again["changed"] is False
        assert again["diff"]["before"] == again["diff"]["after"]
    assert len(api.writes()) == 1


def test_only_differing_keys_written(api, capsys, group_id):
    api.groups[group_id]["configuration"]["SoracomKrypton"] = {"enabled": True, "AwsIot": dict(WIRE)}
    result = run(soracom_krypton_config, capsys, group_id=group_id, enabled=False, aws_iot=AWS_IOT)
    assert result["changed"] is True
    put_body = [call[2] for call in api.calls if call[0] == "PUT"][0]
    assert put_body == [{"key": "enabled", "value": False}]


def test_aws_iot_unset_leaves_it_alone(api, capsys, group_id):
    api.groups[group_id]["configuration"]["SoracomKrypton"] = {"enabled": False, "AwsIot": dict(WIRE)}
    result = run(soracom_krypton_config, capsys, group_id=group_id)
    assert result["changed"] is True
    assert krypton(api, group_id) == {"enabled": True, "AwsIot": WIRE}


def test_unmanaged_aws_iot_keys_kept(api, capsys, group_id):
    existing = dict(WIRE, rootCaCertificate="-----BEGIN CERTIFICATE-----", extra="x")
    api.groups[group_id]["configuration"]["SoracomKrypton"] = {"enabled": True, "AwsIot": existing}
    result = run(soracom_krypton_config, capsys, group_id=group_id, aws_iot=AWS_IOT)
    assert result["changed"] is False
    assert result["config"]["aws_iot"]["root_ca_certificate"] == "-----BEGIN CERTIFICATE-----"

    changed = run(soracom_krypton_config, capsys, group_id=group_id,
                  aws_iot=dict(AWS_IOT, policy_name="new-policy", root_ca_certificate="PEM"))
    assert changed["changed"] is True
    assert krypton(api, group_id)["AwsIot"] == dict(existing, policyName="new-policy", rootCaCertificate="PEM")


def test_absent(api, capsys, group_id):
    api.groups[group_id]["configuration"]["SoracomKrypton"] = {"enabled": True, "AwsIot": dict(WIRE)}
    api.groups[group_id]["configuration"]["SoracomAir"] = {"metadata": {"enabled": True}}

    check = run(soracom_krypton_config, capsys, check_mode=True, diff=True, group_name="krypton-pis", state="absent")
    assert check["changed"] is True
    assert check["diff"]["after"] == {}
    assert check["diff"]["before"]["enabled"] is True
    assert krypton(api, group_id) == {"enabled": True, "AwsIot": WIRE}

    result = run(soracom_krypton_config, capsys, group_name="krypton-pis", state="absent")
    assert result["changed"] is True
    assert result["config"] == {}
    assert krypton(api, group_id) == {}
    assert api.groups[group_id]["configuration"]["SoracomAir"] == {"metadata": {"enabled": True}}
    assert sorted(api.writes()) == [
        ("DELETE", "/groups/%s/configuration/SoracomKrypton/AwsIot" % group_id),
        ("DELETE", "/groups/%s/configuration/SoracomKrypton/enabled" % group_id),
    ]

    again = run(soracom_krypton_config, capsys, group_name="krypton-pis", state="absent")
    assert again["changed"] is False


def test_absent_missing_group_unchanged(api, capsys):
    result = run(soracom_krypton_config, capsys, group_name="nope", state="absent")
    assert result["changed"] is False
    assert result["group_id"] is None


@pytest.mark.parametrize("overrides, message", [
    (dict(thing_name_pattern="pi-fixed"), "does not contain $imsi"),
    (dict(region="ap-northeast-99"), "is not an AWS region"),
    (dict(host="iot.example.com"), "ending in .amazonaws.com or .amazonaws.com.cn"),
    (dict(host="a2labkrypton00-ats.iot.eu-west-1.amazonaws.com"), "is in region eu-west-1, but aws_iot.region is"),
])
def test_bad_aws_iot_refused_before_any_call(api, capsys, overrides, message):
    result = run(soracom_krypton_config, capsys, group_name="krypton-pis", aws_iot=dict(AWS_IOT, **overrides))
    assert result["failed"] is True
    assert message in result["msg"]
    assert api.calls == []


def test_legacy_host_warns(api, capsys, group_id):
    result = run(soracom_krypton_config, capsys, group_id=group_id,
                 aws_iot=dict(AWS_IOT, host="a2labkrypton00.iot.ap-northeast-1.amazonaws.com"))
    assert result["changed"] is True
    assert any("not an ATS endpoint" in text for text in warning_texts(result))


def test_missing_group_fails(api, capsys):
    api.add_credential("krypton-aws")
    result = run(soracom_krypton_config, capsys, group_name="krypton-pis", aws_iot=AWS_IOT)
    assert result["failed"] is True
    assert result["msg"].startswith("The group named 'krypton-pis' does not exist.")
    assert api.writes() == []


def test_missing_group_id_fails(api, capsys):
    result = run(soracom_krypton_config, capsys, group_id="0000-missing")
    assert result["failed"] is True
    assert result["msg"].startswith("The group ID 0000-missing does not exist.")


def test_missing_group_check_mode_predicts_change(api, capsys):
    result = run(soracom_krypton_config, capsys, check_mode=True, diff=True, group_name="krypton-pis", aws_iot=AWS_IOT)
    assert result["changed"] is True
    assert result["group_id"] is None
    assert result["diff"]["after"]["enabled"] is True
    assert any("does not exist yet" in text for text in warning_texts(result))
    assert api.writes() == []


def test_missing_credential_set_fails(api, capsys):
    api.add_group("krypton-pis")
    result = run(soracom_krypton_config, capsys, group_name="krypton-pis", aws_iot=AWS_IOT)
    assert result["failed"] is True
    assert "aws_iot.credentials_id 'krypton-aws' names no SORACOM credential set" in result["msg"]
    assert api.writes() == []


def test_wrong_credential_type_fails(api, capsys):
    api.add_group("krypton-pis")
    api.add_credential("krypton-aws", credential_type="psk")
    result = run(soracom_krypton_config, capsys, group_name="krypton-pis", aws_iot=AWS_IOT)
    assert result["failed"] is True
    assert "of type 'psk'" in result["msg"]


def test_several_groups_fail(api, capsys):
    first = api.add_group("krypton-pis")
    second = api.add_group("krypton-pis")
    result = run(soracom_krypton_config, capsys, group_name="krypton-pis")
    assert result["failed"] is True
    assert first in result["msg"]
    assert second in result["msg"]


def test_group_id_and_name_exclusive(api, capsys):
    result = run(soracom_krypton_config, capsys, group_id="g", group_name="n")
    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"]
    assert api.calls == []
