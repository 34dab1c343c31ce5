# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for the lab's AWS IoT Core stand-in broker, run against tests/lab/aws/moto_lab_server.py on 127.0.0.1.

Certificates get the policy ALLOW_ALL unless a test attaches other policies, because the broker
authorizes every action with the AWS IoT policies attached to the client certificate.

Run: .venv/bin/pytest tests/lab/broker
Needs the mosquitto_pub command (Debian package mosquitto-clients) for the stock-client test.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BROKER_DIR = Path(__file__).resolve().parent
REPOSITORY_ROOT = BROKER_DIR.parents[2]
MOTO_LAB_SERVER = REPOSITORY_ROOT / "tests" / "lab" / "aws" / "moto_lab_server.py"
sys.path.insert(0, str(BROKER_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mqtt_codec  # noqa: E402  (needs BROKER_DIR on sys.path)
import subprocesses  # noqa: E402  (tests/lab is on sys.path)
from subprocesses import free_port, stop_process  # noqa: E402

REGION = "ap-northeast-1"
HOST = "127.0.0.1"
# moto's default account.
ARN_PREFIX = f"arn:aws:iot:{REGION}:123456789012"
THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
# The broker re-checks open connections this often, so tests of deactivation stay short.
RECHECK_INTERVAL = 1.0
STARTUP_TIMEOUT = 20.0

# ---------------------------------------------------------------------------------------------
# Helpers


def wait_for_http(url: str, process: subprocess.Popen, log_path: Path) -> None:
    subprocesses.wait_for_http(url, process, log_path, STARTUP_TIMEOUT)


def http_json(method: str, url: str):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_until(condition, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


def name(subject: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])


def make_ca(common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def issue_certificate(ca_certificate, ca_key, common_name: str, sans: list[x509.GeneralName], usage):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def write_pem(path: Path, certificate=None, key=None) -> Path:
    if certificate is not None:
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    path.chmod(0o600)
    return path


class DeviceCredentials:
    def __init__(self, certificate_id: str, cert_path: Path, key_path: Path, certificate_arn: str | None = None) -> None:
        self.certificate_id = certificate_id
        self.cert_path = cert_path
        self.key_path = key_path
        self.certificate_arn = certificate_arn


class MqttClient:
    """paho-mqtt client that records CONNACK, disconnects and messages, without reconnecting."""

    def __init__(self, broker, credentials: DeviceCredentials, client_id: str, keepalive: int = 30) -> None:
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subscribed = threading.Event()
        self.connack_reason = None
        self.messages: list[mqtt.MQTTMessage] = []
        self.message_received = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        self.client.tls_set(
            ca_certs=str(broker.server_ca_path),
            certfile=str(credentials.cert_path),
            keyfile=str(credentials.key_path),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(HOST, broker.port, keepalive=keepalive)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack_reason = reason_code
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnected.set()

    def _on_message(self, client, userdata, message) -> None:
        self.messages.append(message)
        self.message_received.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self.subscribed.set()

    def wait_connack(self, timeout: float = 5.0) -> bool:
        """Return True on CONNACK Success and False when the connection ends without one."""
        wait_until(lambda: self.connected.is_set() or self.disconnected.is_set(), timeout)
        return self.connected.is_set() and not self.connack_reason.is_failure

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class RawMqttConnection:
    """TLS socket that sends raw MQTT bytes, for packets that paho-mqtt does not send."""

    def __init__(self, broker, credentials: DeviceCredentials) -> None:
        context = ssl.create_default_context(cafile=str(broker.server_ca_path))
        context.load_cert_chain(str(credentials.cert_path), str(credentials.key_path))
        raw = socket.create_connection((HOST, broker.port), timeout=5)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def connect(self, client_id: str, keepalive: int = 30, protocol_level: int = 4) -> bytes:
        self.send(connect_packet(client_id, keepalive, protocol_level))
        return self.read_packet()

    def read_packet(self) -> bytes:
        """Return one packet, or b"" when the broker closed the connection."""
        header = self._read_exactly(2)
        if len(header) < 2:
            return b""
        # Remaining lengths in these tests fit in one byte.
        return header + self._read_exactly(header[1])

    def read_publish_packet_ids(self, quiet_seconds: float) -> list[int]:
        """Read QoS 1 PUBLISH packets until none arrives for quiet_seconds; return their packet ids."""
        packet_ids = []
        self.sock.settimeout(quiet_seconds)
        try:
            for _ in range(1000):
                packet = self.read_packet()
                if not packet:
                    break
                assert packet[0] == 0x32, f"expected a QoS 1 PUBLISH, got {packet!r}"
                topic_length = struct.unpack("!H", packet[2:4])[0]
                packet_ids.append(struct.unpack("!H", packet[4 + topic_length:6 + topic_length])[0])
        except (TimeoutError, socket.timeout):
            pass
        finally:
            self.sock.settimeout(5)
        return packet_ids

    def wait_closed(self, timeout: float) -> float | None:
        """Return the seconds until the broker closed the connection, or None if it stayed open."""
        started = time.monotonic()
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(1024):
                pass
        except (TimeoutError, socket.timeout):
            return None
        except (ConnectionResetError, ssl.SSLError):
            pass
        return time.monotonic() - started

    def close(self) -> None:
        self.sock.close()

    def _read_exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            try:
                chunk = self.sock.recv(count - len(data))
            except (ConnectionResetError, ssl.SSLError):
                return data
            if not chunk:
                return data
            data += chunk
        return data


def connect_packet(client_id: str, keepalive: int = 30, protocol_level: int = 4) -> bytes:
    body = mqtt_codec.encode_string("MQTT") + bytes([protocol_level, 0x02]) + struct.pack("!H", keepalive)
    body += mqtt_codec.encode_string(client_id)
    return mqtt_codec.encode_packet(mqtt_codec.PacketType.CONNECT, 0, body)


# ---------------------------------------------------------------------------------------------
# Fixtures


class Pki:
    def __init__(self, directory: Path) -> None:
        server_ca, server_ca_key = make_ca("Broker Test Server CA")
        broker_certificate, broker_key = issue_certificate(
            server_ca, server_ca_key, "broker",
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST)),
             x509.DNSName(f"*.iot.{REGION}.amazonaws.com")],
            ExtendedKeyUsageOID.SERVER_AUTH,
        )
        self.device_ca, self.device_ca_key = make_ca("Broker Test Device CA")
        self.server_ca_path = write_pem(directory / "server-ca.crt", certificate=server_ca)
        self.broker_cert_path = write_pem(directory / "broker.crt", certificate=broker_certificate)
        self.broker_key_path = write_pem(directory / "broker.key", key=broker_key)
        self.device_ca_path = write_pem(directory / "device-ca.crt", certificate=self.device_ca)
        self.device_ca_key_path = write_pem(directory / "device-ca.key", key=self.device_ca_key)
        self.directory = directory


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


class AwsStandIn:
    def __init__(self, endpoint: str, access_key: str, secret_key: str) -> None:
        self.endpoint = endpoint
        self.access_key = access_key
        self.secret_key = secret_key
        self.iot = boto3.client(
            "iot", endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        )


@pytest.fixture(scope="module")
def aws(pki, tmp_path_factory):
    """Start the lab's moto launcher with the test device CA, then turn IAM enforcement on as labctl does."""
    directory = tmp_path_factory.mktemp("moto")
    port = free_port()
    env = dict(os.environ, MOTO_IOT_CA_CERT=str(pki.device_ca_path), MOTO_IOT_CA_KEY=str(pki.device_ca_key_path))
    log_path = directory / "moto.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(MOTO_LAB_SERVER), "-H", HOST, "-p", str(port)],
            stdout=log_file, stderr=subprocess.STDOUT, env=env,
        )
    endpoint = f"http://{HOST}:{port}"
    try:
        wait_for_http(f"{endpoint}/moto-api/", process, log_path)
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="broker-test-admin")
        iam.put_user_policy(
            UserName="broker-test-admin", PolicyName="all",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        )
        key = iam.create_access_key(UserName="broker-test-admin")["AccessKey"]
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=5).close()
        yield AwsStandIn(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        stop_process(process)


class BrokerProcess:
    def __init__(
        self, pki: Pki, aws: AwsStandIn, directory: Path, secret_key: str | None = None, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.admin_port = free_port()
        self.admin_url = f"http://{HOST}:{self.admin_port}"
        self.server_ca_path = pki.server_ca_path
        self.log_path = directory / "broker.log"
        self.stderr_path = directory / "broker.stderr"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=aws.access_key, AWS_SECRET_ACCESS_KEY=secret_key or aws.secret_key)
        env.pop("AWS_SESSION_TOKEN", None)
        with open(self.stderr_path, "wb") as stderr_file:
            self.process = subprocess.Popen(
                [
                    sys.executable, str(BROKER_DIR / "broker.py"),
                    "--listen", f"{HOST}:{self.port}",
                    "--cert", str(pki.broker_cert_path),
                    "--key", str(pki.broker_key_path),
                    "--client-ca", str(pki.device_ca_path),
                    "--aws-endpoint", aws.endpoint,
                    "--region", REGION,
                    "--admin", f"{HOST}:{self.admin_port}",
                    "--log", str(self.log_path),
                    "--recheck-interval", str(RECHECK_INTERVAL),
                    *extra_args,
                ],
                stdout=subprocess.DEVNULL, stderr=stderr_file, env=env,
            )
        wait_for_http(f"{self.admin_url}/_lab/connections", self.process, self.stderr_path)

    def log(self) -> str:
        return self.log_path.read_text()

    def connections(self) -> list[dict]:
        return http_json("GET", f"{self.admin_url}/_lab/connections")

    def messages(self, **filters) -> list[dict]:
        query = "&".join(f"{key}={value}" for key, value in filters.items())
        return http_json("GET", f"{self.admin_url}/_lab/messages?{query}")


@pytest.fixture(scope="module")
def broker(pki, aws, tmp_path_factory):
    process = BrokerProcess(pki, aws, tmp_path_factory.mktemp("broker"))
    yield process
    stop_process(process.process)
    assert process.process.returncode == 0, process.stderr_path.read_text()
    assert "stopped" in process.log()


@pytest.fixture(scope="module")
def allow_all_policy(aws) -> str:
    aws.iot.create_policy(policyName="broker-test-allow-all", policyDocument=json.dumps(ALLOW_ALL))
    return "broker-test-allow-all"


@pytest.fixture
def make_policy(aws):
    """Create an AWS IoT policy with a unique name and return the name."""

    def create(document: dict) -> str:
        policy_name = unique_id("policy")
        aws.iot.create_policy(policyName=policy_name, policyDocument=json.dumps(document))
        return policy_name

    return create


@pytest.fixture
def make_device(aws, tmp_path, allow_all_policy):
    """Create a certificate in the AWS stand-in, attach policies and a thing to it, and write its files.

    The certificate is ACTIVE unless active is False, and gets the ALLOW_ALL policy unless
    policies names others. With thing set, a thing of that name is created and attached.
    """

    def create(active: bool = True, policies: tuple[str, ...] | None = None, thing: str | None = None) -> DeviceCredentials:
        response = aws.iot.create_keys_and_certificate(setAsActive=active)
        certificate_id = response["certificateId"]
        certificate_arn = response["certificateArn"]
        for policy_name in (allow_all_policy,) if policies is None else policies:
            aws.iot.attach_policy(policyName=policy_name, target=certificate_arn)
        if thing is not None:
            aws.iot.create_thing(thingName=thing)
            aws.iot.attach_thing_principal(thingName=thing, principal=certificate_arn)
        cert_path = tmp_path / f"{certificate_id}.crt"
        cert_path.write_text(response["certificatePem"])
        key_path = tmp_path / f"{certificate_id}.key"
        key_path.write_text(response["keyPair"]["PrivateKey"])
        key_path.chmod(0o600)
        return DeviceCredentials(certificate_id, cert_path, key_path, certificate_arn)

    return create


@pytest.fixture
def clients():
    """Collect MqttClient objects and stop their network threads after the test."""
    created: list[MqttClient] = []

    def connect(*args, **kwargs) -> MqttClient:
        client = MqttClient(*args, **kwargs)
        created.append(client)
        return client

    yield connect
    for client in created:
        client.close()


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------
# Topic rules (no network)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b/c", "a/b/c", True),
        ("a/b/c", "a/b", False),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/+", "a/b/c", False),
        ("+/+", "/finance", True),
        ("+", "/finance", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("#", "a/b", True),
        ("#", "$aws/things/x/shadow/update", False),
        ("+/things/x", "$aws/things/x", False),
        ("$aws/things/+/shadow/#", "$aws/things/pi01/shadow/update", True),
    ],
)
def test_topic_matches(topic_filter, topic, expected):
    assert mqtt_codec.topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize("topic_filter", ["", "a/#/b", "a#", "a/b+", "+a"])
