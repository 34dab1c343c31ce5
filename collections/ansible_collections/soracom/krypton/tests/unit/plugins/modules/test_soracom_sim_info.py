# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.soracom.krypton.plugins.modules import soracom_sim_info
from ansible_collections.soracom.krypton.tests.unit.plugins.modules.soracom_fake_api import (  # pylint: disable=unused-import
    api,
    lab_imsi,
    lab_sim_id,
    run,
)


@pytest.fixture
def fleet(api):
    group_id = api.add_group("krypton-pis")
    api.add_sim(1, group_id=group_id, online=True)
    api.add_sim(2, group_id=group_id, tags={"name": "pi02", "site": "osaka"})
    api.add_sim(3, tags={"name": "pi03", "site": "osaka"})
    return group_id


def sim_ids_of(result):
    return [sim["sim_id"] for sim in result["sims"]]


def test_all_sims(api, capsys, fleet):
    result = run(soracom_sim_info, capsys)
    assert result["changed"] is False
    assert sim_ids_of(result) == [lab_sim_id(1), lab_sim_id(2), lab_sim_id(3)]
    first = result["sims"][0]
    assert first == dict(
        sim_id=lab_sim_id(1),
        iccid=lab_sim_id(1),
        imsi=lab_imsi(1),
        imsis=[lab_imsi(1)],
        group_id=fleet,
        status="active",
        tags={"name": "pi01"},
        speed_class="s1.standard",
        session_status=dict(online=True, ip_address="10.213.0.11"),
    )
    assert result["sims"][1]["session_status"] == dict(online=False, ip_address=None)


def test_check_mode_reads(api, capsys, fleet):
    result = run(soracom_sim_info, capsys, check_mode=True)
    assert len(result["sims"]) == 3
    assert api.writes() == []


@pytest.mark.parametrize("args, expected", [
    (dict(imsis=[lab_imsi(2), lab_imsi(9)]), [2]),
    (dict(sim_ids=[lab_sim_id(3)]), [3]),
    (dict(group_name="krypton-pis"), [1, 2]),
    (dict(tag_name="site", tag_value="osaka"), [2, 3]),
    (dict(group_name="krypton-pis", tag_name="site", tag_value="osaka"), [2]),
    (dict(group_name="nope"), []),
])
def test_filters(api, capsys, fleet, args, expected):
    result = run(soracom_sim_info, capsys, **args)
    assert sim_ids_of(result) == [lab_sim_id(number) for number in expected]


def test_group_id_filter(api, capsys, fleet):
    result = run(soracom_sim_info, capsys, group_id=fleet)
    assert sim_ids_of(result) == [lab_sim_id(1), lab_sim_id(2)]


def test_bad_imsi_refused_before_any_call(api, capsys):
    result = run(soracom_sim_info, capsys, imsis=["123"])
    assert result["failed"] is True
    assert "IMSIs must be exactly 15 digits: '123'" in result["msg"]
    assert api.calls == []


def test_tag_value_needs_tag_name(api, capsys):
    result = run(soracom_sim_info, capsys, tag_value="osaka")
    assert result["failed"] is True
    assert "tag_name" in result["msg"]
    assert api.calls == []
