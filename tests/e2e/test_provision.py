"""provision.yml on the lab: two runs, the state they leave, and bad input.

These tests run inside the lab (`make e2e`, which uses `labctl exec`).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time

import boto3
import pytest

import demo
import labapi


@pytest.fixture(scope="module")
def provisioned(lab):
    labapi.reset_lab()
    first = labapi.run_playbook("playbooks/provision.yml", echo=False)
    calls_after_first = labapi.krypton_calls()
    second = labapi.run_playbook("playbooks/provision.yml", echo=False)
    return {"first": first, "second": second, "calls_after_first": calls_after_first}


def test_first_run_provisions_every_pi(lab, provisioned):
    first = provisioned["first"]
    assert demo.check_first_run(lab, first) == [], first.stdout[-4000:]
    assert provisioned["calls_after_first"] == len(lab["pis"])


def test_second_run_changes_nothing(lab, provisioned):
    second = provisioned["second"]
    assert demo.check_second_run(lab, second, provisioned["calls_after_first"]) == [], second.stdout[-4000:]


def test_one_active_certificate_per_pi(lab, provisioned):
    assert demo.check_certificates(lab) == []


def test_pi_files_on_disk(lab, provisioned):
    for pi in lab["pis"]:
        result = labapi.ssh(pi, "stat -c '%a %U %n' /etc/soracom/krypton/*")
        assert result.returncode == 0, result.stderr
        modes = dict(reversed(line.split(" ", 2)[::2]) for line in result.stdout.splitlines())
        assert modes["/etc/soracom/krypton/private.key"] == "600"
        assert modes["/etc/soracom/krypton/certificate.pem"] == "644"


def fetch_pi_files(pi: dict, directory: str) -> None:
    for name in ("certificate.pem", "private.key", "root-ca.pem"):
        result = labapi.ssh(pi, f"cat /etc/soracom/krypton/{name}")
        assert result.returncode == 0, result.stderr
        path = os.path.join(directory, name)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(result.stdout)


def mosquitto_publish(lab: dict, thing: str, directory: str) -> int:
    command = [
        "mosquitto_pub", "-h", lab["iot"]["ats_host"], "-p", "8883",
        "--cafile", os.path.join(directory, "root-ca.pem"),
        "--cert", os.path.join(directory, "certificate.pem"),
        "--key", os.path.join(directory, "private.key"),
        "-i", thing, "-t", f"krypton/{thing}/e2e", "-m", "hello", "-q", "1",
    ]
    return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode


def test_publish_refused_once_inactive(lab, provisioned):
    pi = lab["pis"][0]
    thing = pi["thing_name"]
    iot = boto3.client("iot")
    certificate_id = labapi.active_certificates_by_thing()[thing][0]
    with tempfile.TemporaryDirectory() as directory:
        fetch_pi_files(pi, directory)
        assert mosquitto_publish(lab, thing, directory) == 0

        iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
        try:
            deadline = time.monotonic() + 2.5
            refused = False
            while time.monotonic() < deadline:
                if mosquitto_publish(lab, thing, directory) != 0:
                    refused = True
                    break
                time.sleep(0.2)
            assert refused, "the broker still accepted an INACTIVE certificate after 2.5 s"
        finally:
            iot.update_certificate(certificateId=certificate_id, newStatus="ACTIVE")


def lab_state_snapshot() -> tuple:
    full_state = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/state")
    # Sessions change with every /auth; what provisioning writes is below.
    state = {key: full_state[key] for key in ("groups", "credentials", "sims")}
    iot = boto3.client("iot")
    policies = sorted(policy["policyName"] for policy in iot.list_policies()["policies"])
    iam = boto3.client("iam")
    users = sorted(
        (user["UserName"], key["AccessKeyId"])
        for user in iam.list_users()["Users"]
        for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]
    )
    certificates = sorted(c["certificateId"] for c in iot.list_certificates()["certificates"])
    return state, policies, users, certificates


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"cloud_thing_name_pattern": "pi-without-imsi"}, "cloud_thing_name_pattern must contain $imsi"),
        ({"cloud_sim_imsis": ["44010300000001"]}, "not 15 digits: 44010300000001"),
        ({"cloud_aws_region": "ap-nowhere-9"}, "ap-nowhere-9"),
        ({"cloud_soracom_auth_key": "secret-wrong"}, "SORACOM authentication failed"),
    ],
    ids=["pattern-without-imsi", "short-imsi", "unknown-region", "wrong-auth-key"],
)
def test_bad_input_changes_nothing(lab, provisioned, extra_vars, message):
    import json

    before = lab_state_snapshot()
    result = labapi.run_playbook(
        "playbooks/provision.yml", "-e", json.dumps(extra_vars), echo=False
    )
    assert result.returncode != 0
    assert message in result.stdout
    assert "secret-wrong" not in result.stdout
    # The cloud play failed, so no Pi was touched.
    assert "PLAY [Bootstrap and verify every Pi]" not in result.stdout
    assert lab_state_snapshot() == before


def test_check_mode_on_new_names_changes_nothing(lab, provisioned):
    import json

    fresh = {
        "cloud_group_name": "check-mode-group",
        "cloud_iam_user_name": "check-mode-user",
        "cloud_credential_id": "check-mode-credentials",
        "cloud_iot_policy_name": "check-mode-policy",
    }
    before = lab_state_snapshot()
    calls_before = labapi.krypton_calls()
    result = labapi.run_playbook("playbooks/provision.yml", "--check", "--diff", "-e", json.dumps(fresh), echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    recap = labapi.parse_recap(result.stdout)
    # Policy, IAM user, credential set, group, Krypton configuration and SIMs.
    assert recap["localhost"]["changed"] == 6
    assert lab_state_snapshot() == before
    assert labapi.krypton_calls() == calls_before


def mint_orphan_certificate(pi: dict) -> tuple[list[str], str]:
    """Call Krypton from the Pi without storing the response, as a run cut off mid-bootstrap does.

    The Pi's thing must have exactly one ACTIVE certificate before. Return that certificate's id
    in a list, and the id of the new certificate, which is ACTIVE and held by no Pi.
    """
    thing = pi["thing_name"]
    held_before = labapi.active_certificates_by_thing()[thing]
    assert len(held_before) == 1, held_before
    body = '{"requestParameters": {"thingName": "%s"}}' % thing
    minted = labapi.ssh(
        pi,
        "curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "
        f"-d '{body}' https://krypton.soracom.io:8036/v1/provisioning/aws/iot/bootstrap",
    )
    assert minted.stdout == "200", minted.stdout + minted.stderr
    active = labapi.active_certificates_by_thing()[thing]
    assert len(active) == len(held_before) + 1
    orphan = next(certificate_id for certificate_id in active if certificate_id not in held_before)
    return held_before, orphan


def test_unused_certificate_left_alone_when_configured(lab, provisioned):
    """With cloud_deactivate_unused_certificates false, the run names the orphan and keeps it ACTIVE."""
    pi = lab["pis"][2]
    thing = pi["thing_name"]
    held_before, orphan = mint_orphan_certificate(pi)

    result = labapi.run_playbook("playbooks/provision.yml", "-e", "cloud_deactivate_unused_certificates=false",
                                 echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    output = " ".join(result.stdout.split())
    assert f"Thing {thing} has ACTIVE certificate {orphan}, which its Pi does not hold" in output
    assert "Deactivated certificate" not in output
    assert sorted(labapi.active_certificates_by_thing()[thing]) == sorted(held_before + [orphan])

    # Check mode reports what it would deactivate and leaves the certificate ACTIVE.
    check = labapi.run_playbook("playbooks/provision.yml", "--check", echo=False)
    assert check.returncode == 0, check.stdout[-4000:]
    output = " ".join(check.stdout.split())
    assert f"Would deactivate certificate {orphan} of thing {thing}" in output
    assert "Deactivated certificate" not in output
    assert orphan in labapi.active_certificates_by_thing()[thing]

    # The default run then deactivates it.
    result = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert f"Deactivated certificate {orphan} of thing {thing}" in " ".join(result.stdout.split())
    assert labapi.active_certificates_by_thing()[thing] == held_before


def test_inactive_held_certificate_names_the_fix(lab, provisioned):
    """A Pi whose certificate was set INACTIVE behind the tool's back gets a message with the fix."""
    pi = lab["pis"][0]
    thing = pi["thing_name"]
    held = labapi.active_certificates_by_thing()[thing]
    assert len(held) == 1
    iot = boto3.client("iot")
    iot.update_certificate(certificateId=held[0], newStatus="INACTIVE")

    result = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert result.returncode != 0, result.stdout[-4000:]
    output = " ".join(result.stdout.split())
    print("operator message:", output[output.find(f"The Pi of thing {thing}"):][:400])
    assert (f"The Pi of thing {thing} holds certificate {held[0]}, which is INACTIVE in AWS IoT, "
            "so AWS IoT refuses its MQTT connections.") in output
    assert "-e device_force_bootstrap=true and --limit localhost,HOST" in output
    assert labapi.parse_recap(result.stdout)[pi["name"]]["failed"] == 1

    fixed = labapi.run_playbook("playbooks/provision.yml", "--limit", f"localhost,{pi['name']}",
                                "-e", "device_force_bootstrap=true", echo=False)
    assert fixed.returncode == 0, fixed.stdout[-4000:]
    active = labapi.active_certificates_by_thing()[thing]
    assert len(active) == 1
    assert active != held
    status = iot.describe_certificate(certificateId=held[0])["certificateDescription"]["status"]
    assert status == "INACTIVE"

    again = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert again.returncode == 0, again.stdout[-4000:]
    assert f"The Pi of thing {thing} holds certificate" not in " ".join(again.stdout.split())
    recap = labapi.parse_recap(again.stdout)
    assert all(counters["changed"] == 0 for counters in recap.values()), again.stdout[-4000:]


