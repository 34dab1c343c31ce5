"""API calls of provision.yml and soracom_sim, counted by the lab's stand-ins.

The SORACOM emulator counts every request (`/_lab/calls` on its admin API) and moto_lab_server.py
counts every AWS call (`/moto-api/lab/calls`). These tests check that a re-run of provision.yml
calls neither Krypton nor any AWS write API and starts one SORACOM session. They also check
that soracom_sim handles 1,000 SIMs with one session, one paged read, and one set_group call
for each SIM that is not in the group yet.

These tests run inside the lab (`make e2e`, which uses `labctl exec`).
"""
from __future__ import annotations

import json
import math
import os
import secrets
import subprocess

import pytest

import labapi

MOTO_CALLS = "http://127.0.0.1:5000/moto-api/lab/calls"
SORACOM_CALLS = labapi.SORACOM_ADMIN + "/_lab/calls"
# Page size that soracom_sim requests (PAGE_SIZE in _soracom_api.py).
PAGE_SIZE = 100
FLEET_SIZE = 1000
# Each set_group call costs a request, so most SIMs start in the group to keep the test short.
ALREADY_IN_GROUP = 900
# A separate operator, so the 1,000 SIMs stay out of every other test's SIM lists.
FLEET_OPERATOR = "OP0099000998"
FLEET_IMSI_PREFIX = "44010398"


def clear_counts() -> None:
    labapi.get_json(SORACOM_CALLS, method="DELETE")
    labapi.get_json(MOTO_CALLS, method="DELETE")


def soracom_counts() -> dict[str, int]:
    return labapi.get_json(SORACOM_CALLS)["counts"].get("api", {})


def krypton_requests() -> int:
    counts = labapi.get_json(SORACOM_CALLS)["counts"].get("krypton", {})
    return sum(counts.values())


def aws_writes() -> dict[str, int]:
    return labapi.get_json(MOTO_CALLS)["writes"]


def set_group_calls(counts: dict[str, int]) -> int:
    return sum(count for request, count in counts.items()
               if request.startswith("POST /v1/sims/") and request.endswith("/set_group"))


@pytest.fixture(scope="module")
def provision_counts(lab):
    labapi.reset_lab()
    clear_counts()
    first = labapi.run_playbook("playbooks/provision.yml", echo=False)
    first_counts = {"soracom": soracom_counts(), "krypton": krypton_requests(), "aws_writes": aws_writes()}
    clear_counts()
    rerun = labapi.run_playbook("playbooks/provision.yml", echo=False)
    rerun_counts = {"soracom": soracom_counts(), "krypton": krypton_requests(), "aws_writes": aws_writes()}
    return {"first": first, "rerun": rerun, "first_counts": first_counts, "rerun_counts": rerun_counts}


def test_first_run_authenticates_once(provision_counts):
    assert provision_counts["first"].returncode == 0, provision_counts["first"].stdout[-4000:]
    assert provision_counts["first_counts"]["soracom"].get("POST /v1/auth") == 1


def test_rerun_calls_no_krypton(provision_counts):
    assert provision_counts["rerun"].returncode == 0, provision_counts["rerun"].stdout[-4000:]
    assert provision_counts["first_counts"]["krypton"] > 0
    assert provision_counts["rerun_counts"]["krypton"] == 0


def test_rerun_makes_no_aws_writes(provision_counts):
    assert provision_counts["first_counts"]["aws_writes"], "the first run made no AWS write call"
    assert provision_counts["rerun_counts"]["aws_writes"] == {}


def test_rerun_authenticates_once(provision_counts):
    # Only the cloud play of provision.yml calls the SORACOM API.
    assert provision_counts["rerun_counts"]["soracom"].get("POST /v1/auth") == 1


def test_rerun_writes_nothing_to_soracom(provision_counts):
    writes = {request: count for request, count in provision_counts["rerun_counts"]["soracom"].items()
              if not request.startswith("GET ") and request != "POST /v1/auth"}
    assert writes == {}


# ---------------------------------------------------------------------------- 1,000 SIMs


