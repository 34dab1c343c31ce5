"""deprovision.yml on the lab: two of three Pis deprovisioned, re-run, check mode, the guard
against deprovisioning every Pi, a Pi that cannot be reached, and retiring the resources the
fleet shares.

Run inside the lab, for example:

    tests/lab/labctl exec -- .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_deprovision.py

The tests share one provisioned lab and run in file order: the unreachable Pi comes after the
tests that expect it untouched, and retiring the shared resources needs every Pi deprovisioned.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time

import boto3
import pytest

import labapi

KRYPTON_DIR = "/etc/soracom/krypton"
OTHER_GROUP = "krypton-e2e-elsewhere"
FOREIGN_FILE = "operator-notes.txt"

# Puts one SIM into another group, as an operator who reused a SIM would.
MOVE_SIM_PLAYBOOK = """
- name: Move one SIM to another group
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/soracom.krypton.soracom:
      auth_key_id: "{{ cloud_soracom_auth_key_id }}"
      auth_key: "{{ cloud_soracom_auth_key }}"
      endpoint: "{{ cloud_soracom_endpoint }}"
  tasks:
    - name: Create the other group
      soracom.krypton.soracom_group:
        name: "%(group)s"
    - name: Put the SIM into it
      soracom.krypton.soracom_sim:
        imsis: ["%(imsi)s"]
        group_name: "%(group)s"
"""


# --- helpers ------------------------------------------------------------------------------------

def labctl(*arguments: str) -> subprocess.CompletedProcess:
    """Run tests/lab/labctl for the lab this test runs in (labctl exec sets KRYPTON_LAB_ID)."""
    return subprocess.run([str(labapi.REPO / "tests" / "lab" / "labctl"), *arguments], text=True,
                          capture_output=True, timeout=120, check=False)


def deprovision(*arguments: str) -> subprocess.CompletedProcess:
    return labapi.run_playbook("playbooks/deprovision.yml", *arguments, echo=False)


def folded(output: str) -> str:
    """Return the output with white space folded, because the YAML callback wraps long messages."""
    return " ".join(output.split())


def sim_groups() -> dict[str, str | None]:
    """Map each IMSI to its group ID, as the SORACOM emulator stores it."""
    state = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")
    return {sim["imsi"]: sim["group_id"] for sim in state["sims"]}


def group_id(name: str) -> str:
    state = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")
    (group,) = [group for group in state["groups"] if group["tags"].get("name") == name]
    return group["groupId"]


def iot_things() -> dict[str, list[str]]:
    """Map each AWS IoT thing to its principal ARNs."""
    iot = boto3.client("iot")
    return {
        thing["thingName"]: sorted(iot.list_thing_principals(thingName=thing["thingName"])["principals"])
        for thing in iot.list_things()["things"]
    }


def iot_certificates() -> dict[str, str]:
    """Map each AWS IoT certificate ID to its status."""
    return {certificate["certificateId"]: certificate["status"] for certificate in labapi.all_certificates()}


def pi_files(pi: dict) -> str:
    """List the files in the Pi's Krypton directory, hidden ones too, with their SHA-256, or return ''."""
    result = labapi.ssh(pi, f"test -d {KRYPTON_DIR} || exit 0; cd {KRYPTON_DIR} && find . -type f | sort | xargs -r sha256sum")
    assert result.returncode == 0, result.stderr
    return result.stdout


def snapshot(lab: dict) -> dict:
    return {
        "things": iot_things(),
        "certificates": iot_certificates(),
        "sims": sim_groups(),
        "files": {pi["name"]: pi_files(pi) for pi in lab["pis"]},
    }


def fleet_resources() -> dict[str, bool]:
    """Tell which of the resources the fleet shares exist, by their default names."""
    iot = boto3.client("iot")
    users = [user["UserName"] for user in boto3.client("iam").list_users()["Users"]]
    state = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")
    return {
        "policy": "SoracomKryptonDevicePolicy" in [policy["policyName"] for policy in iot.list_policies()["policies"]],
        "iam_user": "soracom-krypton" in users,
        "credential_set": "krypton-aws-iot" in json.dumps(state["credentials"]),
        "group": "krypton-pis" in [group["tags"].get("name") for group in state["groups"]],
    }


def publish_from_pi(lab: dict, pi: dict, text: str) -> int:
    """Publish one QoS 1 message from the Pi with its Krypton files and return mosquitto_pub's exit code."""
    thing = pi["thing_name"]
    command = (
        f"mosquitto_pub -h {lab['iot']['ats_host']} -p 8883 --cafile {KRYPTON_DIR}/root-ca.pem "
        f"--cert {KRYPTON_DIR}/certificate.pem --key {KRYPTON_DIR}/private.key "
        f"-i {thing} -t krypton/{thing}/e2e -m {text} -q 1"
    )
    return labapi.ssh(pi, command).returncode


