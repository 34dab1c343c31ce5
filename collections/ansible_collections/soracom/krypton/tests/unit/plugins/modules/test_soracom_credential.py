# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

from ansible_collections.soracom.krypton.plugins.modules import soracom_credential
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    api,
    run,
    warning_texts,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY = dict(credential_id="krypton-aws", description="Krypton IAM user",
           access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key=SECRET)


def assert_no_secret(result):
    assert SECRET not in json.dumps(result)
    assert "stored-secret" not in json.dumps(result)


def test_create_check_mode(api, capsys):
    result = run(soracom_credential, capsys, check_mode=True, diff=True, **KEY)
    assert result["changed"] is True
    assert api.credentials == {}
    assert api.writes() == []
    assert result["credential"]["credentials_id"] == "krypton-aws"
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"
    assert_no_secret(result)


def test_create(api, capsys):
    result = run(soracom_credential, capsys, diff=True, **KEY)
    assert result["changed"] is True
    stored = api.credentials["krypton-aws"]
    assert stored["type"] == "aws-credentials"
    assert stored["description"] == "Krypton IAM user"
    assert stored["credentials"] == {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": SECRET}
    assert api.writes() == [("POST", "/credentials/krypton-aws")]
    assert result["credential"]["credentials_id"] == "krypton-aws"
    assert result["credential"]["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"
    assert result["diff"]["after"]["secret_access_key"] == "(replaced)"
    assert_no_secret(result)


def test_existing_left_alone_on_create(api, capsys):
    api.add_credential("krypton-aws", description="Krypton IAM user", access_key_id="AKIAIOSFODNN7EXAMPLE")
    for check_mode in (True, False):
        result = run(soracom_credential, capsys, check_mode=check_mode, diff=True, **KEY)
        assert result["changed"] is False
        assert result["diff"]["before"] == result["diff"]["after"]
        assert warning_texts(result) == []
    assert api.writes() == []
    assert api.credentials["krypton-aws"]["credentials"]["secretAccessKey"] == "stored-secret"


def test_existing_difference_warns(api, capsys):
    api.add_credential("krypton-aws", description="old", access_key_id="AKIAOLDKEY")
    result = run(soracom_credential, capsys, **KEY)
    assert result["changed"] is False
    assert api.writes() == []
    warnings = warning_texts(result)
    assert len(warnings) == 1
    assert "left unchanged because overwrite=on_create" in warnings[0]
    assert "description differs" in warnings[0]
    assert "access key ID is AKIAOLDKEY, not AKIAIOSFODNN7EXAMPLE" in warnings[0]


def test_existing_without_secret_is_fine(api, capsys):
    api.add_credential("krypton-aws", access_key_id="AKIAIOSFODNN7EXAMPLE")
    result = run(soracom_credential, capsys, credential_id="krypton-aws", access_key_id="AKIAIOSFODNN7EXAMPLE")
    assert result["changed"] is False
    assert result["credential"]["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"


def test_overwrite_always(api, capsys):
    api.add_credential("krypton-aws", description="old", access_key_id="AKIAOLDKEY")
    check = run(soracom_credential, capsys, check_mode=True, diff=True, overwrite="always", **KEY)
    assert check["changed"] is True
    assert api.writes() == []
    assert check["diff"]["before"]["access_key_id"] == "AKIAOLDKEY"
    assert check["diff"]["after"]["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"

    for dummy in range(2):
        result = run(soracom_credential, capsys, overwrite="always", **KEY)
        assert result["changed"] is True
        assert_no_secret(result)
    assert api.writes() == [("PUT", "/credentials/krypton-aws")] * 2
    assert api.credentials["krypton-aws"]["credentials"]["secretAccessKey"] == SECRET
    assert api.credentials["krypton-aws"]["description"] == "Krypton IAM user"


def test_missing_set_without_secret_fails_before_write(api, capsys):
    result = run(soracom_credential, capsys, credential_id="krypton-aws", access_key_id="AKIAIOSFODNN7EXAMPLE")
    assert result["failed"] is True
    assert result["msg"] == (
        "Credential set 'krypton-aws' does not exist, and creating it needs access_key_id and "
        "secret_access_key. Nothing was written."
    )
    assert api.writes() == []


def test_overwrite_always_without_secret_fails_before_any_call(api, capsys):
    result = run(soracom_credential, capsys, credential_id="krypton-aws", overwrite="always")
    assert result["failed"] is True
    assert "access_key_id and secret_access_key are required" in result["msg"]
    assert api.calls == []


def test_absent(api, capsys):
    api.add_credential("krypton-aws")
    check = run(soracom_credential, capsys, check_mode=True, diff=True, credential_id="krypton-aws", state="absent")
    assert check["changed"] is True
    assert "krypton-aws" in api.credentials
    assert check["diff"]["after"] == {}

    result = run(soracom_credential, capsys, credential_id="krypton-aws", state="absent")
    assert result["changed"] is True
    assert api.credentials == {}

    again = run(soracom_credential, capsys, credential_id="krypton-aws", state="absent")
    assert again["changed"] is False
    assert api.writes() == [("DELETE", "/credentials/krypton-aws")]


def test_other_type_warns_on_create(api, capsys):
    api.add_credential("krypton-aws", credential_type="psk", access_key_id=None)
    result = run(soracom_credential, capsys, **KEY)
    assert result["changed"] is False
    assert "type is 'psk', not 'aws-credentials'" in warning_texts(result)[0]


def test_auth_failure_reported(api, capsys):
    result = run(soracom_credential, capsys, auth_key="wrong-key", **KEY)
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["error"]["status"] == 401
    assert result["error"]["path"] == "/auth"
    assert result["msg"].startswith("SORACOM authentication failed for auth key ID keyId-")
    assert api.writes() == []