def test_invalid_topic_filter_rejected(topic_filter):
    with pytest.raises(mqtt_codec.ProtocolError):
        mqtt_codec.validate_topic_filter(topic_filter)


# ---------------------------------------------------------------------------------------------
# Broker against moto


def test_active_certificate_publish_delivered(broker, make_device, clients):
    subscriber_device, publisher_device = make_device(), make_device()
    subscriber_id, publisher_id = unique_id("sub"), unique_id("pub")
    subscriber = clients(broker, subscriber_device, subscriber_id)
    assert subscriber.wait_connack()
    subscriber.client.subscribe("lab/+/hello", qos=1)
    assert subscriber.subscribed.wait(5)

    publisher = clients(broker, publisher_device, publisher_id)
    assert publisher.wait_connack()
    info = publisher.client.publish(f"lab/{publisher_id}/hello", b'{"ok":true}', qos=1)
    info.wait_for_publish(timeout=5)
    assert info.is_published(), "no PUBACK"

    assert subscriber.message_received.wait(5)
    assert subscriber.messages[0].topic == f"lab/{publisher_id}/hello"
    assert subscriber.messages[0].payload == b'{"ok":true}'
    assert subscriber.messages[0].qos == 1

    recorded = broker.messages(client_id=publisher_id)
    assert [(m["topic"], m["payload"], m["payload_encoding"], m["qos"]) for m in recorded] == [
        (f"lab/{publisher_id}/hello", '{"ok":true}', "utf-8", 1)
    ]
    connections = {c["client_id"]: c for c in broker.connections()}
    assert connections[publisher_id]["certificate_id"] == publisher_device.certificate_id
    assert connections[publisher_id]["peer_address"] == HOST
    assert connections[subscriber_id]["subscriptions"] == [{"topic_filter": "lab/+/hello", "qos": 1}]
    assert f"connected client_id='{publisher_id}' certificate_id={publisher_device.certificate_id}" in broker.log()


