# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tests for mqtt_check against a small MQTT 3.1.1 broker over TLS on 127.0.0.1.

The broker runs in a thread of the test process. It accepts only client certificates
signed by a test device CA, much as AWS IoT accepts only registered certificates.
Each test sets the broker's behaviour through ``TestBroker.mode``.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import struct
import threading
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.soracom.krypton.plugins.modules import mqtt_check

pytest.importorskip('paho.mqtt.client')
pytest.importorskip('cryptography')

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

UTC = datetime.timezone.utc
CLIENT_ID = '440103000000001'
HOST = 'localhost'


# ---------------------------------------------------------------------------- test PKI

def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    certificate = (x509.CertificateBuilder()
                   .subject_name(_name(common_name)).issuer_name(_name(common_name))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .sign(key, hashes.SHA256()))
    return key, certificate


def make_leaf(ca_key, ca_certificate, common_name, server=False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(ca_certificate.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def write_pem(path, certificate=None, key=None):
    data = b''
    if certificate is not None:
        data += certificate.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        data += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    base = tmp_path_factory.mktemp('pki')
    server_ca_key, server_ca = make_ca('Test Server Root CA')
    device_ca_key, device_ca = make_ca('Test Device CA')
    other_ca_key, other_ca = make_ca('Unregistered CA')
    broker_key, broker_cert = make_leaf(server_ca_key, server_ca, 'broker', server=True)
    device_key, device_cert = make_leaf(device_ca_key, device_ca, 'AWS IoT Certificate')
    stranger_key, stranger_cert = make_leaf(other_ca_key, other_ca, 'AWS IoT Certificate')
    return {
        'server_ca': write_pem(base / 'server-ca.pem', server_ca),
        'device_ca': write_pem(base / 'device-ca.pem', device_ca),
        'other_ca': write_pem(base / 'other-ca.pem', other_ca),
        'broker_cert': write_pem(base / 'broker.pem', broker_cert),
        'broker_key': write_pem(base / 'broker.key', key=broker_key),
        'device_cert': write_pem(base / 'device.pem', device_cert),
        'device_key': write_pem(base / 'device.key', key=device_key),
        'stranger_cert': write_pem(base / 'stranger.pem', stranger_cert),
        'stranger_key': write_pem(base / 'stranger.key', key=stranger_key),
    }


# ---------------------------------------------------------------------------- test broker

def _read_exact(conn, size):
    data = b''
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError('closed')
        data += chunk
    return data


def _read_packet(conn):
    header = _read_exact(conn, 1)[0]
    multiplier, length = 1, 0
    for dummy in range(4):
        byte = _read_exact(conn, 1)[0]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        if not byte & 0x80:
            break
    return header, _read_exact(conn, length) if length else b''


def _string(body, offset):
    size = struct.unpack('!H', body[offset:offset + 2])[0]
    return body[offset + 2:offset + 2 + size].decode('utf-8'), offset + 2 + size


class TestBroker:
    """MQTT 3.1.1 over TLS on 127.0.0.1, one thread per connection. ``mode`` selects the behaviour:

    accept (CONNACK 0 and PUBACK), refuse (CONNACK with return code 5), close (close
    after CONNECT), no_puback (ignore PUBLISH), close_on_publish (close on PUBLISH).

    As AWS IoT does, a CONNECT with the client id of an open connection closes that older
    connection. ``kick(client_id)`` closes a client's connection from the test.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, pki):
        self.mode = 'accept'
        self.connects = []
        self.publishes = []
        self.errors = []
        self.kicked = []
        self.sessions = {}
        self.sessions_lock = threading.Lock()
        self.handlers = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki['broker_cert'], pki['broker_key'])
        context.load_verify_locations(pki['device_ca'])
        context.verify_mode = ssl.CERT_REQUIRED
        self.context = context
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(5)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name='test-broker')
        self.thread.daemon = True
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()
        with self.sessions_lock:
            open_connections = list(self.sessions.values())
        for conn in open_connections:
            self._drop(conn)
        for handler in self.handlers:
            handler.join(5)

    def kick(self, client_id):
        """Close the connection of ``client_id`` as the broker. Returns False when it has none."""
        with self.sessions_lock:
            conn = self.sessions.pop(client_id, None)
        if conn is None:
            return False
        self.kicked.append(client_id)
        self._drop(conn)
        return True

    @staticmethod
    def _drop(conn):
        # Shut the TCP socket down under the TLS layer, so the handler thread's read ends.
        try:
            socket.socket.shutdown(conn, socket.SHUT_RDWR)
        except OSError:
            pass

    def _serve(self):
        while not self.stopping.is_set():
            try:
                raw, dummy = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            handler = threading.Thread(target=self._handle, args=(raw,), name='test-broker-connection')
            handler.daemon = True
            self.handlers.append(handler)
            handler.start()

    def _handle(self, raw):
        raw.settimeout(5)
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.errors.append(str(exc))
            raw.close()
            return
        try:
            self._session(conn)
        except (ConnectionError, ssl.SSLError, OSError, socket.timeout, ValueError) as exc:
            self.errors.append(str(exc))
        finally:
            with self.sessions_lock:
                for client_id, session in list(self.sessions.items()):
                    if session is conn:
                        del self.sessions[client_id]
            conn.close()

    def _register(self, client_id, conn):
        """Record ``conn`` as the connection of ``client_id`` and close an older one with the same id."""
        with self.sessions_lock:
            older = self.sessions.get(client_id)
            self.sessions[client_id] = conn
        if older is not None:
            self.kicked.append(client_id)
            self._drop(older)

    def _session(self, conn):
        while True:
            header, body = _read_packet(conn)
            kind = header >> 4
            if kind == 1:  # CONNECT
                protocol, offset = _string(body, 0)
                offset += 4  # level, flags, keepalive
                client_id, offset = _string(body, offset)
                self.connects.append({'client_id': client_id, 'protocol': protocol, 'tls': conn.version()})
                if self.mode == 'close':
                    return
                conn.sendall(bytes([0x20, 0x02, 0x00, 5 if self.mode == 'refuse' else 0]))
                if self.mode == 'refuse':
                    return
                self._register(client_id, conn)
            elif kind == 3:  # PUBLISH
                qos = (header >> 1) & 0x03
                topic, offset = _string(body, 0)
                packet_id = None
                if qos:
                    packet_id = struct.unpack('!H', body[offset:offset + 2])[0]
                    offset += 2
                self.publishes.append({'topic': topic, 'payload': body[offset:], 'qos': qos})
                if self.mode == 'close_on_publish':
                    return
                if qos == 1 and self.mode != 'no_puback':
                    conn.sendall(bytes([0x40, 0x02]) + struct.pack('!H', packet_id))
            elif kind == 12:  # PINGREQ
                conn.sendall(bytes([0xD0, 0x00]))
            elif kind == 14:  # DISCONNECT
                return


def connect_packet(client_id):
    """Encode an MQTT 3.1.1 CONNECT with a clean session and a 30 s keepalive."""
    client_id_bytes = client_id.encode('utf-8')
    body = (struct.pack('!H', 4) + b'MQTT' + bytes([4, 0x02]) + struct.pack('!H', 30)
            + struct.pack('!H', len(client_id_bytes)) + client_id_bytes)
    return bytes([0x10, len(body)]) + body


class SecondClient:
    """Connects with the device certificate and ``client_id`` once ``ready()`` holds, as another device process would.

    Runs in a thread while the module runs, and keeps its connection open until ``close()``.
    """

    def __init__(self, pki, port, client_id, ready):
        self.pki = pki
        self.port = port
        self.client_id = client_id
        self.ready = ready
        self.connack = None
        self.error = None
        self.sock = None
        self.thread = threading.Thread(target=self._run, name='second-client')
        self.thread.daemon = True
        self.thread.start()

    def _run(self):
        try:
            if not wait_for(self.ready, seconds=10):
                self.error = 'the module did not reach the point to interfere with'
                return
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(self.pki['server_ca'])
            context.load_cert_chain(self.pki['device_cert'], self.pki['device_key'])
            raw = socket.create_connection(('127.0.0.1', self.port), timeout=5)
            self.sock = context.wrap_socket(raw, server_hostname=HOST)
            self.sock.sendall(connect_packet(self.client_id))
            self.connack = _read_packet(self.sock)
        except (OSError, ConnectionError, ssl.SSLError) as exc:
            self.error = str(exc)

    def close(self):
        self.thread.join(10)
        if self.sock is not None:
            self.sock.close()


@pytest.fixture
def broker(pki):
    server = TestBroker(pki)
    yield server
    server.stop()


@pytest.fixture
def src(tmp_path, pki):
    """A directory laid out as krypton_bootstrap writes it."""
    directory = tmp_path / 'krypton'
    directory.mkdir()
    for name, source in (('certificate.pem', 'device_cert'), ('private.key', 'device_key'),
                         ('root-ca.pem', 'server_ca')):
        (directory / name).write_bytes(open(pki[source], 'rb').read())
    (directory / 'krypton.json').write_text(json.dumps({'host': HOST, 'client_id': CLIENT_ID}))
    return directory


def wait_for(condition, seconds=3.0):
    """Poll ``condition`` until it is true or ``seconds`` pass. The broker thread may lag the client."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def run_module(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            mqtt_check.main()
    output = capsys.readouterr().out
    result = json.loads(output)
    result['rc'] = excinfo.value.code
    result['raw_output'] = output
    return result


# ---------------------------------------------------------------------------- tests

def test_publish_with_puback(capsys, broker, src):
    result = run_module(capsys, src=str(src), port=broker.port, timeout=5)
    assert result['rc'] == 0, result.get('msg')
    assert result['changed'] is False
    assert result['published'] is True
    assert result['host'] == HOST
    assert result['client_id'] == CLIENT_ID
    assert result['topic'] == 'krypton/%s/check' % CLIENT_ID
    assert result['qos'] == 1
    assert result['tls_version'] in ('TLSv1.2', 'TLSv1.3')
    assert result['tls_cipher']
    assert result['connect_ms'] >= 0
    assert result['publish_ms'] >= 0
    assert broker.connects[0]['client_id'] == CLIENT_ID
    assert broker.connects[0]['protocol'] == 'MQTT'
    message = broker.publishes[0]
    assert message['topic'] == 'krypton/%s/check' % CLIENT_ID
    assert message['qos'] == 1
    assert json.loads(message['payload'])['client_id'] == CLIENT_ID
    assert 'PRIVATE KEY' not in result['raw_output']


def test_publish_custom_topic_qos0(capsys, broker, src):
    result = run_module(capsys, src=str(src), port=broker.port, topic='devices/pi01/hello', payload='hi', qos=0,
                        timeout=5)
    assert result['rc'] == 0, result.get('msg')
    assert result['published'] is True
    assert wait_for(lambda: broker.publishes)
    assert broker.publishes[0] == {'topic': 'devices/pi01/hello', 'payload': b'hi', 'qos': 0}


def test_check_mode_connects_without_publish(capsys, broker, src):
    result = run_module(capsys, src=str(src), port=broker.port, timeout=5, _ansible_check_mode=True)
    assert result['rc'] == 0, result.get('msg')
    assert result['changed'] is False
    assert result['published'] is False
    assert result['publish_ms'] is None
    assert len(broker.connects) == 1
    assert broker.publishes == []


def test_overrides_without_state_file(capsys, broker, src, pki):
    (src / 'krypton.json').unlink()
    result = run_module(capsys, src=str(src), host=HOST, client_id='pi01', port=broker.port,
                        certificate=pki['device_cert'], private_key=pki['device_key'], root_ca=pki['server_ca'],
                        timeout=5)
    assert result['rc'] == 0, result.get('msg')
    assert broker.connects[0]['client_id'] == 'pi01'


def test_wrong_root_ca_fails_at_tls(capsys, broker, src, pki):
    result = run_module(capsys, src=str(src), port=broker.port, root_ca=pki['other_ca'], timeout=5)
    assert result['rc'] == 1
    assert result['step'] == 'TLS'
    assert 'Amazon Root CA 1' in result['msg']


def test_ip_address_not_in_certificate_fails_at_tls(capsys, broker, src):
    result = run_module(capsys, src=str(src), host='127.0.0.1', port=broker.port, timeout=5)
    assert result['rc'] == 1
    assert result['step'] == 'TLS'
    assert 'not in the server certificate' in result['msg']


def test_unregistered_certificate_fails(capsys, broker, src, pki):
    """With TLS 1.3 the broker rejects the client certificate after the client's handshake ends."""
    result = run_module(capsys, src=str(src), port=broker.port, certificate=pki['stranger_cert'],
                        private_key=pki['stranger_key'], timeout=5)
    assert result['rc'] == 1
    assert result['step'] in ('CONNACK', 'TLS')
    assert 'not registered or not ACTIVE' in result['msg']
    assert broker.connects == []


def test_connack_refused(capsys, broker, src):
    broker.mode = 'refuse'
    result = run_module(capsys, src=str(src), port=broker.port, timeout=5)
    assert result['rc'] == 1
    assert result['step'] == 'CONNACK'
    assert 'refused' in result['msg']
    assert 'iot:Connect' in result['msg']


def test_closed_without_connack(capsys, broker, src):
    broker.mode = 'close'
    result = run_module(capsys, src=str(src), port=broker.port, timeout=5)
    assert result['rc'] == 1
    assert result['step'] == 'CONNACK'
    assert 'without a CONNACK' in result['msg']
    assert 'client id is in use' in result['msg']


def test_puback_timeout(capsys, broker, src):
    broker.mode = 'no_puback'
    result = run_module(capsys, src=str(src), port=broker.port, timeout=1)
    assert result['rc'] == 1
    assert result['step'] == 'PUBACK'
    assert 'no PUBACK within 1 s' in result['msg']
    assert 'iot:Publish' in result['msg']


def test_closed_before_puback(capsys, broker, src):
    broker.mode = 'close_on_publish'
    result = run_module(capsys, src=str(src), port=broker.port, timeout=5)
    assert result['rc'] == 1
    assert result['step'] == 'PUBACK'
    assert 'closed the connection before the PUBACK' in result['msg']
    assert 'iot:Publish' in result['msg']
    assert 'client id %s is in use by another connection' % CLIENT_ID in result['msg']


def test_hold_keeps_connection_open(capsys, broker, src):
    result = run_module(capsys, src=str(src), port=broker.port, timeout=5, hold=0.5)
    assert result['rc'] == 0, result.get('msg')
    assert result['hold_ms'] >= 450
    assert broker.kicked == []


def test_default_hold_is_one_second(capsys, broker, src):
    result = run_module(capsys, src=str(src), port=broker.port, timeout=5)
    assert result['rc'] == 0, result.get('msg')
    assert 950 <= result['hold_ms'] < 3000


def test_duplicate_client_id_during_hold(capsys, broker, src, pki):
    second = SecondClient(pki, broker.port, CLIENT_ID, ready=lambda: len(broker.publishes) == 1)
    try:
        result = run_module(capsys, src=str(src), port=broker.port, timeout=5, hold=5)
    finally:
        second.close()
    assert second.error is None
    assert second.connack[1] == b'\x00\x00'
    assert broker.kicked == [CLIENT_ID]
    assert result['rc'] == 1
    assert result['step'] == 'HOLD'
    assert 'the broker closed the connection' in result['msg']
    assert 'after the PUBACK' in result['msg']
    assert 'client id %s is in use by another connection' % CLIENT_ID in result['msg']


def test_kick_after_connack_in_check_mode(capsys, broker, src):
    kicker = threading.Thread(target=lambda: wait_for(lambda: broker.kick(CLIENT_ID), seconds=10))
    kicker.start()
    try:
        result = run_module(capsys, src=str(src), port=broker.port, timeout=5, hold=5, _ansible_check_mode=True)
    finally:
        kicker.join(15)
    assert result['rc'] == 1
    assert result['step'] == 'HOLD'
    assert 'after the CONNACK' in result['msg']
    assert 'client id %s is in use' % CLIENT_ID in result['msg']
    assert broker.publishes == []


def test_hold_zero_disconnects_at_once(capsys, broker, src):
    result = run_module(capsys, src=str(src), port=broker.port, timeout=5, hold=0)
    assert result['rc'] == 0, result.get('msg')
    assert result['hold_ms'] < 200
    assert broker.kicked == []


def test_tcp_refused(capsys, src):
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    port = listener.getsockname()[1]
    listener.close()
    result = run_module(capsys, src=str(src), host='127.0.0.1', port=port, timeout=2)
    assert result['rc'] == 1
    assert result['step'] == 'TCP'


def test_dns_failure(capsys, src, monkeypatch):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')

    monkeypatch.setattr(mqtt_check.socket, 'getaddrinfo', no_such_host)
    result = run_module(capsys, src=str(src), timeout=2)
    assert result['rc'] == 1
    assert result['step'] == 'DNS'
    assert 'Name or service not known' in result['msg']


def test_key_mismatch_fails_before_network(capsys, src, pki):
    result = run_module(capsys, src=str(src), private_key=pki['stranger_key'], port=1, timeout=2)
    assert result['rc'] == 1
    assert result['step'] == 'FILES'
    assert 'does not belong' in result['msg']
    assert 'PRIVATE KEY' not in result['raw_output']


def test_missing_state_file(capsys, tmp_path):
    result = run_module(capsys, src=str(tmp_path), timeout=2)
    assert result['rc'] == 1
    assert result['step'] == 'FILES'
    assert 'krypton_bootstrap' in result['msg']


def test_missing_certificate_file(capsys, src):
    (src / 'certificate.pem').unlink()
    result = run_module(capsys, src=str(src), timeout=2)
    assert result['rc'] == 1
    assert result['step'] == 'FILES'
    assert 'certificate.pem' in result['msg']


@pytest.mark.parametrize('args,message', [
    ({'topic': 'krypton/#'}, 'wildcards'),
    ({'port': 0}, 'port'),
    ({'timeout': 0}, 'timeout'),
    ({'host': ' '}, 'host'),
    ({'hold': -1}, 'hold'),
    ({'hold': 301}, 'hold'),
])
def test_invalid_options(capsys, src, args, message):
    result = run_module(capsys, src=str(src), **args)
    assert result['rc'] == 1
    assert message in result['msg']


def test_missing_paho(capsys, src, monkeypatch):
    monkeypatch.setattr(mqtt_check, 'HAS_PAHO', False)
    result = run_module(capsys, src=str(src))
    assert result['rc'] == 1
    assert 'paho-mqtt' in result['msg']


# ---------------------------------------------------------------------------- record

RECORD_NOW = datetime.datetime(2026, 12, 1, 9, 30, 0, tzinfo=datetime.timezone.utc)


def test_record_of_success_keeps_listed_fields():
    result = {'host': 'h.example', 'port': 8883, 'client_id': 'pi', 'topic': 't', 'published': True,
              'connect_ms': 12, 'publish_ms': 3, 'hold_ms': 1000, 'tls_version': 'TLSv1.3',
              'tls_cipher': 'TLS_AES_256_GCM_SHA384', 'qos': 1}
    record = mqtt_check.build_record(result=result, now=RECORD_NOW)
    assert record['result'] == 'ok'
    assert record['checked_at'] == '2026-12-01T09:30:00Z'
    assert record['format'] == 1
    assert record['message'] is None
    assert record['step'] is None
    assert record['tls_version'] == 'TLSv1.3'
    assert 'tls_cipher' not in record


def test_record_of_failure_names_step():
    failure = mqtt_check.CheckFailed('CONNACK', 'the broker closed the connection.')
    record = mqtt_check.build_record(failure=failure, now=RECORD_NOW)
    assert record['result'] == 'failed'
    assert record['step'] == 'CONNACK'
    assert record['message'] == failure.full_message()
    assert 'host' not in record


def test_record_written_with_mode_and_parents(tmp_path):
    path = tmp_path / 'var' / 'lib' / 'mqtt-check.json'
    assert mqtt_check.write_record(str(path), {'result': 'ok'}) is None
    assert json.loads(path.read_text()) == {'result': 'ok'}
    assert path.stat().st_mode & 0o777 == 0o644
    assert path.parent.stat().st_mode & 0o777 == 0o755


def test_record_write_failure_reported(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    message = mqtt_check.write_record(str(blocker / 'mqtt-check.json'), {'result': 'ok'})
    assert message is not None
    assert str(blocker) in message
