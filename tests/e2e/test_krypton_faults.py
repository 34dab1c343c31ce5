"""krypton_bootstrap on a lab Pi when Krypton responds badly: no JSON, a cut-off body, 500s, a 429.

The module fixture runs playbooks/provision.yml once, so pi02's SIM is in a Krypton group and
pi02 has a valid certificate. Each test then injects a fault into the Krypton stand-in
through its admin API and runs the collection's module on pi02 with force=true.

The tests leave the lab as they found it: pi02's files are restored from a copy, and the
certificates that Krypton created during the tests are deleted from the AWS stand-in.

Run inside the lab:
    tests/lab/labctl exec -- .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_krypton_faults.py
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.request

import boto3
import pytest

import labapi

PI_NAME = "pi02"
KRYPTON_DIR = "/etc/soracom/krypton"
BOOTSTRAP_PATH = "/v1/provisioning/aws/iot/bootstrap"
# retries passed to krypton_bootstrap where a test runs out of retries: fewer than the module's
# default, whose waits add up to more than a minute.
MODULE_RETRIES = 3
# Text that would show that key or certificate material reached the output: PEM armour, or the
# base64 start of a DER SEQUENCE of 256 to 65535 bytes, as the lab's RSA keys and certificates are.
KEY_MATERIAL = re.compile(r"-----BEGIN|PRIVATE KEY|MII[A-Za-z0-9+/]{20}")
# "pi02 | FAILED! => {...}" from the default callback with JSON result format.
ADHOC_RESULT = re.compile(r"^(?P<host>\S+) \| (?P<state>[A-Z]+)!? => (?P<json>\{.*?^\})", re.M | re.S)


def admin_request(method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(labapi.SORACOM_ADMIN + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def ssh_with_input(pi: dict, command: str, data: bytes) -> subprocess.CompletedProcess:
    """Run a shell command on a lab Pi as root with ``data`` on its standard input."""
    lab = labapi.load_lab()
    return subprocess.run(
        ["ssh", "-i", lab["ssh"]["private_key"], "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
         f"root@{pi['ip']}", command],
        input=data, capture_output=True, timeout=60, check=False,
    )


def file_digests(pi: dict) -> str:
    result = labapi.ssh(pi, f"cd {KRYPTON_DIR} && sha256sum -- * | sort -k 2")
    assert result.returncode == 0, result.stderr
    return result.stdout


def krypton_log() -> list[dict]:
    return [entry for entry in labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/calls")["log"]
            if entry["service"] == "krypton" and entry["path"] == BOOTSTRAP_PATH]


def run_bootstrap(*arguments: str) -> dict:
    """Run soracom.krypton.krypton_bootstrap on pi02 with force=true and return its result."""
    command = [str(labapi.REPO / ".venv" / "bin" / "ansible"), PI_NAME, "-m", "soracom.krypton.krypton_bootstrap",
               "-a", " ".join(("force=true",) + arguments)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(labapi.REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    completed = subprocess.run(command, cwd=labapi.REPO, env=env, text=True, capture_output=True,
                               timeout=600, check=False)
    output = completed.stdout + completed.stderr
    match = ADHOC_RESULT.search(completed.stdout)
    assert match, f"no result for {PI_NAME} in the output:\n{output[-4000:]}"
    return {"returncode": completed.returncode, "state": match["state"], "result": json.loads(match["json"]),
            "output": output}


class FaultSession:
    """pi02's files and the AWS certificates as they were, and the faults the tests added."""

    def __init__(self, pi: dict) -> None:
        self.pi = pi
        self.fault_ids: list[int] = []
        archive = labapi.ssh(pi, f"tar -C {os.path.dirname(KRYPTON_DIR)} -cf - {os.path.basename(KRYPTON_DIR)} "
                                 "| base64 -w0")
        assert archive.returncode == 0, archive.stderr
        self.archive = base64.b64decode(archive.stdout)
        self.digests = file_digests(pi)
        self.certificates = {certificate["certificateId"] for certificate in labapi.all_certificates()}

    def add_fault(self, **spec) -> dict:
        spec = {"service": "krypton", "path": BOOTSTRAP_PATH, "method": "POST", **spec}
        fault = admin_request("POST", "/_lab/faults", spec)["faults"][0]
        self.fault_ids.append(fault["id"])
        return fault

    def restore(self) -> None:
        """Remove the faults still waiting, put pi02's files back and delete the new certificates."""
        waiting = {fault["id"] for fault in admin_request("GET", "/_lab/faults")["faults"]}
        for fault_id in self.fault_ids:
            if fault_id in waiting:
                admin_request("DELETE", f"/_lab/faults/{fault_id}")
        self.fault_ids.clear()

        parent, name = os.path.dirname(KRYPTON_DIR), os.path.basename(KRYPTON_DIR)
        result = ssh_with_input(self.pi, f"rm -rf {KRYPTON_DIR} && tar -C {parent} -xpf - {name}", self.archive)
        assert result.returncode == 0, result.stderr.decode(errors="replace")

        iot = boto3.client("iot")
        for certificate in labapi.all_certificates():
            if certificate["certificateId"] not in self.certificates:
                delete_certificate(iot, certificate["certificateArn"], certificate["certificateId"])