def test_interrupted_bootstrap_certificate_deactivated(lab, provisioned):
    """A certificate Krypton minted but the Pi never stored is deactivated by the next run."""
    pi = lab["pis"][1]
    thing = pi["thing_name"]

    # What a run cut off mid-bootstrap leaves: Krypton created a certificate, the Pi kept its files.
    held_before, orphan = mint_orphan_certificate(pi)

    result = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert result.returncode == 0, result.stdout[-4000:]
    # The YAML callback wraps long messages, so compare with the white space folded.
    assert f"Deactivated certificate {orphan} of thing {thing}" in " ".join(result.stdout.split())
    assert labapi.active_certificates_by_thing()[thing] == held_before
    status = boto3.client("iot").describe_certificate(certificateId=orphan)["certificateDescription"]["status"]
    assert status == "INACTIVE"

    again = labapi.run_playbook("playbooks/provision.yml", echo=False)
    recap = labapi.parse_recap(again.stdout)
    assert all(counters["changed"] == 0 for counters in recap.values()), again.stdout[-4000:]


def test_topic_prefix_reaches_the_mqtt_check(lab):
    """A fleet with its own topic prefix: the device check publishes where the IoT policy allows."""
    labapi.reset_lab()
    try:
        result = labapi.run_playbook("playbooks/provision.yml", "-e", "cloud_iot_topic_prefix=fleet-a", echo=False)
        assert result.returncode == 0, result.stdout[-4000:]
        topics = {message["topic"] for message in labapi.broker_messages()}
        for pi in lab["pis"]:
            assert f"fleet-a/{pi['thing_name']}/check" in topics, topics
        assert not any(topic.startswith("krypton/") for topic in topics), topics
    finally:
        labapi.reset_lab()
