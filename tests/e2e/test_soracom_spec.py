"""The SORACOM API stand-in checks requests and responses against SORACOM's OpenAPI spec.

Run it after the other lab tests (the collection's integration targets and tests/e2e), so that
every SORACOM API request they sent has been validated. It needs the emulator started with
`--validate-spec PATH`; without it the tests are skipped.

Run inside the lab:
    tests/lab/labctl exec -- .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_soracom_spec.py
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

import labapi

# api.soracom.io resolves to the lab inside the lab's namespace, and the lab CA is trusted there.
API_URL = "https://api.soracom.io/v1"


@pytest.fixture(scope="module")
def report(lab) -> dict:
    report = labapi.get_json(labapi.SORACOM_ADMIN + "/_lab/spec_violations")
    if not report["enabled"]:
        pytest.skip("the SORACOM emulator runs without spec validation; start it with "
                    "--validate-spec PATH (SORACOM's soracom-api.en.yaml)")
    return report


def api_post(path: str, body: dict, headers: dict | None = None):
    request = urllib.request.Request(API_URL + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_no_spec_violations(report):
    summary = [f"{entry['method']} {entry['path']} {entry['status']} ({entry['operation']}): {entry['errors']}"
               for entry in report["violations"]]
    assert report["count"] == 0, "\n".join(summary)


def test_invalid_request_gets_400(lab, report):
    status, login = api_post("/auth", {"authKeyId": lab["soracom"]["auth_key_id"],
                                       "authKey": lab["soracom"]["auth_key"]})
    headers = {"X-Soracom-API-Key": login["apiKey"], "X-Soracom-Token": login["token"]}
    sim_id = lab["pis"][0]["sim_id"]
    with pytest.raises(urllib.error.HTTPError) as raised:
        api_post(f"/sims/{sim_id}/set_group", {"groupId": 5}, headers)
    body = json.loads(raised.value.read())
    assert status == 200
    assert raised.value.code == 400
    assert body == {
        "code": "LAB0110",
        "message": "The request does not match the SORACOM API specification (operation setSimGroup): "
                   "request body: groupId: 5 is not of type 'string'",
    }
