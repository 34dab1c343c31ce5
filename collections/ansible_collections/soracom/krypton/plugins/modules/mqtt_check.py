#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mqtt_check
short_description: Verify a device certificate with an MQTT publish to AWS IoT Core
version_added: 0.1.0
description:
  - Connects from the device to the AWS IoT data endpoint with MQTT over TLS on port 8883, using the certificate and
    private key that M(soracom.krypton.krypton_bootstrap) stored, and publishes one message.
  - The server certificate is verified against the root CA file, and the TLS server name (SNI) is the host name.
  - The module waits for the broker's CONNACK, publishes with QoS 1 by default and waits for the PUBACK, so a
    success means AWS IoT accepted both the certificate and the publish.
  - After the PUBACK (in check mode, after the CONNACK) the module keeps the connection open for O(hold) seconds. AWS
    IoT closes a connection when another one connects with the same client id, so a connection that the broker closes
    during this wait is reported as a client id in use by another connection.
  - On failure the message names the step that failed (FILES, DNS, TCP, TLS, CONNACK, PUBACK or HOLD) and its likely
    cause.
author:
  - soracom.krypton contributors (@soracom-krypton)
requirements:
  - paho-mqtt 1.6 or 2.x, for example Debian's C(python3-paho-mqtt).
extends_documentation_fragment:
  - soracom.krypton.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the module connects and waits for the CONNACK, but publishes nothing, so
      RV(published=false) and RV(publish_ms) is V(null).
  diff_mode:
    support: N/A
    details: The module changes nothing on the device, so there is no diff.
  idempotent:
    support: full
    details: The module always reports RV(ignore:changed=false). Each run publishes one message.
