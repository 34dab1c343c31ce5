# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

from ansible_collections.soracom.krypton.plugins.modules import soracom_credential_info
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    api,
    run,
)


def test_info_check_mode_reads(api, capsys):
    api.add_credential("krypton-aws")
    result = run(soracom_credential_info, capsys, check_mode=True)
    assert result["changed"] is False
    assert len(result["credentials"]) == 1
    assert api.writes() == []


def test_info_lists_without_secrets(api, capsys):
    api.add_credential("krypton-aws", description="Krypton")
    api.add_credential("other", credential_type="psk", access_key_id=None)
    result = run(soracom_credential_info, capsys)
    assert result["changed"] is False
    assert [item["credentials_id"] for item in result["credentials"]] == ["krypton-aws", "other"]
    assert result["credentials"][0]["access_key_id"] == "AKIAEXISTING"
    assert "access_key_id" not in result["credentials"][1]
    assert "stored-secret" not in json.dumps(result)


def test_info_one_and_missing(api, capsys):
    api.add_credential("krypton-aws")
    found = run(soracom_credential_info, capsys, credential_id="krypton-aws")
    assert len(found["credentials"]) == 1
    missing = run(soracom_credential_info, capsys, credential_id="nope")
    assert missing["credentials"] == []
