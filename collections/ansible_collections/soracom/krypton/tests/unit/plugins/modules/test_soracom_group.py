# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.soracom.krypton.plugins.modules import soracom_group
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    api,
    run,
)


def only_group(api):
    assert len(api.groups) == 1
    return next(iter(api.groups.values()))


def test_create_check_then_run_then_idempotent(api, capsys):
    args = dict(name="krypton-pis", tags={"owner": "iot-team"})

    check = run(soracom_group, capsys, check_mode=True, diff=True, **args)
    assert check["changed"] is True
    assert api.groups == {}
    assert check["group"]["group_id"] is None
    assert check["group"]["tags"] == {"name": "krypton-pis", "owner": "iot-team"}
    assert check["diff"] == {"before": {}, "after": {"name": "krypton-pis",
                                                     "tags": {"name": "krypton-pis", "owner": "iot-team"}}}

    created = run(soracom_group, capsys, **args)
    assert created["changed"] is True
    group = only_group(api)
    assert group["tags"] == {"name": "krypton-pis", "owner": "iot-team"}
    assert created["group"]["group_id"] == group["groupId"]
    assert created["group"]["operator_id"] == "OP0099000001"
    assert created["group"]["configuration"] == {}
    assert api.writes() == [("POST", "/groups")]

    for check_mode in (True, False):
        again = run(soracom_group, capsys, check_mode=check_mode, diff=True, **args)
        assert again["changed"] is False
        assert again["group"]["group_id"] == group["groupId"]
        assert again["diff"]["before"] == again["diff"]["after"]
    assert api.writes() == [("POST", "/groups")]


def test_found_across_pages(api, capsys):
    for number in range(5):
        api.add_group("other-%d" % number)
    group_id = api.add_group("krypton-pis")
    result = run(soracom_group, capsys, name="krypton-pis")
    assert result["changed"] is False
    assert result["group"]["group_id"] == group_id


def test_tags_updated_and_purged(api, capsys):
    group_id = api.add_group("krypton-pis", owner="old", site="osaka", stale="x")
    args = dict(name="krypton-pis", tags={"owner": "iot-team", "site": "osaka", "rack": 3}, purge_tags=True)

    check = run(soracom_group, capsys, check_mode=True, diff=True, **args)
    assert check["changed"] is True
    assert api.groups[group_id]["tags"]["owner"] == "old"
    assert check["diff"]["before"]["tags"]["stale"] == "x"
    assert check["diff"]["after"]["tags"] == {"name": "krypton-pis", "owner": "iot-team", "site": "osaka", "rack": "3"}

    result = run(soracom_group, capsys, **args)
    assert result["changed"] is True
    assert api.groups[group_id]["tags"] == {"name": "krypton-pis", "owner": "iot-team", "site": "osaka", "rack": "3"}
    assert result["group"]["tags"] == api.groups[group_id]["tags"]
    assert api.writes() == [("PUT", "/groups/%s/tags" % group_id), ("DELETE", "/groups/%s/tags/stale" % group_id)]

    again = run(soracom_group, capsys, **args)
    assert again["changed"] is False


def test_tags_kept_without_purge(api, capsys):
    group_id = api.add_group("krypton-pis", owner="old")
    result = run(soracom_group, capsys, name="krypton-pis", tags={"site": "osaka"})
    assert result["changed"] is True
    assert api.groups[group_id]["tags"] == {"name": "krypton-pis", "owner": "old", "site": "osaka"}


def test_tags_unset_leaves_them_alone(api, capsys):
    group_id = api.add_group("krypton-pis", owner="old")
    result = run(soracom_group, capsys, name="krypton-pis", purge_tags=True)
    assert result["changed"] is False
    assert api.groups[group_id]["tags"] == {"name": "krypton-pis", "owner": "old"}


def test_several_groups_fail_listing_ids(api, capsys):
    first = api.add_group("krypton-pis")
    second = api.add_group("krypton-pis")
    result = run(soracom_group, capsys, name="krypton-pis")
    assert result["failed"] is True
    assert "2 SIM groups are named 'krypton-pis'" in result["msg"]
    assert first in result["msg"]
    assert second in result["msg"]
    assert api.writes() == []


def test_name_tag_conflict_refused_before_any_call(api, capsys):
    result = run(soracom_group, capsys, name="krypton-pis", tags={"name": "other"})
    assert result["failed"] is True
    assert "tags contains name='other'" in result["msg"]
    assert api.calls == []


def test_absent(api, capsys):
    group_id = api.add_group("krypton-pis")
    check = run(soracom_group, capsys, check_mode=True, diff=True, name="krypton-pis", state="absent")
    assert check["changed"] is True
    assert group_id in api.groups
    assert check["diff"]["after"] == {}
    assert check["diff"]["before"]["name"] == "krypton-pis"

    result = run(soracom_group, capsys, name="krypton-pis", state="absent")
    assert result["changed"] is True
    assert api.groups == {}
    assert "group" not in result

    again = run(soracom_group, capsys, name="krypton-pis", state="absent")
    assert again["changed"] is False
    assert api.writes() == [("DELETE", "/groups/%s" % group_id)]


def test_create_server_error_hint(api, capsys, monkeypatch):
    original = api._route_groups

    def route(url, method, rest, query, body):
        if method == "POST":
            return api._error(url, 500, "SYS0001", "Internal error")
        return original(url, method, rest, query, body)

    monkeypatch.setattr(api, "_route_groups", route)
    result = run(soracom_group, capsys, name="krypton-pis")
    assert result["failed"] is True
    assert "POST /groups failed: HTTP 500 [SYS0001] Internal error." in result["msg"]
    assert "may have been created anyway" in result["msg"]
    assert [call[:2] for call in api.calls].count(("POST", "/groups")) == 1