# --- the shared runs ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(lab):
    labapi.reset_lab()
    provisioned = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert provisioned.returncode == 0, provisioned.stdout[-4000:]

    pi01, pi02, pi03 = lab["pis"][:3]
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as playbook:
        playbook.write(MOVE_SIM_PLAYBOOK % {"group": OTHER_GROUP, "imsi": pi02["imsi"]})
        playbook.flush()
        moved = labapi.run_playbook(playbook.name, echo=False)
    assert moved.returncode == 0, moved.stdout[-4000:]

    # A temporary file an interrupted bootstrap leaves, and a file the collection did not write.
    leftover = labapi.ssh(pi01, f"touch {KRYPTON_DIR}/.private.key.e2e1x2.tmp")
    assert leftover.returncode == 0, leftover.stderr
    foreign = labapi.ssh(pi02, f"echo keep > {KRYPTON_DIR}/{FOREIGN_FILE}")
    assert foreign.returncode == 0, foreign.stderr

    limit = f"{pi01['name']},{pi02['name']}"
    before = snapshot(lab)
    check = deprovision("--limit", limit, "--check", "--diff")
    after_check = snapshot(lab)
    labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/calls", method="DELETE")
    first = deprovision("--limit", limit)
    first_soracom_calls = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/calls")["counts"].get("api", {})
    after_first = snapshot(lab)
    second = deprovision("--limit", limit)
    yield {
        "pis": (pi01, pi02, pi03), "before": before, "check": check, "after_check": after_check,
        "first": first, "after_first": after_first, "second": second, "first_soracom_calls": first_soracom_calls,
    }
    # The other group and the deprovisioned Pis would surprise later tests.
    labapi.reset_lab()


def test_check_mode_changes_nothing(runs):
    check = runs["check"]
    assert check.returncode == 0, check.stdout[-4000:]
    assert runs["after_check"] == runs["before"]


def test_check_mode_shows_what_would_be_removed(runs):
    pi01, pi02, dummy = runs["pis"]
    output = folded(runs["check"].stdout)
    recap = labapi.parse_recap(runs["check"].stdout)
    assert recap[pi01["name"]]["changed"] > 0
    assert f"Would delete thing(s) {pi01['thing_name']}." in output
    assert f"Would take SIM {pi01['sim_id']} out of group krypton-pis." in output
    assert f"Would remove from the Pi: {KRYPTON_DIR}/certificate.pem" in output
    # --diff shows the thing before its deletion.
    assert f"-    thing_name: {pi02['thing_name']}" in runs["check"].stdout


def test_first_run_succeeds(runs):
    first = runs["first"]
    assert first.returncode == 0, first.stdout[-4000:]
    recap = labapi.parse_recap(first.stdout)
    assert set(recap) == {pi["name"] for pi in runs["pis"][:2]}


def test_one_soracom_session_for_all_pis(runs):
    """Both Pis' SIM reads and group changes share one SORACOM session."""
    calls = runs["first_soracom_calls"]
    assert calls.get("POST /v1/auth") == 1, calls
    # At least a SIM read for each of the two Pis besides the session.
    assert sum(calls.values()) >= 3, calls


def test_things_and_certificates_deleted(runs):
    before, after = runs["before"], runs["after_first"]
    for pi in runs["pis"][:2]:
        thing = pi["thing_name"]
        assert thing in before["things"]
        assert thing not in after["things"]
        for arn in before["things"][thing]:
            assert arn.rsplit("/", 1)[-1] not in after["certificates"]


def test_files_removed_from_pi(runs):
    pi01 = runs["pis"][0]
    assert "./.private.key.e2e1x2.tmp" in runs["before"]["files"][pi01["name"]]
    assert runs["after_first"]["files"][pi01["name"]] == ""
    result = labapi.ssh(pi01, f"test -e {KRYPTON_DIR}")
    assert result.returncode == 1, f"{KRYPTON_DIR} still exists on {pi01['name']}"


def test_foreign_file_and_directory_kept(runs):
    pi02 = runs["pis"][1]
    assert "./private.key" in runs["before"]["files"][pi02["name"]]
    remaining = runs["after_first"]["files"][pi02["name"]].split()
    assert remaining[1::2] == [f"./{FOREIGN_FILE}"]
    assert f"Kept files the collection did not write: {KRYPTON_DIR}/{FOREIGN_FILE}." in folded(runs["first"].stdout)


def test_sim_taken_out_of_group(runs):
    pi01 = runs["pis"][0]
    assert runs["before"]["sims"][pi01["imsi"]] == group_id("krypton-pis")
    assert runs["after_first"]["sims"][pi01["imsi"]] is None


def test_sim_in_other_group_left_alone(runs):
    pi02 = runs["pis"][1]
    assert runs["after_first"]["sims"][pi02["imsi"]] == group_id(OTHER_GROUP)


def test_third_pi_untouched(runs):
    pi03 = runs["pis"][2]
    before, after = runs["before"], runs["after_first"]
    assert after["things"][pi03["thing_name"]] == before["things"][pi03["thing_name"]]
    for arn in before["things"][pi03["thing_name"]]:
        assert after["certificates"][arn.rsplit("/", 1)[-1]] == "ACTIVE"
    assert after["files"][pi03["name"]] == before["files"][pi03["name"]]
    assert after["sims"][pi03["imsi"]] == group_id("krypton-pis")


