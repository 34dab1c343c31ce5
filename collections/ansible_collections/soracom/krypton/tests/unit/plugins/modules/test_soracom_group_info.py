# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.soracom.krypton.plugins.modules import soracom_group_info
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    api,
    run,
)


def test_group_info_lists_all(api, capsys):
    api.page_size = 1
    first = api.add_group("krypton-pis", owner="iot-team")
    second = api.add_group("other")
    result = run(soracom_group_info, capsys, check_mode=True)
    assert result["changed"] is False
    assert [group["group_id"] for group in result["groups"]] == [first, second]
    assert result["groups"][0]["name"] == "krypton-pis"
    assert result["groups"][0]["tags"] == {"name": "krypton-pis", "owner": "iot-team"}
    assert api.writes() == []


def test_group_info_by_ids_skips_missing(api, capsys):
    first = api.add_group("krypton-pis")
    second = api.add_group("other")
    result = run(soracom_group_info, capsys, group_ids=[second, "no-such-group", first, second])
    assert [group["group_id"] for group in result["groups"]] == [second, first]
    assert [group["name"] for group in result["groups"]] == ["other", "krypton-pis"]


def test_group_info_by_name_returns_duplicates(api, capsys):
    api.add_group("krypton-pis")
    api.add_group("krypton-pis")
    api.add_group("other")
    result = run(soracom_group_info, capsys, name="krypton-pis")
    assert len(result["groups"]) == 2
    assert {group["name"] for group in result["groups"]} == {"krypton-pis"}


def test_group_info_rejects_empty_id(api, capsys):
    result = run(soracom_group_info, capsys, group_ids=[""])
    assert result["failed"] is True
    assert "group_ids must not contain empty strings" in result["msg"]
