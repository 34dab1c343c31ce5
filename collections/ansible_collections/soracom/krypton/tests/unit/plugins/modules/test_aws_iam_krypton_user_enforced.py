# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Check the policies of aws_iam_krypton_user against moto with IAM enforcement on.

moto enforces IAM only in server mode, so the tests start the lab's moto launcher
(tests/lab/aws/moto_lab_server.py, which also authorizes Krypton's IoT calls against
thing and certificate ARNs) on 127.0.0.1 with a free port. The module creates the user
with an administrator key, and the tests then make Krypton's bootstrap calls with the
user's key, in the order the lab's Krypton stand-in makes them.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.modules import aws_iam_krypton_user

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")
pytest.importorskip("flask")

from botocore.exceptions import ClientError  # noqa: E402  (after the importorskip of boto3)

HOST = "127.0.0.1"
REGION = "ap-northeast-1"
IOT_POLICY_NAME = "SoracomKryptonDevicePolicy"
THING_PREFIX = "krypton-"
STARTUP_TIMEOUT = 60.0
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def find_moto_lab_server():
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "tests" / "lab" / "aws" / "moto_lab_server.py"
        if candidate.is_file():
            return candidate
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_server(url, process, log_path):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("moto_lab_server.py exited with %s:\n%s" % (process.returncode, log_path.read_text()))
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError("%s did not answer within %d s:\n%s" % (url, STARTUP_TIMEOUT, log_path.read_text()))


class MotoServer:
    def __init__(self, endpoint, access_key, secret_key):
        self.endpoint = endpoint
        self.access_key = access_key
        self.secret_key = secret_key

    def client(self, service, access_key=None, secret_key=None):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )


PR_SET_PDEATHSIG = 1