def test_qos0_binary_payload_recorded_as_base64(broker, make_device, clients):
    client_id = unique_id("bin")
    client = clients(broker, make_device(), client_id)
    assert client.wait_connack()
    client.client.subscribe("lab/binary", qos=0)
    assert client.subscribed.wait(5)
    client.client.publish("lab/binary", b"\xff\x00\xfe", qos=0)
    assert client.message_received.wait(5)
    assert client.messages[0].payload == b"\xff\x00\xfe"
    recorded = broker.messages(client_id=client_id)
    assert recorded[0]["payload"] == "/wD+"
    assert recorded[0]["payload_encoding"] == "base64"


def test_unknown_certificate_refused(broker, pki, tmp_path, clients):
    certificate, key = issue_certificate(pki.device_ca, pki.device_ca_key, "AWS IoT Certificate", [], ExtendedKeyUsageOID.CLIENT_AUTH)
    unknown = DeviceCredentials(
        "unregistered", write_pem(tmp_path / "unknown.crt", certificate=certificate), write_pem(tmp_path / "unknown.key", key=key)
    )
    client = clients(broker, unknown, unique_id("unknown"))
    assert not client.wait_connack()
    assert client.connack_reason is None, "a refused certificate must get no CONNACK"
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    assert wait_until(lambda: f"certificate {fingerprint} is not registered" in broker.log(), 2)


