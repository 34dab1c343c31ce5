"""playbooks/rotate.yml on the lab: rotation, the expiry and delete options, and a failed check.

The module fixture resets the lab and provisions every Pi. Run inside the lab:
    tests/lab/labctl exec -- .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_rotate.py
"""
from __future__ import annotations

import json
import tempfile

import boto3
import botocore.exceptions
import pytest

import labapi
from test_faults import directory_digests, fold
from test_provision import fetch_pi_files, mosquitto_publish

KRYPTON_DIR = "/etc/soracom/krypton"
STAGING_DIR = "/etc/soracom/krypton.rotate"
# A device policy that denies every action, so a certificate that gets it cannot connect.
DENY_ALL_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iot:*", "Resource": "*"}]}


def held_certificate(pi: dict) -> str:
    """Return the certificate ID that the Pi's krypton.json names."""
    result = labapi.ssh(pi, f"cat {KRYPTON_DIR}/krypton.json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["certificate_id"]


def certificate_status(certificate_id: str) -> str:
    """Return the status of a certificate, or DELETED when the AWS stand-in no longer has it."""
    try:
        description = boto3.client("iot").describe_certificate(certificateId=certificate_id)
    except botocore.exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return "DELETED"
        raise
    return description["certificateDescription"]["status"]


def publishes(lab: dict, pi: dict) -> bool:
    """Publish from the controller with the Pi's working files and return whether the broker accepted it."""
    with tempfile.TemporaryDirectory() as directory:
        fetch_pi_files(pi, directory)
        return mosquitto_publish(lab, pi["thing_name"], directory) == 0


def assert_one_active_held(lab: dict) -> None:
    active = labapi.active_certificates_by_thing()
    for pi in lab["pis"]:
        assert active[pi["thing_name"]] == [held_certificate(pi)], active


@pytest.fixture(scope="module")
def provisioned(lab):
    labapi.reset_lab()
    result = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    return {pi["name"]: held_certificate(pi) for pi in lab["pis"]}


@pytest.fixture(scope="module")
def rotated(lab, provisioned):
    calls_before = labapi.krypton_calls()
    result = labapi.run_playbook("playbooks/rotate.yml", echo=False)
    return {"result": result, "before": provisioned, "calls": labapi.krypton_calls() - calls_before}


def test_rotation_succeeds(lab, rotated):
    result = rotated["result"]
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Roll-out finished: %d of %d Pis succeeded." % (len(lab["pis"]), len(lab["pis"])) in fold(result.stdout)
    assert rotated["calls"] == len(lab["pis"])


def test_new_certificate_held_and_publishes(lab, rotated):
    for pi in lab["pis"]:
        new = held_certificate(pi)
        assert new != rotated["before"][pi["name"]]
        assert certificate_status(new) == "ACTIVE"
        assert publishes(lab, pi), pi["name"]
        staging = labapi.ssh(pi, f"test -e {STAGING_DIR}")
        assert staging.returncode == 1, f"{STAGING_DIR} is left on {pi['name']}"


def test_old_certificate_inactive(lab, rotated):
    for pi in lab["pis"]:
        assert certificate_status(rotated["before"][pi["name"]]) == "INACTIVE"
    assert_one_active_held(lab)


def test_expiry_option_second_run_changes_nothing(lab, rotated):
    held = {pi["name"]: held_certificate(pi) for pi in lab["pis"]}
    calls_before = labapi.krypton_calls()
    # The lab's certificates are valid for 365 days, so none expires within 30.
    result = labapi.run_playbook("playbooks/rotate.yml", "-e", "device_rotate_expiring_within_days=30", echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    recap = labapi.parse_recap(result.stdout)
    for host, counters in recap.items():
        assert counters["changed"] == 0, f"{host} changed:\n{result.stdout[-4000:]}"
    assert labapi.krypton_calls() == calls_before
    assert {pi["name"]: held_certificate(pi) for pi in lab["pis"]} == held


def test_expiry_option_rotates_due_certificate(lab, rotated):
    pi = lab["pis"][0]
    before = held_certificate(pi)
    result = labapi.run_playbook("playbooks/rotate.yml", "--limit", pi["name"],
                                 "-e", "device_rotate_expiring_within_days=400", echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert held_certificate(pi) != before
    assert certificate_status(before) == "INACTIVE"


def test_check_mode_changes_nothing(lab, rotated):
    pi = lab["pis"][0]
    digests = directory_digests(pi)
    calls_before = labapi.krypton_calls()
    certificates_before = labapi.all_certificates()
    result = labapi.run_playbook("playbooks/rotate.yml", "--check", "--limit", pi["name"], echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert labapi.parse_recap(result.stdout)[pi["name"]]["changed"] == 1
    assert f"Check mode: {pi['name']} would get a new certificate" in fold(result.stdout)
    assert labapi.krypton_calls() == calls_before
    assert labapi.all_certificates() == certificates_before
    assert directory_digests(pi) == digests


def test_delete_option_deletes_old_certificate(lab, rotated):
    pi = lab["pis"][1]
    before = held_certificate(pi)
    result = labapi.run_playbook("playbooks/rotate.yml", "--limit", pi["name"],
                                 "-e", "cloud_rotate_retired_state=absent", echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert held_certificate(pi) != before
    assert certificate_status(before) == "DELETED"
    assert publishes(lab, pi)
    assert_one_active_held(lab)


@pytest.fixture
def deny_all_policy_for_new_certificates(lab):
    """Point the SIM group's Krypton configuration at a policy that denies everything, then restore it.

    The cloud role creates the policy and writes its name into the group's SoracomKrypton
    configuration, so certificates that Krypton creates from then on cannot connect, while
    the certificates the Pis hold keep their policy.
    """
    deny = {"cloud_iot_policy_name": "LabDenyAll", "cloud_iot_policy_document": DENY_ALL_POLICY}
    # The tags select the cloud role's steps, so no Pi is touched.
    cloud_only = ("--tags", "cloud_aws,cloud_soracom")
    result = labapi.run_playbook("playbooks/provision.yml", *cloud_only, "-e", json.dumps(deny), echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    try:
        yield
    finally:
        restored = labapi.run_playbook("playbooks/provision.yml", *cloud_only, echo=False)
        assert restored.returncode == 0, restored.stdout[-4000:]


def test_failed_check_keeps_old_files(lab, rotated, deny_all_policy_for_new_certificates):
    pi = lab["pis"][2]
    others = [other for other in lab["pis"] if other is not pi]
    before = held_certificate(pi)
    digests = directory_digests(pi)
    certificates_before = {c["certificateId"] for c in labapi.all_certificates()}

    result = labapi.run_playbook("playbooks/rotate.yml", "--limit", pi["name"], echo=False)
    output = fold(result.stdout)
    print(output[-3000:])

    assert result.returncode != 0
    recap = labapi.parse_recap(result.stdout)
    assert recap[pi["name"]]["failed"] == 1
    assert f"{pi['name']}: Publish over MQTTS with the new certificate: MQTT check failed" in output
    assert directory_digests(pi) == digests
    assert held_certificate(pi) == before
    assert publishes(lab, pi)
    staging = labapi.ssh(pi, f"test -e {STAGING_DIR}")
    assert staging.returncode == 1, f"{STAGING_DIR} is left on {pi['name']}"

    minted = {c["certificateId"] for c in labapi.all_certificates()} - certificates_before
    assert len(minted) == 1
    assert certificate_status(minted.pop()) == "INACTIVE"
    assert certificate_status(before) == "ACTIVE"
    active = labapi.active_certificates_by_thing()
    assert active[pi["thing_name"]] == [before]
    for other in others:
        assert len(active[other["thing_name"]]) == 1
