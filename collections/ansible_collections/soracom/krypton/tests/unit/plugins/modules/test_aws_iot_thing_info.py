# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.module_utils import _iot_registry
from ansible_collections.soracom.krypton.plugins.modules import aws_iot_thing_info

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

REGION = "ap-northeast-1"


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
    with moto.mock_aws(config={"iot": {"use_valid_cert": True}}):
        yield boto3.client("iot", region_name=REGION)


def run_module(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            aws_iot_thing_info.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = excinfo.value.code
    return result


def create_thing(iot, name, attributes=None, certificates=0, active=True):
    """Create a thing with new certificates attached and return the certificates' create_keys_and_certificate results."""
    iot.create_thing(thingName=name, attributePayload={"attributes": attributes or {}})
    created = []
    for number in range(certificates):
        certificate = iot.create_keys_and_certificate(setAsActive=active)
        iot.attach_thing_principal(thingName=name, principal=certificate["certificateArn"])
        created.append(certificate)
    return created


def names(result):
    return [thing["thing_name"] for thing in result["things"]]


def test_no_things(iot, capsys):
    result = run_module(capsys)

    assert result["changed"] is False
    assert result["things"] == []


def test_lists_all_things_sorted(iot, capsys):
    for name in ("pi02", "gateway", "pi01"):
        create_thing(iot, name)

    result = run_module(capsys)

    assert names(result) == ["gateway", "pi01", "pi02"]


def test_thing_with_certificate_details(iot, capsys):
    certificate = create_thing(iot, "pi01", attributes={"site": "tokyo-01"}, certificates=1)[0]

    result = run_module(capsys)

    thing = result["things"][0]
    assert thing["thing_name"] == "pi01"
    assert thing["thing_arn"].endswith(":thing/pi01")
    assert thing["attributes"] == {"site": "tokyo-01"}
    assert thing["version"] == 1
    assert thing["principals"] == [certificate["certificateArn"]]
    assert "thing_id" not in thing
    entry = thing["certificates"][0]
    assert entry["certificate_id"] == certificate["certificateId"]
    assert entry["certificate_arn"] == certificate["certificateArn"]
    assert entry["status"] == "ACTIVE"
    assert entry["creation_date"]
    assert entry["not_after"]


def test_certificates_false_skips_describe(iot, capsys, monkeypatch):
    certificate = create_thing(iot, "pi01", certificates=1)[0]

    def must_not_be_called(client, certificate_id):
        pytest.fail("DescribeCertificate was called although certificates=false")

    monkeypatch.setattr(aws_iot_thing_info, "read_certificate_description", must_not_be_called)

    result = run_module(capsys, certificates=False)

    assert result["things"][0]["certificates"] == [
        {"certificate_id": certificate["certificateId"], "certificate_arn": certificate["certificateArn"]}
    ]


def test_inactive_certificate_status(iot, capsys):
    create_thing(iot, "pi01", certificates=1, active=False)

    result = run_module(capsys)

    assert result["things"][0]["certificates"][0]["status"] == "INACTIVE"


def test_shared_certificate_read_once(iot, capsys, monkeypatch):
    certificate = create_thing(iot, "pi01", certificates=1)[0]
    create_thing(iot, "pi02")
    iot.attach_thing_principal(thingName="pi02", principal=certificate["certificateArn"])
    reads = []
    real_read = _iot_registry.read_certificate_description

    def counting_read(client, certificate_id):
        reads.append(certificate_id)
        return real_read(client, certificate_id)

    monkeypatch.setattr(aws_iot_thing_info, "read_certificate_description", counting_read)

    result = run_module(capsys)

    assert reads == [certificate["certificateId"]]
    assert [thing["certificates"][0]["status"] for thing in result["things"]] == ["ACTIVE", "ACTIVE"]


def test_deleted_certificate_has_no_details(iot, capsys, monkeypatch):
    certificate = create_thing(iot, "pi01", certificates=1)[0]
    monkeypatch.setattr(aws_iot_thing_info, "read_certificate_description", lambda client, certificate_id: None)

    result = run_module(capsys)

    assert result["things"][0]["certificates"] == [
        {"certificate_id": certificate["certificateId"], "certificate_arn": certificate["certificateArn"]}
    ]


def test_names_skip_missing(iot, capsys):
    create_thing(iot, "pi01")
    create_thing(iot, "pi02")

    result = run_module(capsys, names=["pi02", "pi99", "pi01", "pi02"])

    assert names(result) == ["pi01", "pi02"]
    assert result["things"][0]["thing_id"]


def test_name_prefix(iot, capsys):
    for name in ("pi01", "pi02", "gateway", "spi01"):
        create_thing(iot, name)

    result = run_module(capsys, name_prefix="pi")

    assert names(result) == ["pi01", "pi02"]


def test_attribute_filter(iot, capsys):
    create_thing(iot, "pi01", attributes={"site": "tokyo-01"})
    create_thing(iot, "pi02", attributes={"site": "osaka-02"})
    create_thing(iot, "pi03")

    result = run_module(capsys, attribute_name="site", attribute_value="tokyo-01")

    assert names(result) == ["pi01"]


def test_thing_type_filter(iot, capsys):
    iot.create_thing_type(thingTypeName="RaspberryPi")
    iot.create_thing(thingName="pi01", thingTypeName="RaspberryPi")
    create_thing(iot, "gateway")

    result = run_module(capsys, thing_type_name="RaspberryPi")

    assert names(result) == ["pi01"]
    assert result["things"][0]["thing_type_name"] == "RaspberryPi"


def test_all_pages_listed(iot, capsys):
    # moto returns ListThings in pages of 50, so 120 things take three pages.
    for number in range(120):
        iot.create_thing(thingName="pi%03d" % number)
    assert "nextToken" in iot.list_things()

    result = run_module(capsys, certificates=False)

    assert len(result["things"]) == 120
    assert names(result) == ["pi%03d" % number for number in range(120)]


def test_check_mode_reads(iot, capsys):
    create_thing(iot, "pi01")

    result = run_module(capsys, _ansible_check_mode=True)

    assert result["changed"] is False
    assert names(result) == ["pi01"]


def test_names_and_prefix_exclusive(iot, capsys):
    result = run_module(capsys, names=["pi01"], name_prefix="pi")

    assert result["failed"] is True
    assert "mutually exclusive: names|name_prefix" in result["msg"]


def test_attribute_name_needs_value(iot, capsys):
    result = run_module(capsys, attribute_name="site")

    assert result["failed"] is True
    assert result["msg"] == "parameters are required together: attribute_name, attribute_value"


def test_invalid_names_fail(iot, capsys):
    result = run_module(capsys, names=["pi01", "pi 02"])

    assert result["failed"] is True
    assert result["msg"].startswith("Invalid thing name(s) in names: 'pi 02'.")