options:
  src:
    description:
      - Directory that M(soracom.krypton.krypton_bootstrap) wrote. The module reads C(krypton.json) for the host and
        client id, and uses C(certificate.pem), C(private.key) and C(root-ca.pem) from it.
      - The options below override single values. C(krypton.json) may be missing when O(host) and O(client_id) are
        both set.
    type: path
    default: /etc/soracom/krypton
  host:
    description:
      - AWS IoT data endpoint to connect to. Defaults to C(host) from C(krypton.json).
    type: str
  port:
    description:
      - TCP port of the MQTT over TLS listener.
    type: int
    default: 8883
  client_id:
    description:
      - MQTT client id. Defaults to C(client_id) from C(krypton.json).
      - AWS IoT allows one connection per client id. The check's connection ends an open connection of the device's
        own application with the same client id, which then reconnects.
    type: str
  certificate:
    description:
      - Path of the client certificate. Defaults to C(certificate.pem) in O(src).
    type: path
  private_key:
    description:
      - Path of the private key. Defaults to C(private.key) in O(src).
    type: path
  root_ca:
    description:
      - Path of the CA certificate that verifies the server. Defaults to C(root-ca.pem) in O(src).
      - An ATS endpoint (C(*-ats.iot.*.amazonaws.com)) needs Amazon Root CA 1.
    type: path
  topic:
    description:
      - Topic to publish to. Defaults to C(krypton/<client id>/check).
      - The AWS IoT policy attached to the certificate must allow C(iot:Publish) on it.
      - Wildcards (V(+) and V(#)) are not allowed.
    type: str
  payload:
    description:
      - Message to publish. Defaults to a JSON object with the client id, the system time and the name of this module.
    type: str
  qos:
    description:
      - MQTT quality of service of the publish.
      - V(1) waits for the broker's PUBACK. V(0) only confirms that the message was sent.
    type: int
    choices: [0, 1]
    default: 1
  timeout:
    description:
      - Maximum time in seconds for each step, that is the name resolution, the TCP connection, the TLS handshake and
        CONNACK together, and the PUBACK.
    type: int
    default: 10
  hold:
    description:
      - Seconds to keep the connection open after the PUBACK (in check mode, after the CONNACK) before disconnecting.
      - When the broker closes the connection during this time, the module fails at step HOLD and names the likely
        cause, another connection with the same client id, such as the device's own MQTT client reconnecting.
      - V(0) disconnects at once.
    type: float
    default: 1
  record:
    description:
      - Path of a JSON file (mode C(0644)) that receives the result of the check, also when it fails, so that a later
        report can show the last check without connecting again. Missing parent directories are created with mode
        C(0755).
      - The file contains C(format) (V(1)), C(checked_at) (UTC, ISO 8601), C(result) (V(ok) or V(failed)),
        C(message) (the failure message, or V(null)), C(step) (the step that failed, or V(null)), and of a successful
        check C(host), C(port), C(client_id), C(topic), C(published), C(connect_ms), C(publish_ms), C(hold_ms) and
        C(tls_version).
      - It is written through a temporary file that is renamed into place. It changes with every check, like a log
        line, so writing it does not count as a change. In check mode nothing is written.
    type: path
notes:
  - The module first resolves the host and opens a TCP connection that it closes at once, so a DNS or TCP failure is
    reported as such. Then paho-mqtt connects.
  - With TLS 1.3 a server that rejects the client certificate does so after the handshake, so that failure shows up as
    a connection closed without CONNACK, not as a TLS error.
  - A connection closed by the broker after the CONNACK is reported with the client id in use by another connection
    as a likely cause. Before the PUBACK, a publish that the IoT policy does not allow is the other likely cause.
  - Key material is never read into the result or the messages. Only file paths are reported.
seealso:
  - module: soracom.krypton.krypton_bootstrap
    description: Stores the certificate, key, root CA and connection details that this module uses.
  - module: soracom.krypton.lte_link_info
    description: Checks the cellular link, routes and clock.
  - name: AWS IoT Core device communication protocols
    description: Ports, protocols and authentication of the AWS IoT data endpoint.
    link: https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html
"""

EXAMPLES = r"""
- name: Publish a test message with the certificate from krypton_bootstrap
  soracom.krypton.mqtt_check:
  register: mqtt

- name: Show the connection time
  ansible.builtin.debug:
    msg: "CONNACK after {{ mqtt.connect_ms }} ms over {{ mqtt.tls_version }}, PUBACK after {{ mqtt.publish_ms }} ms"

- name: Publish to a topic that the fleet's IoT policy allows
  soracom.krypton.mqtt_check:
    topic: "devices/{{ inventory_hostname }}/hello"
    payload: '{"hello": "world"}'
    timeout: 20

- name: Only test the connection (check mode connects but does not publish)
  soracom.krypton.mqtt_check:
  check_mode: true
"""

RETURN = r"""
host:
  description: Host the module connected to.
  returned: always
  type: str
  sample: a1b2c3d4e5f6g7-ats.iot.ap-northeast-1.amazonaws.com
port:
  description: TCP port.
  returned: always
  type: int
  sample: 8883
client_id:
  description: MQTT client id used.
  returned: always
  type: str
  sample: '440103000000001'
topic:
  description: Topic published to, or that would be published to in check mode.
  returned: always
  type: str
  sample: krypton/440103000000001/check
qos:
  description: QoS of the publish.
  returned: always
  type: int
  sample: 1
published:
  description: Whether the message was published. With QoS 1 this means the broker sent a PUBACK. V(false) in
    check mode.
  returned: always
  type: bool
  sample: true
connect_ms:
  description: Milliseconds from the start of the MQTT connection (TCP, TLS, CONNECT) to the CONNACK.
  returned: always
  type: int
  sample: 182
publish_ms:
  description: Milliseconds from the PUBLISH to the PUBACK, or to the send for QoS 0. V(null) in check mode.
  returned: always
  type: int
  sample: 41
tls_version:
  description: TLS protocol version negotiated with the broker.
  returned: always
  type: str
  sample: TLSv1.3
tls_cipher:
  description: TLS cipher suite negotiated with the broker.
  returned: always
  type: str
  sample: TLS_AES_256_GCM_SHA384
hold_ms:
  description: Milliseconds the connection stayed open after the PUBACK (in check mode, after the CONNACK).
  returned: success
  type: int
  sample: 1000
step:
  description: Step that failed. One of V(FILES), V(DNS), V(TCP), V(TLS), V(CONNACK), V(PUBACK) and V(HOLD).
  returned: failure
  type: str
  sample: HOLD
"""

import datetime
import json
import os
import socket
import ssl
import threading
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.soracom.krypton.plugins.module_utils import _files

try:
    import paho.mqtt.client as mqtt
except ImportError:
    HAS_PAHO = False
    PAHO_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_PAHO = True
    PAHO_IMPORT_ERROR = None

STATE_FILE = 'krypton.json'
KEEPALIVE_SECONDS = 60
LOOP_INTERVAL = 0.1
LOG_LEVELS_KEPT = (0x04, 0x08)  # MQTT_LOG_WARNING and MQTT_LOG_ERR in paho 1.6 and 2.x

# OpenSSL verify codes (include/openssl/x509_vfy.h) and what they usually mean here.
_VERIFY_CAUSES = {
    2: 'the root CA file does not match the endpoint. An ATS endpoint (-ats.iot) needs Amazon Root CA 1, the legacy '
       'endpoint needs the older VeriSign CA',
    9: 'the system clock is behind, so the server certificate is not valid yet. Enable NTP',
    10: 'the system clock is wrong, or the server certificate has expired. Enable NTP',
    18: 'the root CA file does not match the endpoint. An ATS endpoint (-ats.iot) needs Amazon Root CA 1',
    19: 'the root CA file does not match the endpoint. An ATS endpoint (-ats.iot) needs Amazon Root CA 1',
    20: 'the root CA file does not match the endpoint. An ATS endpoint (-ats.iot) needs Amazon Root CA 1, the legacy '
        'endpoint needs the older VeriSign CA',
    62: 'the host name is not in the server certificate. Check host in krypton.json or the host option',
    64: 'the IP address is not in the server certificate. Connect by host name, as in krypton.json',
}


def client_id_in_use(client_id):
    """Return the likely cause of a broker closing an accepted connection."""
    return ('client id %s is in use by another connection. AWS IoT closes a connection when another one connects '
            'with the same client id, for example the device\'s own MQTT client reconnecting. Stop that client '
            'during the check, or set client_id to an id the IoT policy allows and nothing else uses' % client_id)


class CheckFailed(Exception):
    """A failed step of the check. ``step`` names it and ``cause`` gives the likely reason."""

    def __init__(self, step, message, cause=None):
        super().__init__(message)
        self.step = step
        self.cause = cause

    def full_message(self):
        text = 'MQTT check failed at step %s: %s' % (self.step, self)
        if self.cause:
            text += ' Likely cause: %s.' % self.cause
        return text


def load_settings(params):
    """Merge the options with krypton.json and return the connection settings.

    Raises CheckFailed (step FILES) when a needed value or file is missing.
    """
    src = params['src']
    stored = {}
    state_path = os.path.join(src, STATE_FILE)
    if params['host'] is None or params['client_id'] is None:
        try:
            with open(state_path, 'rb') as handle:
                stored = json.loads(handle.read().decode('utf-8'))
        except FileNotFoundError:
            raise CheckFailed('FILES', '%s does not exist, and host or client_id is not set.' % state_path,
                              'the device has no certificate yet. Run soracom.krypton.krypton_bootstrap first')
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise CheckFailed('FILES', '%s cannot be read as JSON (%s).' % (state_path, exc.__class__.__name__),
                              'the file is damaged. Run soracom.krypton.krypton_bootstrap with force=true')
        if not isinstance(stored, dict):
            raise CheckFailed('FILES', '%s does not contain a JSON object.' % state_path)

    settings = {
        'host': params['host'] or stored.get('host'),
        'port': params['port'],
        'client_id': params['client_id'] or stored.get('client_id'),
        'certificate': params['certificate'] or os.path.join(src, 'certificate.pem'),
        'private_key': params['private_key'] or os.path.join(src, 'private.key'),
        'root_ca': params['root_ca'] or os.path.join(src, 'root-ca.pem'),
        'qos': params['qos'],
        'timeout': params['timeout'],
        'hold': params['hold'],
    }
    for field in ('host', 'client_id'):
        if not isinstance(settings[field], str) or not settings[field]:
            raise CheckFailed('FILES', '%s is not set and %s has no %s.' % (field, state_path, field))
    settings['topic'] = params['topic'] or 'krypton/%s/check' % settings['client_id']
    if params['payload'] is None:
        settings['payload'] = json.dumps({
            'client_id': settings['client_id'],
            'time': datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
            'source': 'soracom.krypton.mqtt_check',
        }, sort_keys=True)
    else:
        settings['payload'] = params['payload']
    return settings


def build_tls_context(certificate, private_key, root_ca):
    """Return an SSLContext that verifies the server against ``root_ca`` and presents the client certificate."""
    for label, path in (('certificate', certificate), ('private_key', private_key), ('root_ca', root_ca)):
        if not os.path.isfile(path):
            raise CheckFailed('FILES', '%s file %s does not exist.' % (label, path),
                              'run soracom.krypton.krypton_bootstrap, or set %s' % label)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=root_ca)
    except (ssl.SSLError, OSError) as exc:
        raise CheckFailed('FILES', 'root CA file %s cannot be loaded (%s).' % (root_ca, _ssl_reason(exc)))
    try:
        context.load_cert_chain(certfile=certificate, keyfile=private_key)
    except (ssl.SSLError, OSError) as exc:
        reason = _ssl_reason(exc)
        cause = None
        if 'KEY_VALUES_MISMATCH' in reason.upper():
            cause = 'the private key does not belong to the certificate. Run soracom.krypton.krypton_bootstrap'
        raise CheckFailed('FILES', 'certificate %s with key %s cannot be loaded (%s).'
                          % (certificate, private_key, reason), cause)
    return context


def _ssl_reason(exc):
    """Return the short OpenSSL reason (for example KEY_VALUES_MISMATCH) or the OS error text."""
    reason = getattr(exc, 'reason', None)
    if reason:
        return str(reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def resolve(host, port, timeout, getaddrinfo=None):
    """Return the getaddrinfo entries for ``host``, giving up after ``timeout`` seconds."""
    outcome = {}
    getaddrinfo = getaddrinfo or socket.getaddrinfo

    def lookup():
        try:
            outcome['addresses'] = getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except (socket.gaierror, OSError, UnicodeError) as exc:
            outcome['error'] = exc

    worker = threading.Thread(target=lookup, name='resolve-%s' % host)
    worker.daemon = True
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise CheckFailed('DNS', 'resolving %s timed out after %d s.' % (host, timeout),
                          'the DNS servers of the cellular connection do not respond')
    if 'error' in outcome or not outcome.get('addresses'):
        raise CheckFailed('DNS', 'resolving %s failed (%s).' % (host, outcome.get('error', 'no address')),
                          'the host name is wrong, or DNS on the cellular connection does not work')
    return outcome['addresses']


def probe_tcp(addresses, host, port, timeout):
    """Open and close a TCP connection to the first address that accepts one."""
    errors = []
    for family, socktype, proto, dummy, sockaddr in addresses:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sockaddr[0]
        except OSError as exc:
            errors.append('%s: %s' % (sockaddr[0], 'timed out' if isinstance(exc, socket.timeout) else exc))
        finally:
            sock.close()
    raise CheckFailed('TCP', 'no TCP connection to %s port %d (%s).' % (host, port, '; '.join(errors)),
                      'a firewall or the route blocks outgoing port %d, or the host is not an MQTT endpoint' % port)


def _reason_code_value(code):
    """Return the numeric value of a paho 1.6 int or paho 2.x ReasonCode."""
    return int(getattr(code, 'value', code))


def _reason_code_text(code):
    if hasattr(code, 'getName'):
        return '%s (%d)' % (code.getName(), _reason_code_value(code))
    return '%s (%d)' % (mqtt.connack_string(code), code)


class MqttSession:
    """Runs one paho-mqtt client in the calling thread and records its events.

    The network loop runs through ``client.loop()`` here instead of ``loop_start()``,
    so TLS errors that paho 1.6 raises from the loop reach this code.
    """

    def __init__(self, client_id, tls_context, timeout):
        self.timeout = timeout
        self.connack = None
        self.disconnected = None
        self.published_mids = set()
        self.log = []
        self.loop_error = None
        if hasattr(mqtt, 'CallbackAPIVersion'):
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                      clean_session=True, protocol=mqtt.MQTTv311)
        else:
            self.client = mqtt.Client(client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
        if hasattr(type(self.client), 'connect_timeout'):
            self.client.connect_timeout = timeout
        self.client.tls_set_context(tls_context)
        # paho 1.6 passes (client, userdata, flags, rc) and (client, userdata, rc) and (client, userdata, mid);
        # paho 2.x with callback API version 2 adds reason codes and properties.
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_log = self._on_log

    def _on_connect(self, client, userdata, flags, code, *rest):
        self.connack = code

    def _on_disconnect(self, client, userdata, *args):
        self.disconnected = args[1] if len(args) >= 2 else args[0]

    def _on_publish(self, client, userdata, mid, *rest):
        self.published_mids.add(mid)

    def _on_log(self, client, userdata, level, message):
        if level in LOG_LEVELS_KEPT:
            self.log.append(str(message))
            del self.log[:-5]

    def run_until(self, condition, deadline):
        """Run the network loop until ``condition()`` holds, the connection ends or ``deadline`` passes."""
        while not condition():
            if self.disconnected is not None or self.loop_error is not None:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                code = self.client.loop(timeout=min(LOOP_INTERVAL, remaining))
            except (ssl.SSLError, OSError) as exc:
                self.loop_error = exc
                return
            if _reason_code_value(code) != 0 and not condition():
                self.loop_error = 'paho-mqtt reported: %s' % mqtt.error_string(_reason_code_value(code)).rstrip('.')
                return

    def failure_detail(self):
        parts = []
        if self.loop_error is not None:
            if isinstance(self.loop_error, OSError):
                parts.append(_ssl_reason(self.loop_error))
            else:
                parts.append(str(self.loop_error))
        if self.disconnected is not None:
            parts.append('disconnect reason %s' % self.disconnected)
        parts.extend(self.log[-2:])
        return '; '.join(part for part in parts if part)

    def tls_details(self):
        sock = self.client.socket()
        if sock is None or not hasattr(sock, 'version'):
            return None, None
        cipher = sock.cipher()
        return sock.version(), cipher[0] if cipher else None

    def close(self):
        try:
            if self.connack is not None and self.disconnected is None:
                self.client.disconnect()
                deadline = time.monotonic() + 1.0
                self.run_until(lambda: self.disconnected is not None, deadline)
        except (ssl.SSLError, OSError, ValueError):
            pass
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def connect(session, host, port):
    """Connect and wait for the CONNACK. Returns milliseconds to the CONNACK."""
    started = time.monotonic()
    try:
        session.client.connect(host, port, keepalive=KEEPALIVE_SECONDS)
    except ssl.SSLCertVerificationError as exc:
        default_cause = 'the root CA file does not match the endpoint, or the system clock is wrong'
        cause = _VERIFY_CAUSES.get(exc.verify_code, default_cause)
        raise CheckFailed('TLS', 'the server certificate of %s failed verification (%s).'
                          % (host, exc.verify_message or _ssl_reason(exc)), cause)
    except ssl.SSLError as exc:
        reason = _ssl_reason(exc)
        # A rejected client certificate arrives as an alert (TLS 1.2) or, when paho's CONNECT
        # write follows the TLS 1.3 handshake, as an unexpected EOF.
        if 'ALERT' in reason.upper() or isinstance(exc, ssl.SSLEOFError):
            cause = ('the server rejected the client certificate. It is not registered or not ACTIVE in AWS IoT, or '
                     'the endpoint belongs to another AWS account or region')
        elif 'WRONG_VERSION_NUMBER' in reason.upper():
            cause = 'port %d does not speak TLS. Check the host and port' % port
        else:
            cause = 'the server and the client share no TLS version or cipher, or the connection was disturbed'
        raise CheckFailed('TLS', 'the TLS handshake with %s failed (%s).' % (host, reason), cause)
    except socket.timeout:
        raise CheckFailed('TLS', 'the TLS handshake with %s timed out.' % host,
                          'the server is not an MQTT over TLS endpoint, or the link is too slow')
    except OSError as exc:
        raise CheckFailed('TLS', 'the connection to %s failed during the TLS handshake (%s).' % (host, exc),
                          'the server closed the connection: the client certificate is not registered or not ACTIVE')

    deadline = started + session.timeout
    session.run_until(lambda: session.connack is not None, deadline)
    elapsed_ms = int(round((time.monotonic() - started) * 1000))

    if session.connack is None:
        if session.disconnected is not None or session.loop_error is not None:
            raise CheckFailed('CONNACK', 'the broker closed the connection without a CONNACK (%s).'
                              % session.failure_detail(),
                              'the certificate is not registered or not ACTIVE in AWS IoT, the client id is in use '
                              'by another connection, or the IoT policy does not allow iot:Connect for this client id')
        raise CheckFailed('CONNACK', 'no CONNACK within %d s.' % session.timeout,
                          'the broker is overloaded or the link drops packets')
    if _reason_code_value(session.connack) != 0:
        raise CheckFailed('CONNACK', 'the broker refused the connection: %s.' % _reason_code_text(session.connack),
                          'the IoT policy does not allow iot:Connect for this client id, or the certificate is not '
                          'ACTIVE')
    return elapsed_ms


def publish(session, topic, payload, qos, client_id):
    """Publish one message and wait for the PUBACK (QoS 1) or the send (QoS 0). Returns milliseconds."""
    started = time.monotonic()
    info = session.client.publish(topic, payload, qos=qos)
    if _reason_code_value(info.rc) != 0:
        raise CheckFailed('PUBACK', 'paho could not queue the message: %s.'
                          % mqtt.error_string(_reason_code_value(info.rc)))
    session.run_until(lambda: info.mid in session.published_mids, started + session.timeout)
    elapsed_ms = int(round((time.monotonic() - started) * 1000))
    if info.mid in session.published_mids:
        return elapsed_ms
    cause = ('the IoT policy does not allow iot:Publish on topic %s (AWS IoT then closes the connection or sends no '
             'PUBACK)' % topic)
    if session.disconnected is not None or session.loop_error is not None:
        raise CheckFailed('PUBACK', 'the broker closed the connection before the PUBACK (%s).'
                          % session.failure_detail(), '%s, or the %s' % (cause, client_id_in_use(client_id)))
    raise CheckFailed('PUBACK', 'no PUBACK within %d s.' % session.timeout, cause)


def hold_connection(session, seconds, client_id, after):
    """Keep the connection open for ``seconds`` and fail when the broker closes it. Returns milliseconds held.

    ``after`` names the last step that succeeded, for the message.
    """
    started = time.monotonic()
    session.run_until(lambda: False, started + seconds)
    held_ms = int(round((time.monotonic() - started) * 1000))
    if session.disconnected is not None or session.loop_error is not None:
        raise CheckFailed('HOLD', 'the broker closed the connection %.1f s after the %s (%s).'
                          % (held_ms / 1000.0, after, session.failure_detail()), client_id_in_use(client_id))
    return held_ms


def run_check(settings, check_mode):
    """Run every step and return the result dict. Raises CheckFailed."""
    tls_context = build_tls_context(settings['certificate'], settings['private_key'], settings['root_ca'])
    addresses = resolve(settings['host'], settings['port'], settings['timeout'])
    probe_tcp(addresses, settings['host'], settings['port'], settings['timeout'])

    session = MqttSession(settings['client_id'], tls_context, settings['timeout'])
    try:
        connect_ms = connect(session, settings['host'], settings['port'])
        tls_version, tls_cipher = session.tls_details()
        publish_ms = None
        if not check_mode:
            publish_ms = publish(session, settings['topic'], settings['payload'], settings['qos'],
                                 settings['client_id'])
        hold_ms = hold_connection(session, settings['hold'], settings['client_id'],
                                  'CONNACK' if check_mode else 'PUBACK' if settings['qos'] else 'PUBLISH')
    finally:
        session.close()

    return {
        'host': settings['host'],
        'port': settings['port'],
        'client_id': settings['client_id'],
        'topic': settings['topic'],
        'qos': settings['qos'],
        'published': publish_ms is not None,
        'connect_ms': connect_ms,
        'publish_ms': publish_ms,
        'tls_version': tls_version,
        'tls_cipher': tls_cipher,
        'hold_ms': hold_ms,
    }


# Fields of a successful check that the record keeps.
RECORD_FIELDS = ('host', 'port', 'client_id', 'topic', 'published', 'connect_ms', 'publish_ms', 'hold_ms',
                 'tls_version')
RECORD_FORMAT = 1


def build_record(result=None, failure=None, now=None):
    """Return the record of one check: the result dict of a success, or the CheckFailed of a failure."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    record = dict((field, (result or {}).get(field)) for field in RECORD_FIELDS) if result else {}
    record.update(
        format=RECORD_FORMAT,
        checked_at=now.strftime('%Y-%m-%dT%H:%M:%SZ'),
        result='failed' if failure is not None else 'ok',
        message=failure.full_message() if failure is not None else None,
        step=failure.step if failure is not None else None,
    )
    return record


def write_record(path, record):
    """Write ``record`` as JSON to ``path`` atomically. Return an error message, or None."""
    try:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            _files.ensure_directory(parent, 0o755)
        content = (json.dumps(record, indent=2, sort_keys=True) + '\n').encode('utf-8')
        _files.write_file_atomic(path, content, mode=0o644)
    except _files.FileWriteError as exc:
        return 'Failed to write the record %s: %s' % (path, exc)
    return None


def validate_params(params):
    if not 1 <= params['port'] <= 65535:
        return 'port must be between 1 and 65535, got %d.' % params['port']
    if params['timeout'] < 1:
        return 'timeout must be at least 1 second, got %d.' % params['timeout']
    if not 0 <= params['hold'] <= 300:
        return 'hold must be between 0 and 300 seconds, got %s.' % params['hold']
    topic = params['topic']
    if topic is not None and (not topic or '+' in topic or '#' in topic):
        return 'topic must be a non-empty topic name without the wildcards + and #, got %r.' % topic
    for field in ('host', 'client_id'):
        if params[field] is not None and not params[field].strip():
            return '%s must not be empty.' % field
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path', default='/etc/soracom/krypton'),
            host=dict(type='str'),
            port=dict(type='int', default=8883),
            client_id=dict(type='str'),
            certificate=dict(type='path'),
            private_key=dict(type='path', no_log=False),
            root_ca=dict(type='path'),
            topic=dict(type='str'),
            payload=dict(type='str'),
            qos=dict(type='int', default=1, choices=[0, 1]),
            timeout=dict(type='int', default=10),
            hold=dict(type='float', default=1.0),
            record=dict(type='path'),
        ),
        supports_check_mode=True,
    )

    error = validate_params(module.params)
    if error:
        module.fail_json(msg=error)
    if not HAS_PAHO:
        module.fail_json(msg=missing_required_lib('paho-mqtt', reason='to connect to AWS IoT Core'),
                         exception=PAHO_IMPORT_ERROR)

    record_path = module.params['record'] if not module.check_mode else None
    try:
        settings = load_settings(module.params)
        result = run_check(settings, module.check_mode)
    except CheckFailed as exc:
        record_error = write_record(record_path, build_record(failure=exc)) if record_path else None
        module.fail_json(msg=exc.full_message() + (' ' + record_error if record_error else ''), step=exc.step)
    if record_path:
        record_error = write_record(record_path, build_record(result=result))
        if record_error:
            module.fail_json(msg='The MQTTS check passed. ' + record_error, **result)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