def test_certificate_from_other_ca_refused(broker, tmp_path, clients):
    other_ca, other_ca_key = make_ca("Some Other CA")
    certificate, key = issue_certificate(other_ca, other_ca_key, "AWS IoT Certificate", [], ExtendedKeyUsageOID.CLIENT_AUTH)
    foreign = DeviceCredentials(
        "foreign", write_pem(tmp_path / "foreign.crt", certificate=certificate), write_pem(tmp_path / "foreign.key", key=key)
    )
    client = clients(broker, foreign, unique_id("foreign"))
    assert not client.wait_connack()
    assert wait_until(lambda: "TLS handshake failed" in broker.log(), 2)


def test_inactive_certificate_refused_within_2s(broker, aws, make_device, clients):
    device = make_device()
    first = clients(broker, device, unique_id("inactive"))
    assert first.wait_connack()

    aws.iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    deactivated_at = time.monotonic()
    # The broker caches DescribeCertificate responses for at most 1 s, so a connection made 1.1 s
    # after the change must already be refused.
    time.sleep(1.1)
    second = clients(broker, device, unique_id("inactive"))
    assert not second.wait_connack()
    assert second.connack_reason is None
    # The open connection is closed by the periodic re-check.
    assert first.disconnected.wait(max(0.0, deactivated_at + RECHECK_INTERVAL + 2.5 - time.monotonic()))
    assert f"certificate {device.certificate_id} is INACTIVE" in broker.log()


def test_revoked_certificate_refused(broker, aws, make_device, clients):
    device = make_device()
    aws.iot.update_certificate(certificateId=device.certificate_id, newStatus="REVOKED")
    time.sleep(1.1)
    client = clients(broker, device, unique_id("revoked"))
    assert not client.wait_connack()
    assert f"certificate {device.certificate_id} is REVOKED" in broker.log()


def test_registry_error_refuses_connection(pki, aws, make_device, tmp_path, clients):
    wrong_keys = BrokerProcess(pki, aws, tmp_path, secret_key="not-the-secret")
    try:
        client = clients(wrong_keys, make_device(), unique_id("registry"))
        assert not client.wait_connack()
        assert client.connack_reason is None
        log = wrong_keys.log()
        assert "certificate lookup failed: DescribeCertificate failed" in log
        assert "SignatureDoesNotMatch" in log
    finally:
        stop_process(wrong_keys.process)


def test_same_client_id_drops_first(broker, make_device, clients):
    client_id = unique_id("dup")
    first = clients(broker, make_device(), client_id)
    assert first.wait_connack()
    second = clients(broker, make_device(), client_id)
    assert second.wait_connack()

    assert first.disconnected.wait(5)
    assert not second.disconnected.is_set()
    ports = [c["peer_port"] for c in broker.connections() if c["client_id"] == client_id]
    assert ports == [second.client.socket().getsockname()[1]]
    assert "client id taken over by a new connection" in broker.log()


