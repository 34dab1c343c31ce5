# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.soracom.krypton.plugins.modules import soracom_sim
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    api,
    lab_imsi,
    lab_sim_id,
    run,
    warning_texts,
)


@pytest.fixture
def fleet(api):
    """Five SIMs without a group and the target group."""
    for number in range(1, 6):
        api.add_sim(number)
    return api.add_group("krypton-pis")


def groups_of(api, *numbers):
    return [api.sims[lab_sim_id(number)]["groupId"] for number in numbers]


def test_present_cycle(api, capsys, fleet):
    args = dict(imsis=[lab_imsi(1), lab_imsi(2)], sim_ids=[lab_sim_id(5)], group_name="krypton-pis")

    check = run(soracom_sim, capsys, check_mode=True, diff=True, **args)
    assert check["changed"] is True
    assert groups_of(api, 1, 2, 5) == [None, None, None]
    assert [item["sim_id"] for item in check["sims"]] == [lab_sim_id(5), lab_sim_id(1), lab_sim_id(2)]
    assert check["diff"]["before"] == {lab_sim_id(5): None, lab_sim_id(1): None, lab_sim_id(2): None}
    assert check["diff"]["after"] == {lab_sim_id(5): fleet, lab_sim_id(1): fleet, lab_sim_id(2): fleet}

    result = run(soracom_sim, capsys, **args)
    assert result["changed"] is True
    assert groups_of(api, 1, 2, 3, 4, 5) == [fleet, fleet, None, None, fleet]
    assert result["sims"][1] == dict(sim_id=lab_sim_id(1), imsi=lab_imsi(1), group_id_before=None,
                                     group_id=fleet, changed=True)
    assert result["sims"][0]["imsi"] == lab_imsi(5)
    assert sorted(api.writes()) == sorted(("POST", "/sims/%s/set_group" % lab_sim_id(number)) for number in (1, 2, 5))

    for check_mode in (True, False):
        again = run(soracom_sim, capsys, check_mode=check_mode, diff=True, **args)
        assert again["changed"] is False
        assert all(item["changed"] is False for item in again["sims"])
        assert again["diff"]["before"] == again["diff"]["after"]
    assert len(api.writes()) == 3


def test_sims_listed_once(api, capsys, fleet):
    run(soracom_sim, capsys, imsis=[lab_imsi(1)], group_id=fleet)
    sim_list_calls = [call for call in api.calls if call[:2] == ("GET", "/sims")]
    # Five SIMs in pages of two are three requests of one paged read.
    assert len(sim_list_calls) == 3


def test_only_sims_needing_change_are_written(api, capsys, fleet):
    api.sims[lab_sim_id(1)]["groupId"] = fleet
    result = run(soracom_sim, capsys, imsis=[lab_imsi(1), lab_imsi(2)], group_id=fleet)
    assert result["changed"] is True
    assert [item["changed"] for item in result["sims"]] == [False, True]
    assert api.writes() == [("POST", "/sims/%s/set_group" % lab_sim_id(2))]


def test_same_sim_named_twice_once(api, capsys, fleet):
    result = run(soracom_sim, capsys, imsis=[lab_imsi(1), lab_imsi(1)], sim_ids=[lab_sim_id(1)], group_id=fleet)
    assert len(result["sims"]) == 1
    assert len(api.writes()) == 1


def test_moves_from_other_group(api, capsys, fleet):
    other = api.add_group("other")
    api.sims[lab_sim_id(3)]["groupId"] = other
    result = run(soracom_sim, capsys, sim_ids=[lab_sim_id(3)], group_name="krypton-pis")
    assert result["sims"][0]["group_id_before"] == other
    assert result["sims"][0]["group_id"] == fleet
    assert groups_of(api, 3) == [fleet]


def test_unknown_sims_fail_before_any_change(api, capsys, fleet):
    result = run(soracom_sim, capsys, imsis=[lab_imsi(1), lab_imsi(42)], sim_ids=[lab_sim_id(43)], group_id=fleet)
    assert result["failed"] is True
    assert result["msg"] == (
        "2 SIM(s) not found in this SORACOM account: SIM ID %s, IMSI %s. Nothing was changed."
        % (lab_sim_id(43), lab_imsi(42))
    )
    assert api.writes() == []