def test_third_pi_still_publishes(lab, runs):
    pi03 = runs["pis"][2]
    text = f"after-deprovision-{int(time.time())}"
    assert publish_from_pi(lab, pi03, text) == 0
    received = [message for message in labapi.broker_messages() if message["client_id"] == pi03["thing_name"]]
    assert any(text in json.dumps(message) for message in received), received[-3:]


def test_fleet_resources_kept(runs):
    assert fleet_resources() == {"policy": True, "iam_user": True, "credential_set": True, "group": True}


def test_rerun_changes_nothing(runs):
    second = runs["second"]
    assert second.returncode == 0, second.stdout[-4000:]
    recap = labapi.parse_recap(second.stdout)
    assert set(recap) == {pi["name"] for pi in runs["pis"][:2]}
    for host, counters in recap.items():
        assert counters["changed"] == 0, f"{host}: {counters}"


# --- the guard against deprovisioning every Pi --------------------------------------------------

@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ([], "no --limit was given"),
        (["--limit", "pis"], "the limit pis chooses every Pi"),
        (["--limit", "pi01", "-e", "deprovision_fleet_resources=true"], "deprovision_fleet_resources=true deletes"),
    ],
    ids=["no-limit", "limit-every-pi", "fleet-resources-for-one-pi"],
)
def test_every_pi_needs_confirmation(lab, runs, arguments, reason):
    before = snapshot(lab)
    result = deprovision(*arguments)
    assert result.returncode != 0
    assert f"Stopped before any change: {reason}" in folded(result.stdout)
    assert "-e deprovision_all_pis=true" in folded(result.stdout)
    assert "soracom.krypton.cloud : Delete the Pi's things" not in result.stdout
    assert snapshot(lab) == before


# --- a Pi that cannot be reached -------------------------------------------------------------

# NOTE: `labctl pi-down` works here, but `labctl pi-up` fails inside `labctl exec` (systemd-nspawn
# cannot read the cgroup hierarchy under `ip netns exec`), so the Pi is cut off by its link instead.
def test_unreachable_pi_cleaned_in_cloud(lab, runs):
    pi03 = runs["pis"][2]
    files_before = pi_files(pi03)
    assert files_before != ""
    certificates = [arn.rsplit("/", 1)[-1] for arn in iot_things()[pi03["thing_name"]]]
    assert certificates

    down = labctl("link-down", str(pi03["n"]))
    assert down.returncode == 0, down.stderr
    try:
        result = deprovision("--limit", pi03["name"])
        again = deprovision("--limit", pi03["name"])
    finally:
        up = labctl("link-up", str(pi03["n"]))
    assert up.returncode == 0, up.stderr

    assert result.returncode == 0, result.stdout[-4000:]
    output = folded(result.stdout)
    assert "The Krypton files on the Pi were NOT removed, because it could not be reached" in output
    assert pi03["thing_name"] not in iot_things()
    for certificate_id in certificates:
        assert certificate_id not in iot_certificates()
    assert sim_groups()[pi03["imsi"]] is None

    assert again.returncode == 0, again.stdout[-4000:]
    assert labapi.parse_recap(again.stdout)[pi03["name"]]["changed"] == 0

    # The report was true: the files are still on the Pi, and the broker rejects them.
    assert pi_files(pi03) == files_before
    assert publish_from_pi(lab, pi03, "after-deprovision-while-unreachable") != 0

    back = deprovision("--limit", pi03["name"])
    assert back.returncode == 0, back.stdout[-4000:]
    assert pi_files(pi03) == ""


# --- retiring the resources the fleet shares ------------------------------------------------------

RETIRE = ("-e", "deprovision_all_pis=true", "-e", "deprovision_fleet_resources=true")


def test_fleet_retirement_stops_while_thing_left(runs):
    iot = boto3.client("iot")
    iot.create_thing(thingName="krypton-e2e-left-behind")
    try:
        before = fleet_resources()
        result = deprovision(*RETIRE)
    finally:
        iot.delete_thing(thingName="krypton-e2e-left-behind")
    assert result.returncode != 0
    output = folded(result.stdout)
    assert "Nothing was deleted, because the fleet still uses the shared resources." in output
    assert "Things named krypton-*: krypton-e2e-left-behind." in output
    assert before == {"policy": True, "iam_user": True, "credential_set": True, "group": True}
    assert fleet_resources() == before


def test_fleet_retirement_deletes_shared_resources(runs):
    result = deprovision(*RETIRE)
    assert result.returncode == 0, result.stdout[-4000:]
    assert fleet_resources() == {"policy": False, "iam_user": False, "credential_set": False, "group": False}

    again = deprovision(*RETIRE)
    assert again.returncode == 0, again.stdout[-4000:]
    for host, counters in labapi.parse_recap(again.stdout).items():
        assert counters["changed"] == 0, f"{host}: {counters}"