def admin_post(path: str, body) -> dict:
    import urllib.request

    request = urllib.request.Request(labapi.SORACOM_ADMIN + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def fleet_imsi(number: int) -> str:
    return f"{FLEET_IMSI_PREFIX}{number:07d}"


def run_soracom_sim(auth: dict, group_id: str) -> subprocess.CompletedProcess:
    """Run soracom_sim for the whole fleet with the fleet operator's auth key from the environment."""
    arguments = {"imsis": [fleet_imsi(number) for number in range(1, FLEET_SIZE + 1)], "group_id": group_id}
    env = dict(os.environ, SORACOM_AUTH_KEY_ID=auth["authKeyId"], SORACOM_AUTH_KEY=auth["authKey"],
               ANSIBLE_CONFIG=str(labapi.REPO / "ansible.cfg"), ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    return subprocess.run(
        [str(labapi.REPO / ".venv" / "bin" / "ansible"), "localhost", "-c", "local",
         "-m", "soracom.krypton.soracom_sim", "-a", json.dumps(arguments)],
        cwd=labapi.REPO, env=env, text=True, capture_output=True, timeout=600, check=False,
    )


def create_group(auth: dict) -> str:
    import urllib.request

    def call(method: str, path: str, body, headers=None):
        request = urllib.request.Request("https://api.soracom.io/v1" + path, data=json.dumps(body).encode(),
                                         method=method, headers={"Content-Type": "application/json", **(headers or {})})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    session = call("POST", "/auth", auth)
    group = call("POST", "/groups", {"tags": {"name": "fleet-of-1000"}},
                 {"X-Soracom-API-Key": session["apiKey"], "X-Soracom-Token": session["token"]})
    return group["groupId"]


@pytest.fixture(scope="module")
def fleet(lab):
    auth = {"authKeyId": "keyId-" + secrets.token_hex(16), "authKey": "secret-" + secrets.token_urlsafe(48)}
    admin_post("/_lab/auth_keys", {**auth, "operatorId": FLEET_OPERATOR})
    group_id = create_group(auth)
    specs = []
    for number in range(1, FLEET_SIZE + 1):
        spec = {"imsi": fleet_imsi(number), "sim_id": "8981" + fleet_imsi(number), "operator_id": FLEET_OPERATOR}
        # Every SIM starts outside any group, and the first ALREADY_IN_GROUP are then put in the group.
        spec["group_id"] = group_id if number <= ALREADY_IN_GROUP else None
        specs.append(spec)
    admin_post("/_lab/sims", specs)
    return {"auth": auth, "group_id": group_id}


def test_soracom_sim_thousand_sims_calls(fleet):
    clear_counts()
    result = run_soracom_sim(fleet["auth"], fleet["group_id"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = soracom_counts()
    assert counts.get("POST /v1/auth") == 1
    assert counts.get("GET /v1/sims") == math.ceil(FLEET_SIZE / PAGE_SIZE)
    assert set_group_calls(counts) == FLEET_SIZE - ALREADY_IN_GROUP

    clear_counts()
    again = run_soracom_sim(fleet["auth"], fleet["group_id"])
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    counts = soracom_counts()
    assert counts.get("POST /v1/auth") == 1
    assert counts.get("GET /v1/sims") == math.ceil(FLEET_SIZE / PAGE_SIZE)
    assert set_group_calls(counts) == 0
    # Ad-hoc output is "localhost | SUCCESS => {result as JSON}".
    result = json.loads(again.stdout.split("=>", 1)[1])
    assert result["changed"] is False
    assert len(result["sims"]) == FLEET_SIZE


def test_limit_moves_only_limited_sims(lab):
    """With --limit localhost,<pi>, the cloud play puts only that Pi's SIM into the group."""
    labapi.reset_lab()
    first_pi = lab["pis"][0]
    clear_counts()
    limited = labapi.run_playbook("playbooks/provision.yml", "--limit", f"localhost,{first_pi['name']}", echo=False)
    assert limited.returncode == 0, limited.stdout[-4000:]
    assert set_group_calls(soracom_counts()) == 1
    assert set(labapi.parse_recap(limited.stdout)) == {"localhost", first_pi["name"]}

    clear_counts()
    full = labapi.run_playbook("playbooks/provision.yml", echo=False)
    assert full.returncode == 0, full.stdout[-4000:]
    assert set_group_calls(soracom_counts()) == len(lab["pis"]) - 1