def stop_with_parent():
    """Ask Linux to send SIGTERM to this child when its parent exits (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """Start the lab's moto launcher, create an administrator and the device IoT policy, then enforce IAM."""
    launcher = find_moto_lab_server()
    if launcher is None:
        pytest.skip("tests/lab/aws/moto_lab_server.py is not in a parent directory of this test")
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    port = free_port()
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    for name in ("MOTO_IOT_CA_CERT", "MOTO_IOT_CA_KEY"):
        env.pop(name, None)
    with open(log_path, "wb") as log_file:
        # ansible-test runs each test in a forked process that exits without fixture teardown,
        # so the kernel also sends the server SIGTERM when the process that started it ends.
        process = subprocess.Popen([sys.executable, str(launcher), "-H", HOST, "-p", str(port)],
                                   stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True, preexec_fn=stop_with_parent)
    endpoint = "http://%s:%d" % (HOST, port)
    try:
        wait_for_server(endpoint + "/moto-api/", process, log_path)
        bootstrap = MotoServer(endpoint, "bootstrap", "bootstrap")
        iam = bootstrap.client("iam")
        iam.create_user(UserName="test-admin")
        iam.put_user_policy(UserName="test-admin", PolicyName="all", PolicyDocument=json.dumps(ADMIN_POLICY))
        key = iam.create_access_key(UserName="test-admin")["AccessKey"]
        bootstrap.client("iot").create_policy(policyName=IOT_POLICY_NAME, policyDocument=json.dumps(ADMIN_POLICY))
        # From here on every request needs credentials that IAM allows.
        request = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=5).close()
        yield MotoServer(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def aws_env(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS", "AWS_PROFILE",
                 "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


def create_krypton_user(capsys, server, **args):
    """Run the module with the administrator key and return the IoT client of the new user's key."""
    args.update(name="krypton-%s" % uuid.uuid4().hex[:8], region=REGION, endpoint_url=server.endpoint,
                access_key=server.access_key, secret_key=server.secret_key)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            aws_iam_krypton_user.main()
    result = json.loads(capsys.readouterr().out)
    assert excinfo.value.code == 0, result
    key = result["access_key"]
    return server.client("iot", key["access_key_id"], key["secret_access_key"])


def http_status(error):
    return error.response["ResponseMetadata"]["HTTPStatusCode"]


def bootstrap_as_krypton(iot, thing_name):
    """Make Krypton's bootstrap calls in its order. Return the certificate ARN."""
    with pytest.raises(ClientError) as excinfo:
        iot.describe_thing(thingName=thing_name)
    # 404, not 403: the call was allowed and the thing does not exist yet.
    assert http_status(excinfo.value) == 404
    iot.create_thing(thingName=thing_name)
    assert iot.describe_thing(thingName=thing_name)["thingName"] == thing_name
    certificate_arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_policy(policyName=IOT_POLICY_NAME, target=certificate_arn)
    iot.attach_thing_principal(thingName=thing_name, principal=certificate_arn)
    return certificate_arn


def thing_name():
    return THING_PREFIX + str(440103000000000 + uuid.uuid4().int % 1000000)


def test_least_privilege_allows_bootstrap(capsys, moto_server, aws_env):
    iot = create_krypton_user(capsys, moto_server, thing_name_prefix=THING_PREFIX)
    name = thing_name()

    certificate_arn = bootstrap_as_krypton(iot, name)

    admin = moto_server.client("iot")
    assert admin.list_thing_principals(thingName=name)["principals"] == [certificate_arn]
    assert [policy["policyName"] for policy in admin.list_attached_policies(target=certificate_arn)["policies"]] == [
        IOT_POLICY_NAME]


def test_attach_principal_policy_allowed(capsys, moto_server, aws_env):
    iot = create_krypton_user(capsys, moto_server, thing_name_prefix=THING_PREFIX)
    certificate_arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]

    iot.attach_principal_policy(policyName=IOT_POLICY_NAME, principal=certificate_arn)

    policies = moto_server.client("iot").list_attached_policies(target=certificate_arn)["policies"]
    assert [policy["policyName"] for policy in policies] == [IOT_POLICY_NAME]


@pytest.mark.parametrize("call", [
    "list_things",
    "delete_thing",
    "update_certificate",
    "create_thing_outside_prefix",
    "attach_thing_outside_prefix",
    "list_policies",
])
def test_least_privilege_denies_other_calls(capsys, moto_server, aws_env, call):
    iot = create_krypton_user(capsys, moto_server, thing_name_prefix=THING_PREFIX)
    name = thing_name()
    certificate_arn = bootstrap_as_krypton(iot, name)
    admin = moto_server.client("iot")
    other_thing = "other-%s" % uuid.uuid4().hex[:8]
    admin.create_thing(thingName=other_thing)
    calls = {
        "list_things": iot.list_things,
        "delete_thing": lambda: iot.delete_thing(thingName=name),
        "update_certificate": lambda: iot.update_certificate(certificateId=certificate_arn.split("/")[-1],
                                                             newStatus="INACTIVE"),
        "create_thing_outside_prefix": lambda: iot.create_thing(thingName="x" + name),
        "attach_thing_outside_prefix": lambda: iot.attach_thing_principal(thingName=other_thing,
                                                                          principal=certificate_arn),
        "list_policies": iot.list_policies,
    }

    with pytest.raises(ClientError) as excinfo:
        calls[call]()

    assert http_status(excinfo.value) == 403
    assert admin.describe_thing(thingName=name)["thingName"] == name


def test_without_prefix_allows_any_thing_name(capsys, moto_server, aws_env):
    iot = create_krypton_user(capsys, moto_server)

    bootstrap_as_krypton(iot, "device-%s" % uuid.uuid4().hex[:8])


def test_hands_on_allows_bootstrap_and_more(capsys, moto_server, aws_env):
    iot = create_krypton_user(capsys, moto_server, policy_mode="hands_on")
    certificate_arn = bootstrap_as_krypton(iot, thing_name())

    # AWSIoTThingsRegistration also allows UpdateCertificate, which Krypton's bootstrap does not call.
    iot.update_certificate(certificateId=certificate_arn.split("/")[-1], newStatus="INACTIVE")