def test_qos2_publish_closes(broker, make_device):
    connection = RawMqttConnection(broker, make_device())
    try:
        assert connection.connect(unique_id("qos2")) == b"\x20\x02\x00\x00"
        topic = mqtt_codec.encode_string("lab/qos2")
        connection.send(mqtt_codec.encode_packet(mqtt_codec.PacketType.PUBLISH, 2 << 1, topic + b"\x00\x01payload"))
        assert connection.read_packet() == b"", "QoS 2 PUBLISH must get no PUBREC"
    finally:
        connection.close()
    assert "QoS 2 is not supported" in broker.log()


def test_qos2_subscribe_closes(broker, make_device, clients):
    client = clients(broker, make_device(), unique_id("subqos2"))
    assert client.wait_connack()
    client.client.subscribe("lab/anything", qos=2)
    assert client.disconnected.wait(5)
    assert not client.subscribed.is_set(), "QoS 2 SUBSCRIBE must get no SUBACK"


def test_keepalive_timeout_closes(broker, make_device):
    connection = RawMqttConnection(broker, make_device())
    try:
        assert connection.connect(unique_id("keepalive"), keepalive=1) == b"\x20\x02\x00\x00"
        closed_after = connection.wait_closed(timeout=5)
    finally:
        connection.close()
    assert closed_after is not None, "connection stayed open past the keepalive timeout"
    assert 1.0 <= closed_after <= 4.0
    assert "keepalive timeout" in broker.log()


def test_pingreq_keeps_connection_open(broker, make_device):
    connection = RawMqttConnection(broker, make_device())
    try:
        assert connection.connect(unique_id("ping"), keepalive=1) == b"\x20\x02\x00\x00"
        for _ in range(3):
            time.sleep(0.8)
            connection.send(b"\xc0\x00")
            assert connection.read_packet() == b"\xd0\x00"
    finally:
        connection.close()


def test_mqtt5_connect_gets_connack_1(broker, make_device):
    connection = RawMqttConnection(broker, make_device())
    try:
        assert connection.connect(unique_id("v5"), protocol_level=5) == b"\x20\x02\x00\x01"
        assert connection.read_packet() == b""
    finally:
        connection.close()


def test_empty_client_id_gets_connack_2(broker, make_device):
    connection = RawMqttConnection(broker, make_device())
    try:
        assert connection.connect("") == b"\x20\x02\x00\x02"
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("label", "packet"),
    [
        ("remaining length over 4 bytes", b"\x30\xff\xff\xff\xff\x01"),
        ("PINGREQ with flags", b"\xc1\x00"),
        ("reserved packet type", b"\xf0\x00"),
        ("second CONNECT", connect_packet("again")),
        ("PUBLISH with wildcard topic", mqtt_codec.encode_publish("lab/+", b"x", 0)),
        ("SUBSCRIBE without filters", b"\x82\x02\x00\x01"),
        ("oversized payload", mqtt_codec.encode_publish("lab/big", b"x" * (128 * 1024 + 1), 0)),
    ],
)
def test_malformed_packet_closes(broker, make_device, label, packet):
    connection = RawMqttConnection(broker, make_device())
    try:
        assert connection.connect(unique_id("bad")) == b"\x20\x02\x00\x00"
        connection.send(packet)
        assert connection.wait_closed(timeout=5) is not None, f"{label}: connection stayed open"
    finally:
        connection.close()


def test_unacknowledged_deliveries_capped_at_100(broker, make_device, clients):
    subscriber = RawMqttConnection(broker, make_device())
    try:
        assert subscriber.connect(unique_id("slow")) == b"\x20\x02\x00\x00"
        subscribe_body = struct.pack("!H", 1) + mqtt_codec.encode_string("lab/slow") + b"\x01"
        subscriber.send(mqtt_codec.encode_packet(mqtt_codec.PacketType.SUBSCRIBE, 0b0010, subscribe_body))
        assert subscriber.read_packet() == b"\x90\x03\x00\x01\x01"

        publisher = clients(broker, make_device(), unique_id("fast"))
        assert publisher.wait_connack()
        for index in range(105):
            publisher.client.publish("lab/slow", str(index).encode(), qos=1).wait_for_publish(timeout=5)
        packet_ids = subscriber.read_publish_packet_ids(quiet_seconds=1.0)
        assert len(packet_ids) == 100
        assert len(set(packet_ids)) == 100
        assert "dropped delivery" in broker.log()

        # A PUBACK frees one slot, so the next message is delivered again.
        subscriber.send(mqtt_codec.encode_packet_id_ack(mqtt_codec.PacketType.PUBACK, packet_ids[0]))
        publisher.client.publish("lab/slow", b"after PUBACK", qos=1).wait_for_publish(timeout=5)
        assert len(subscriber.read_publish_packet_ids(quiet_seconds=1.0)) == 1
    finally:
        subscriber.close()


