"""AWS IoT policy authorization at the lab broker, tried from a lab Pi with mosquitto clients.

The module creates its own thing, certificate and thing-scoped policy (the same statements as
the cloud role's default policy), copies the certificate, key and lab root CA to a temporary
directory on pi01, and removes all of it afterwards. It leaves the lab's other things,
certificates and policies alone, so it can run next to a provisioned lab. Run it through
`tests/lab/labctl exec`:

    tests/lab/labctl exec -- .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_iot_policy.py
"""
from __future__ import annotations

import base64
import json
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

import labapi

# The cloud role's default topic prefix (cloud_iot_topic_prefix).
TOPIC_PREFIX = "krypton"
THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"
# Upper bound for one mosquitto client run on the Pi, in seconds.
CLIENT_TIMEOUT = 20


def thing_scoped_policy(region: str) -> dict:
    """Return the statements of the cloud role's default policy (roles/cloud/vars/main.yml)."""
    arn_prefix = f"arn:aws:iot:{region}:*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn_prefix}:client/{THING_NAME_VARIABLE}"},
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": f"{arn_prefix}:topic/{TOPIC_PREFIX}/{THING_NAME_VARIABLE}/*",
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": f"{arn_prefix}:topicfilter/{TOPIC_PREFIX}/{THING_NAME_VARIABLE}/*",
            },
        ],
    }


@dataclass
class PiDevice:
    lab: dict
    pi: dict
    thing: str
    directory: str  # on the Pi

    @property
    def arn_prefix(self) -> str:
        return f"arn:aws:iot:{self.lab['region']}:{self.lab['aws']['account_id']}"

    def mosquitto(self, tool: str, client_id: str, *arguments: str) -> subprocess.CompletedProcess:
        """Run mosquitto_pub or mosquitto_sub on the Pi with this device's certificate, in debug mode."""
        return labapi.ssh(self.pi, self.mosquitto_command(tool, client_id, *arguments), timeout=CLIENT_TIMEOUT + 30)

    def mosquitto_command(self, tool: str, client_id: str, *arguments: str) -> str:
        command = [
            "timeout", str(CLIENT_TIMEOUT), tool, "-d",
            "-h", self.lab["iot"]["ats_host"], "-p", str(self.lab["iot"]["broker_port"]),
            "--cafile", f"{self.directory}/root-ca.pem",
            "--cert", f"{self.directory}/certificate.pem",
            "--key", f"{self.directory}/private.key",
            "-i", client_id, *arguments,
        ]
        return shlex.join(command)


def ssh_argv(lab: dict, pi: dict, command: str) -> list[str]:
    """Return the ssh command line that labapi.ssh runs, for a client that must run in the background."""
    return [
        "ssh", "-i", lab["ssh"]["private_key"], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"root@{pi['ip']}", command,
    ]


def write_pi_files(pi: dict, directory: str, files: dict[str, str]) -> None:
    """Create directory on the Pi (mode 0700) and write the files in it with mode 0600."""
    commands = [f"umask 077 && mkdir {shlex.quote(directory)}"]
    for name, text in files.items():
        encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
        commands.append(f"echo {encoded} | base64 -d > {shlex.quote(directory + '/' + name)}")
    result = labapi.ssh(pi, " && ".join(commands))
    assert result.returncode == 0, f"could not write the test files to {pi['name']}:{directory}: {result.stderr}"


def broker_log() -> str:
    return (labapi.STATE / "logs" / "broker.log").read_text(encoding="utf-8", errors="replace")


def wait_for_log(text: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in broker_log():
            return True
        time.sleep(0.2)
    return text in broker_log()


def topics_published_by(client_id: str) -> list[str]:
    messages = labapi.get_json(f"{labapi.BROKER_ADMIN}/_lab/messages?client_id={client_id}")
    return [message["topic"] for message in messages]


@pytest.fixture(scope="module")
def device(lab):
    """Create the thing, certificate and policy, copy the files to pi01, and remove all of it afterwards."""
    iot = boto3.client("iot")
    pi = lab["pis"][0]
    prefix = f"e2e-iot-policy-{uuid.uuid4().hex[:8]}"
    thing, policy_name, directory = f"{prefix}-thing", prefix, f"/tmp/{prefix}"
    cleanup: list[tuple[str, object]] = []
    # A Pi in a fresh lab has no MQTT clients yet; provision.yml installs them on real fleets.
    installed = labapi.ssh(
        pi, "command -v mosquitto_pub >/dev/null || (apt-get update -qq && apt-get install -y -qq mosquitto-clients)",
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    try:
        iot.create_thing(thingName=thing)
        cleanup.append((f"delete thing {thing}", lambda: iot.delete_thing(thingName=thing)))
        iot.create_policy(policyName=policy_name, policyDocument=json.dumps(thing_scoped_policy(lab["region"])))
        cleanup.append((f"delete policy {policy_name}", lambda: iot.delete_policy(policyName=policy_name)))

        certificate = iot.create_keys_and_certificate(setAsActive=True)
        certificate_id, certificate_arn = certificate["certificateId"], certificate["certificateArn"]

        def delete_certificate():
            iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
            iot.delete_certificate(certificateId=certificate_id)

        cleanup.append((f"delete certificate {certificate_id}", delete_certificate))
        iot.attach_policy(policyName=policy_name, target=certificate_arn)
        cleanup.append(("detach the policy", lambda: iot.detach_policy(policyName=policy_name, target=certificate_arn)))
        iot.attach_thing_principal(thingName=thing, principal=certificate_arn)
        cleanup.append(("detach the thing", lambda: iot.detach_thing_principal(thingName=thing, principal=certificate_arn)))

        cleanup.append((f"remove {pi['name']}:{directory}", lambda: labapi.ssh(pi, f"rm -rf {shlex.quote(directory)}")))
        write_pi_files(pi, directory, {
            "certificate.pem": certificate["certificatePem"],
            "private.key": certificate["keyPair"]["PrivateKey"],
            "root-ca.pem": Path(lab["pki"]["server-ca.crt"]).read_text(),
        })
        # The broker caches a certificate's policies and things for at most 1 s.
        time.sleep(1.1)
        yield PiDevice(lab, pi, thing, directory)
    finally:
        failures = []
        for description, step in reversed(cleanup):
            try:
                step()
            except (ClientError, OSError, subprocess.SubprocessError) as error:
                failures.append(f"{description}: {error}")
        assert not failures, "cleanup failed: " + "; ".join(failures)


def test_other_client_id_refused(device):
    other_id = f"{device.thing}-other"
    result = device.mosquitto("mosquitto_pub", other_id, "-q", "1", "-t", f"{TOPIC_PREFIX}/{device.thing}/e2e", "-m", "x")
    assert result.returncode != 0, result.stdout
    assert "received CONNACK" not in result.stdout, "a refused CONNECT must get no CONNACK"
    assert wait_for_log(f"denied client_id='{other_id}' action=iot:Connect resource={device.arn_prefix}:client/{other_id}:")
    assert f"no thing named '{other_id}' is attached to the certificate" in broker_log()
    assert topics_published_by(other_id) == []


def test_thing_name_publishes(device):
    topic = f"{TOPIC_PREFIX}/{device.thing}/e2e"
    result = device.mosquitto("mosquitto_pub", device.thing, "-q", "1", "-t", topic, "-m", "hello")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "received PUBACK" in result.stdout
    assert topic in topics_published_by(device.thing)


def test_publish_outside_prefix_closes(device):
    topic = f"elsewhere/{device.thing}/e2e"
    # QoS 1, so that mosquitto_pub waits for the PUBACK and detects the closed connection.
    result = device.mosquitto("mosquitto_pub", device.thing, "-q", "1", "-t", topic, "-m", "x")
    assert result.returncode != 0, result.stdout
    assert "received CONNACK (0)" in result.stdout
    assert "received PUBACK" not in result.stdout
    assert wait_for_log(f"denied client_id='{device.thing}' action=iot:Publish resource={device.arn_prefix}:topic/{topic}:")
    assert topic not in topics_published_by(device.thing)


def test_subscribe_outside_prefix_denied(device):
    topic_filter = f"elsewhere/{device.thing}/#"
    result = device.mosquitto("mosquitto_sub", device.thing, "-q", "1", "-t", topic_filter, "-C", "1", "-W", "5")
    assert "received SUBACK" in result.stdout, result.stdout + result.stderr
    assert "Subscribed (mid: 1): 128" in result.stdout
    assert "All subscription requests were denied" in result.stderr
    expected = f"denied client_id='{device.thing}' action=iot:Subscribe resource={device.arn_prefix}:topicfilter/{topic_filter}:"
    assert wait_for_log(expected)


def test_same_client_id_drops_first(device):
    topic_filter = f"{TOPIC_PREFIX}/{device.thing}/#"
    first = subprocess.Popen(
        ssh_argv(device.lab, device.pi, device.mosquitto_command("mosquitto_sub", device.thing, "-q", "1", "-t", topic_filter)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 10
        subscribed = False
        while time.monotonic() < deadline and first.poll() is None and not subscribed:
            connections = labapi.get_json(f"{labapi.BROKER_ADMIN}/_lab/connections")
            subscribed = any(c["client_id"] == device.thing and c["subscriptions"] for c in connections)
            time.sleep(0.2)
        assert subscribed, "mosquitto_sub did not connect and subscribe within 10 s"

        second = device.mosquitto("mosquitto_pub", device.thing, "-q", "1", "-t", f"{TOPIC_PREFIX}/{device.thing}/takeover", "-m", "x")
        assert second.returncode == 0, second.stdout + second.stderr

        stdout, stderr = first.communicate(timeout=10)
        assert first.returncode != 0, "mosquitto_sub kept running after another client took its client id"
        assert "The connection was lost" in stderr + stdout
        assert wait_for_log(f"disconnected client_id='{device.thing}'")
        assert "client id taken over by a new connection" in broker_log()
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=10)