def delete_certificate(iot, arn: str, certificate_id: str) -> None:
    for policy in iot.list_attached_policies(target=arn)["policies"]:
        iot.detach_policy(policyName=policy["policyName"], target=arn)
    for thing in iot.list_principal_things(principal=arn)["things"]:
        iot.detach_thing_principal(thingName=thing, principal=arn)
    iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=certificate_id)


@pytest.fixture(scope="module")
def session(lab):
    provisioned = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert provisioned.returncode == 0, provisioned.stdout[-4000:]
    pi = next(pi for pi in lab["pis"] if pi["name"] == PI_NAME)
    fault_session = FaultSession(pi)
    yield fault_session
    fault_session.restore()


def assert_failed_without_change(session: FaultSession, run: dict) -> None:
    assert run["returncode"] != 0, run["output"][-4000:]
    assert run["state"] == "FAILED"
    assert file_digests(session.pi) == session.digests
    assert not KEY_MATERIAL.search(run["output"]), "key material in the ansible output"


def test_non_json_response_fails_cleanly(session):
    session.add_fault(type="html")
    run = run_bootstrap()
    message = run["result"]["msg"]
    assert_failed_without_change(session, run)
    assert "is not valid JSON" in message
    assert "content type text/html" in message
    assert "HTTP 200" in message


def test_cut_off_body_fails_cleanly(session):
    session.add_fault(type="truncate")
    run = run_bootstrap()
    message = run["result"]["msg"]
    assert_failed_without_change(session, run)
    assert "was cut off while reading it" in message
    assert "IncompleteRead" in message


@pytest.fixture(scope="module")
def run_500(session) -> dict:
    """Run the module once while Krypton returns 500 to more requests than the module retries."""
    calls_before = len(krypton_log())
    session.add_fault(type="status", status=500, count=MODULE_RETRIES + 1)
    run = run_bootstrap(f"retries={MODULE_RETRIES}")
    run["new_calls"] = krypton_log()[calls_before:]
    return run


def test_500_beyond_retries_fails_after_all_attempts(session, run_500):
    attempts = MODULE_RETRIES + 1
    result = run_500["result"]
    assert_failed_without_change(session, run_500)
    assert result["status"] == 500
    assert result["attempts"] == attempts
    assert result["code"] == "LAB0900"
    assert "Krypton returned HTTP 500" in result["msg"]
    assert [entry["status"] for entry in run_500["new_calls"]] == [500] * attempts
    assert run_500["output"].count("Retry ") == MODULE_RETRIES


# krypton_bootstrap ends its message with the attempt count, as the SORACOM API modules do.
def test_500_message_counts_attempts(run_500):
    attempts = MODULE_RETRIES + 1
    assert f"Gave up after {attempts} attempts" in run_500["result"]["msg"]


def test_429_once_then_success(session):
    calls_before = len(krypton_log())
    session.add_fault(type="ratelimit", seconds=1)
    run = run_bootstrap()
    result = run["result"]
    new_calls = krypton_log()[calls_before:]
    assert run["returncode"] == 0, run["output"][-4000:]
    assert result["changed"] is True
    assert result["bootstrapped"] is True
    assert [entry["status"] for entry in new_calls] == [429, 200]
    assert "HTTP 429" in run["output"]
    assert file_digests(session.pi) != session.digests
    assert not KEY_MATERIAL.search(run["output"]), "key material in the ansible output"


def test_provision_after_faults_changes_nothing(session):
    session.restore()
    second = labapi.run_playbook("playbooks/provision.yml", echo=False)
    recap = labapi.parse_recap(second.stdout)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap[PI_NAME]["changed"] == 0, second.stdout[-4000:]
    assert recap[PI_NAME]["failed"] == 0
    assert file_digests(session.pi) == session.digests