def test_will_published_on_abnormal_close(broker, make_device, clients):
    watcher = clients(broker, make_device(), unique_id("watcher"))
    assert watcher.wait_connack()
    watcher.client.subscribe("lab/will/#", qos=1)
    assert watcher.subscribed.wait(5)

    client_id = unique_id("will")
    dying = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, reconnect_on_failure=False)
    device = make_device()
    dying.tls_set(ca_certs=str(broker.server_ca_path), certfile=str(device.cert_path), keyfile=str(device.key_path))
    dying.will_set(f"lab/will/{client_id}", b"gone", qos=1)
    dying.connect(HOST, broker.port, keepalive=30)
    dying.loop(timeout=2)
    assert wait_until(lambda: client_id in [c["client_id"] for c in broker.connections()], 5)
    dying.socket().close()  # no DISCONNECT

    assert watcher.message_received.wait(5)
    assert watcher.messages[0].topic == f"lab/will/{client_id}"
    assert watcher.messages[0].payload == b"gone"


def test_admin_api_messages_delete(broker, make_device, clients):
    client = clients(broker, make_device(), unique_id("admin"))
    assert client.wait_connack()
    client.client.publish("lab/admin", b"x", qos=1).wait_for_publish(timeout=5)
    assert broker.messages(topic="lab/admin")

    deleted = http_json("DELETE", f"{broker.admin_url}/_lab/messages")
    assert deleted["deleted"] >= 1
    assert broker.messages() == []
    with pytest.raises(urllib.error.HTTPError) as missing:
        http_json("GET", f"{broker.admin_url}/_lab/nothing")
    assert missing.value.code == 404


# ---------------------------------------------------------------------------------------------
# AWS IoT policy authorization


