"""Tests for the AWS call counts of tests/lab/aws/moto_lab_server.py, run on 127.0.0.1 without a lab."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

LAB_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(LAB_DIR))

from subprocesses import HOST, free_port, stop_process, wait_for_http  # noqa: E402  (needs LAB_DIR on sys.path)

MOTO_LAB_SERVER = LAB_DIR / "aws" / "moto_lab_server.py"
REGION = "ap-northeast-1"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("moto")
    log_path = directory / "moto.log"
    port = free_port()
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, str(MOTO_LAB_SERVER), "-H", HOST, "-p", str(port)],
                                   stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        wait_for_http(f"{url}/moto-api/", process, log_path, 30)
        yield url
    finally:
        stop_process(process)


def calls(endpoint: str, method: str = "GET"):
    request = urllib.request.Request(f"{endpoint}/moto-api/lab/calls", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def client(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="x", aws_secret_access_key="x")


def test_calls_split_reads_and_writes(endpoint):
    calls(endpoint, "DELETE")
    iot = client(endpoint, "iot")
    iot.create_policy(policyName="counted", policyDocument="{}")
    iot.get_policy(policyName="counted")
    iot.list_policies()
    client(endpoint, "iam").create_user(UserName="counted")

    counts = calls(endpoint)
    assert counts["writes"] == {"iot CreatePolicy": 1, "iam CreateUser": 1}
    assert counts["reads"] == {"iot GetPolicy": 1, "iot ListPolicies": 1}
    assert counts["write_total"] == 2
    assert counts["read_total"] == 2


def test_calls_cleared_by_delete(endpoint):
    client(endpoint, "iot").list_things()
    calls(endpoint, "DELETE")
    counts = calls(endpoint)
    assert counts["write_total"] == 0
    assert counts["read_total"] == 0


def test_failed_call_still_counted(endpoint):
    calls(endpoint, "DELETE")
    with pytest.raises(ClientError):
        client(endpoint, "iot").delete_policy(policyName="does-not-exist")
    assert calls(endpoint)["writes"] == {"iot DeletePolicy": 1}
