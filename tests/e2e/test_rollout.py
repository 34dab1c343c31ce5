"""Safe roll-out of provision.yml on the lab: serial batches, failed Pis and their summary.

With the first Pi's cellular link down but reachable over its loopback, and the second Pi's
link down with no way in, provision.yml runs in batches of 1, then 2, then the rest. Both
Pis fail, the first one in a batch of its own, and every other Pi is still provisioned. The
summary names each failed Pi with the failed step and its message, and the run exits
non-zero. After the links are up again, a second run provisions only those two Pis.

The test needs at least 3 Pis and works with any larger number. On CI's 3-Pi lab the batches are
1 and 2 Pis; on a 5-Pi lab they are 1, 2 and 2, and the first run provisions three Pis. Run inside the lab:
    tests/lab/labctl exec -- .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_rollout.py
"""
from __future__ import annotations

import json
import os
import tempfile

import pytest

import labapi
from test_faults import fold, inventory_over_loopback, labctl

# Batches of 1, then 2, then the rest, and a short wait for a Pi that does not respond.
ROLLOUT_VARS = {"krypton_rollout_serial": [1, 2, "100%"], "krypton_rollout_connect_timeout": 10}


def write_rollout_inventory(directory: str) -> list[str]:
    """Write the roll-out variables as an inventory source and return the -i option that adds it."""
    path = os.path.join(directory, "rollout.yml")
    with open(path, "w") as handle:
        json.dump({"all": {"vars": ROLLOUT_VARS}}, handle)
    return ["-i", path]


@pytest.fixture(scope="module")
def runs(lab):
    if len(lab["pis"]) < 3:
        pytest.skip(f"needs a lab with at least 3 Pis, this one has {len(lab['pis'])}")
    labapi.reset_lab()
    canary, unreachable = lab["pis"][0], lab["pis"][1]
    with tempfile.TemporaryDirectory() as directory:
        inventory = inventory_over_loopback(directory, canary) + write_rollout_inventory(directory)
        for pi in (canary, unreachable):
            down = labctl("link-down", str(pi["n"]))
            assert down.returncode == 0, down.stderr
        try:
            first = labapi.run_playbook(*inventory, "playbooks/provision.yml", echo=False)
        finally:
            for pi in (canary, unreachable):
                up = labctl("link-up", str(pi["n"]))
                assert up.returncode == 0, up.stderr
        calls_after_first = labapi.krypton_calls()
        second = labapi.run_playbook(*inventory, "playbooks/provision.yml", echo=False)
    return {"first": first, "second": second, "canary": canary, "unreachable": unreachable,
            "others": lab["pis"][2:], "new_calls": labapi.krypton_calls() - calls_after_first}


def test_first_run_exits_nonzero(runs):
    assert runs["first"].returncode != 0, runs["first"].stdout[-4000:]


def batch_count(pis: int) -> int:
    """Return how many batches krypton_rollout_serial [1, 2, "100%"] makes of ``pis`` Pis."""
    count, remaining = 0, pis
    for size in (1, 2):
        if remaining > 0:
            count += 1
            remaining -= size
    return count + (1 if remaining > 0 else 0)


def test_first_run_batches(lab, runs):
    output = runs["first"].stdout
    # One "Wait for the Pi" task header per batch: 2 batches on a 3-Pi lab, 3 on a larger one.
    expected = batch_count(len(lab["pis"]))
    assert output.count("TASK [Wait for the Pi to respond over SSH]") == expected, output[-4000:]


def test_other_pis_provisioned(runs):
    recap = labapi.parse_recap(runs["first"].stdout)
    published = {message["client_id"] for message in labapi.broker_messages()}
    active = labapi.active_certificates_by_thing()
    for pi in runs["others"]:
        assert recap[pi["name"]]["failed"] == 0, runs["first"].stdout[-4000:]
        assert pi["thing_name"] in published
        assert len(active[pi["thing_name"]]) == 1


def test_summary_names_link_reason(runs):
    output = fold(runs["first"].stdout)
    pi = runs["canary"]
    assert (f"{pi['name']}: Stop when the cellular link is not ready: Cellular link check failed on "
            f"{pi['name']} (interface ppp0): Interface ppp0 is down") in output
    assert labapi.parse_recap(runs["first"].stdout)[pi["name"]]["failed"] == 1


def test_summary_names_unreachable_pi(runs):
    output = fold(runs["first"].stdout)
    pi = runs["unreachable"]
    assert (f"{pi['name']}: Wait for the Pi to respond over SSH: timed out waiting for ping module test: "
            f"Data could not be sent to remote host \"{pi['ip']}\"") in output
    recap = labapi.parse_recap(runs["first"].stdout)
    assert recap[pi["name"]]["failed"] == 1
    assert recap[pi["name"]]["unreachable"] == 0


def test_summary_counts(runs):
    total = 2 + len(runs["others"])
    assert f"Roll-out finished: {total - 2} of {total} Pis succeeded." in fold(runs["first"].stdout)


def test_second_run_provisions_only_failed(runs):
    second = runs["second"]
    assert second.returncode == 0, second.stdout[-4000:]
    recap = labapi.parse_recap(second.stdout)
    for pi in (runs["canary"], runs["unreachable"]):
        assert recap[pi["name"]]["changed"] > 0, second.stdout[-4000:]
    for pi in runs["others"]:
        assert recap[pi["name"]]["changed"] == 0, second.stdout[-4000:]
    assert runs["new_calls"] == 2
    active = labapi.active_certificates_by_thing()
    for pi in [runs["canary"], runs["unreachable"], *runs["others"]]:
        assert len(active[pi["thing_name"]]) == 1


def test_max_fail_percentage_stops_rollout(lab, runs):
    """With no failure allowed, the failing first batch stops the roll-out before the next batches."""
    canary = runs["canary"]
    with tempfile.TemporaryDirectory() as directory:
        inventory = inventory_over_loopback(directory, canary) + write_rollout_inventory(directory)
        down = labctl("link-down", str(canary["n"]))
        assert down.returncode == 0, down.stderr
        try:
            result = labapi.run_playbook(*inventory, "playbooks/provision.yml",
                                         "-e", "krypton_rollout_max_fail_percentage=0", echo=False)
        finally:
            up = labctl("link-up", str(canary["n"]))
    assert up.returncode == 0, up.stderr
    output = fold(result.stdout)
    assert result.returncode != 0
    assert output.count("TASK [Wait for the Pi to respond over SSH]") == 1, output[-4000:]
    assert "The roll-out stopped after a batch in which 1 of 1 Pis failed" in output
    for pi in lab["pis"][1:]:
        assert f"{pi['name']}: not run: The roll-out stopped" in output