def thing_scoped_policy() -> dict:
    """Return a policy that allows the thing name as client id and topics under lab/<thing name>/."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN_PREFIX}:client/{THING_NAME_VARIABLE}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{ARN_PREFIX}:topic/lab/{THING_NAME_VARIABLE}/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN_PREFIX}:topicfilter/lab/{THING_NAME_VARIABLE}/*"},
        ],
    }


def wait_for_log(broker, text: str, timeout: float = 2.0) -> bool:
    return wait_until(lambda: text in broker.log(), timeout)


def test_thing_policy_other_client_id_refused(broker, make_device, make_policy, clients):
    thing = unique_id("thing")
    device = make_device(policies=(make_policy(thing_scoped_policy()),), thing=thing)
    other_id = unique_id("other")
    client = clients(broker, device, other_id)
    assert not client.wait_connack()
    assert client.connack_reason is None, "a client id the policy does not allow must get no CONNACK"
    assert wait_for_log(broker, f"denied client_id='{other_id}' action=iot:Connect resource={ARN_PREFIX}:client/{other_id}:")
    assert f"no thing named '{other_id}' is attached to the certificate" in broker.log()
    assert f"refused peer={HOST}" in broker.log()


def test_thing_policy_thing_name_accepted(broker, make_device, make_policy, clients):
    thing = unique_id("thing")
    device = make_device(policies=(make_policy(thing_scoped_policy()),), thing=thing)
    client = clients(broker, device, thing)
    assert client.wait_connack()
    info = client.client.publish(f"lab/{thing}/hello", b"x", qos=1)
    info.wait_for_publish(timeout=5)
    assert info.is_published(), "no PUBACK for a topic the policy allows"
    assert [m["topic"] for m in broker.messages(client_id=thing)] == [f"lab/{thing}/hello"]


def test_thing_policy_without_attached_thing_refused(broker, make_device, make_policy, clients):
    thing = unique_id("thing")
    device = make_device(policies=(make_policy(thing_scoped_policy()),))
    client = clients(broker, device, thing)
    assert not client.wait_connack()
    assert wait_for_log(broker, f"no thing named '{thing}' is attached to the certificate")


def test_publish_outside_policy_closes(broker, make_device, make_policy, clients):
    thing = unique_id("thing")
    device = make_device(policies=(make_policy(thing_scoped_policy()),), thing=thing)
    client = clients(broker, device, thing)
    assert client.wait_connack()
    client.client.publish(f"lab/{thing}/ok", b"allowed", qos=1).wait_for_publish(timeout=5)

    info = client.client.publish("lab/elsewhere/x", b"denied", qos=1)
    assert client.disconnected.wait(5), "a PUBLISH the policy does not allow must close the connection"
    assert not info.is_published(), "a denied PUBLISH must get no PUBACK"
    assert broker.messages(topic="lab/elsewhere/x") == []
    log = broker.log()
    assert f"denied client_id='{thing}' action=iot:Publish resource={ARN_PREFIX}:topic/lab/elsewhere/x:" in log
    assert "PUBLISH to 'lab/elsewhere/x' not authorized" in log


def test_subscribe_outside_policy_suback_0x80(broker, make_device, make_policy):
    thing = unique_id("thing")
    connection = RawMqttConnection(broker, make_device(policies=(make_policy(thing_scoped_policy()),), thing=thing))
    try:
        assert connection.connect(thing) == b"\x20\x02\x00\x00"
        body = struct.pack("!H", 7)
        body += mqtt_codec.encode_string(f"lab/{thing}/#") + b"\x01"
        body += mqtt_codec.encode_string("lab/#") + b"\x00"
        connection.send(mqtt_codec.encode_packet(mqtt_codec.PacketType.SUBSCRIBE, 0b0010, body))
        assert connection.read_packet() == b"\x90\x04\x00\x07\x01\x80"
        # The connection stays open after a refused filter, with only the allowed subscription.
        connection.send(b"\xc0\x00")
        assert connection.read_packet() == b"\xd0\x00"
        subscriptions = [c["subscriptions"] for c in broker.connections() if c["client_id"] == thing]
        assert subscriptions == [[{"topic_filter": f"lab/{thing}/#", "qos": 1}]]
    finally:
        connection.close()
    assert f"denied client_id='{thing}' action=iot:Subscribe resource={ARN_PREFIX}:topicfilter/lab/#:" in broker.log()


def test_deny_overrides_allow(broker, make_device, make_policy, allow_all_policy, clients):
    deny_secret = make_policy({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{ARN_PREFIX}:topic/lab/secret/*"}],
    })
    subscriber_id = unique_id("denied")
    subscriber = clients(broker, make_device(policies=(allow_all_policy, deny_secret)), subscriber_id)
    assert subscriber.wait_connack()
    subscriber.client.subscribe("lab/#", qos=1)
    assert subscriber.subscribed.wait(5)

    publisher = clients(broker, make_device(), unique_id("allowed"))
    assert publisher.wait_connack()
    # The broker handles one client's packets in order, so the public message arrives after the
    # secret one was denied.
    publisher.client.publish("lab/secret/x", b"secret", qos=1).wait_for_publish(timeout=5)
    publisher.client.publish("lab/public/x", b"public", qos=1).wait_for_publish(timeout=5)
    assert subscriber.message_received.wait(5)
    assert [m.topic for m in subscriber.messages] == ["lab/public/x"]
    expected = (
        f"denied client_id='{subscriber_id}' action=iot:Receive resource={ARN_PREFIX}:topic/lab/secret/x: "
        f"explicitly denied by policy '{deny_secret}' Statement[0]"
    )
    assert expected in broker.log()

    subscriber.client.publish("lab/secret/y", b"x", qos=1)
    assert subscriber.disconnected.wait(5), "Deny must win over the Allow of the other policy"
    assert f"action=iot:Publish resource={ARN_PREFIX}:topic/lab/secret/y: explicitly denied" in broker.log()


def test_policy_change_applies_within_2s(broker, aws, make_device, make_policy, clients):
    policy_name = make_policy(ALLOW_ALL)
    device = make_device(policies=(policy_name,))
    client = clients(broker, device, unique_id("change"))
    assert client.wait_connack()
    client.client.publish("lab/any/before", b"x", qos=1).wait_for_publish(timeout=5)

    narrower = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN_PREFIX}:topic/lab/allowed/*"},
        ],
    }
    aws.iot.create_policy_version(policyName=policy_name, policyDocument=json.dumps(narrower), setAsDefault=True)
    changed_at = time.monotonic()
    # The broker caches a certificate's policies for at most 1 s.
    time.sleep(1.1)
    info = client.client.publish("lab/allowed/x", b"x", qos=1)
    info.wait_for_publish(timeout=5)
    assert info.is_published()
    client.client.publish("lab/any/after", b"x", qos=1)
    assert client.disconnected.wait(5)
    assert time.monotonic() - changed_at < 2.5

    aws.iot.detach_policy(policyName=policy_name, target=device.certificate_arn)
    time.sleep(1.1)
    second = clients(broker, device, unique_id("change"))
    assert not second.wait_connack()
    assert second.connack_reason is None
    assert wait_for_log(broker, "no policy is attached to the certificate")


def test_refused_connection_keeps_existing_session(broker, make_device, make_policy, clients):
    thing = unique_id("thing")
    policy_name = make_policy(thing_scoped_policy())
    owner = clients(broker, make_device(policies=(policy_name,), thing=thing), thing)
    assert owner.wait_connack()
    # Same policy and client id, but this certificate is attached to no thing.
    intruder = clients(broker, make_device(policies=(policy_name,)), thing)
    assert not intruder.wait_connack()
    assert not owner.disconnected.wait(1.0), "a refused CONNECT must not take over the client id"
    ports = [c["peer_port"] for c in broker.connections() if c["client_id"] == thing]
    assert ports == [owner.client.socket().getsockname()[1]]


def test_certificate_without_policy_refused(broker, make_device, clients):
    client_id = unique_id("nopolicy")
    client = clients(broker, make_device(policies=()), client_id)
    assert not client.wait_connack()
    assert wait_for_log(broker, f"denied client_id='{client_id}' action=iot:Connect")
    assert "no policy is attached to the certificate" in broker.log()


def test_invalid_policy_document_denies(broker, make_device, make_policy, allow_all_policy, clients):
    # moto stores any text as a policy document, while AWS would reject this one.
    invalid = make_policy({"Version": "2012-10-17", "Statement": [{"Effect": "allow", "Action": "iot:*", "Resource": "*"}]})
    client = clients(broker, make_device(policies=(allow_all_policy, invalid)), unique_id("invalid"))
    assert not client.wait_connack()
    assert wait_for_log(broker, "authorization error for client_id=")
    assert f"policy '{invalid}' Statement[0]: Effect must be" in broker.log()


def test_retained_publish_needs_retain_publish(broker, make_device, make_policy, clients):
    policy_name = make_policy({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish"], "Resource": "*"}],
    })
    client_id = unique_id("retain")
    client = clients(broker, make_device(policies=(policy_name,)), client_id)
    assert client.wait_connack()
    client.client.publish("lab/retain/plain", b"x", qos=1).wait_for_publish(timeout=5)
    client.client.publish("lab/retain/kept", b"x", qos=1, retain=True)
    assert client.disconnected.wait(5)
    assert f"denied client_id='{client_id}' action=iot:RetainPublish resource={ARN_PREFIX}:topic/lab/retain/kept:" in broker.log()


def test_unauthorized_will_dropped(broker, make_device, make_policy, clients):
    watcher = clients(broker, make_device(), unique_id("watcher"))
    assert watcher.wait_connack()
    watcher.client.subscribe("lab/will-denied/#", qos=1)
    assert watcher.subscribed.wait(5)

    policy_name = make_policy({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN_PREFIX}:topic/lab/will-denied/allowed"},
        ],
    })
    client_id = unique_id("will")
    device = make_device(policies=(policy_name,))
    dying = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, reconnect_on_failure=False)
    dying.tls_set(ca_certs=str(broker.server_ca_path), certfile=str(device.cert_path), keyfile=str(device.key_path))
    dying.will_set("lab/will-denied/forbidden", b"gone", qos=1)
    dying.connect(HOST, broker.port, keepalive=30)
    dying.loop(timeout=2)
    assert wait_until(lambda: client_id in [c["client_id"] for c in broker.connections()], 5)
    dying.socket().close()  # no DISCONNECT, so the broker sends the will

    assert wait_for_log(broker, f"denied client_id='{client_id}' action=iot:Publish resource={ARN_PREFIX}:topic/lab/will-denied/forbidden:")
    assert not watcher.message_received.wait(0.5)
    assert broker.messages(topic="lab/will-denied/forbidden") == []


def test_no_authorization_flag_allows_all(pki, aws, make_device, tmp_path, clients):
    open_broker = BrokerProcess(pki, aws, tmp_path, extra_args=("--no-authorization",))
    try:
        client = clients(open_broker, make_device(policies=()), unique_id("open"))
        assert client.wait_connack()
        info = client.client.publish("anything/at/all", b"x", qos=1)
        info.wait_for_publish(timeout=5)
        assert info.is_published()
        assert "IoT policy authorization off" in open_broker.log()
    finally:
        stop_process(open_broker.process)


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto_pub (mosquitto-clients) is not installed")
def test_mosquitto_pub_stock_client(broker, make_device):
    device = make_device()
    client_id = unique_id("mosquitto")
    command = [
        "mosquitto_pub", "-h", HOST, "-p", str(broker.port),
        "--cafile", str(broker.server_ca_path), "--cert", str(device.cert_path), "--key", str(device.key_path),
        "-i", client_id, "-q", "1", "-t", f"lab/{client_id}/hello", "-m", "from mosquitto_pub",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    recorded = broker.messages(client_id=client_id)
    assert [(m["topic"], m["payload"], m["qos"]) for m in recorded] == [(f"lab/{client_id}/hello", "from mosquitto_pub", 1)]


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto_pub (mosquitto-clients) is not installed")
def test_mosquitto_pub_inactive_certificate_fails(broker, make_device):
    device = make_device(active=False)
    command = [
        "mosquitto_pub", "-h", HOST, "-p", str(broker.port),
        "--cafile", str(broker.server_ca_path), "--cert", str(device.cert_path), "--key", str(device.key_path),
        "-i", unique_id("mosquitto"), "-q", "1", "-t", "lab/refused", "-m", "x",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert result.returncode != 0