@pytest.mark.parametrize("args, message", [
    (dict(imsis=["44010300000001"]), "IMSIs must be exactly 15 digits: '44010300000001'"),
    (dict(imsis=["44010300000000a"]), "IMSIs must be exactly 15 digits"),
    (dict(sim_ids=["12345"]), "SIM IDs must be 18 to 20 digits: '12345'"),
    (dict(imsis=[], sim_ids=[]), "Give at least one SIM in imsis or sim_ids."),
])
def test_bad_input_refused_before_any_call(api, capsys, args, message):
    result = run(soracom_sim, capsys, group_id="g1", **args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert api.calls == []


def test_present_needs_group(api, capsys):
    result = run(soracom_sim, capsys, imsis=[lab_imsi(1)])
    assert result["failed"] is True
    assert "group_id, group_name" in result["msg"]
    assert api.calls == []


def test_missing_group_fails_before_change(api, capsys, fleet):
    result = run(soracom_sim, capsys, imsis=[lab_imsi(1)], group_name="nope")
    assert result["failed"] is True
    assert "The group named 'nope' does not exist." in result["msg"]
    assert api.writes() == []


def test_missing_group_check_mode_predicts_change(api, capsys, fleet):
    result = run(soracom_sim, capsys, check_mode=True, imsis=[lab_imsi(1)], group_name="nope")
    assert result["changed"] is True
    assert result["sims"][0]["changed"] is True
    assert any("does not exist yet" in text for text in warning_texts(result))


def test_absent_any_group(api, capsys, fleet):
    other = api.add_group("other")
    api.sims[lab_sim_id(1)]["groupId"] = fleet
    api.sims[lab_sim_id(2)]["groupId"] = other
    args = dict(imsis=[lab_imsi(1), lab_imsi(2), lab_imsi(3)], state="absent")

    check = run(soracom_sim, capsys, check_mode=True, diff=True, **args)
    assert check["changed"] is True
    assert check["diff"]["after"] == {lab_sim_id(1): None, lab_sim_id(2): None, lab_sim_id(3): None}
    assert groups_of(api, 1, 2) == [fleet, other]

    result = run(soracom_sim, capsys, **args)
    assert [item["changed"] for item in result["sims"]] == [True, True, False]
    assert groups_of(api, 1, 2, 3) == [None, None, None]

    again = run(soracom_sim, capsys, **args)
    assert again["changed"] is False


def test_absent_only_from_given_group(api, capsys, fleet):
    other = api.add_group("other")
    api.sims[lab_sim_id(1)]["groupId"] = fleet
    api.sims[lab_sim_id(2)]["groupId"] = other
    result = run(soracom_sim, capsys, imsis=[lab_imsi(1), lab_imsi(2)], group_name="krypton-pis", state="absent")
    assert [item["changed"] for item in result["sims"]] == [True, False]
    assert groups_of(api, 1, 2) == [None, other]
    assert api.writes() == [("POST", "/sims/%s/unset_group" % lab_sim_id(1))]


def test_absent_with_missing_group_changes_nothing(api, capsys, fleet):
    api.sims[lab_sim_id(1)]["groupId"] = fleet
    result = run(soracom_sim, capsys, imsis=[lab_imsi(1)], group_name="nope", state="absent")
    assert result["changed"] is False
    assert groups_of(api, 1) == [fleet]


def test_partial_failure_reports_done_sims(api, capsys, fleet, monkeypatch):
    original = api._route_sims

    def route(url, method, rest, query, body):
        if method == "POST" and rest[0] == lab_sim_id(3):
            return api._error(url, 400, "SIM0009", "SIM is being terminated")
        return original(url, method, rest, query, body)

    monkeypatch.setattr(api, "_route_sims", route)
    result = run(soracom_sim, capsys, sim_ids=[lab_sim_id(1), lab_sim_id(2), lab_sim_id(3), lab_sim_id(4)],
                 group_id=fleet)
    assert result["failed"] is True
    assert result["changed"] is True
    assert "set_group failed: HTTP 400 [SIM0009] SIM is being terminated." in result["msg"]
    assert "2 SIM(s) had already been changed" in result["msg"]
    assert [item["sim_id"] for item in result["sims"]] == [lab_sim_id(1), lab_sim_id(2)]
    assert groups_of(api, 1, 2, 3, 4) == [fleet, fleet, None, None]
    assert result["error"]["code"] == "SIM0009"
