# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""MQTT 3.1.1 broker that emulates the AWS IoT Core data plane in the lab.

Clients connect over TLS with a client certificate signed by the lab's device CA. The broker
accepts a connection only while the AWS stand-in (moto) reports that certificate as ACTIVE, and
authorizes iot:Connect, iot:Publish, iot:Subscribe and iot:Receive with the AWS IoT policies
attached to the certificate (authorization.py). It supports what AWS IoT Core supports for
MQTT 3.1.1 clients: QoS 0 and 1, wildcard subscriptions, last will messages, and one connection
per client id. An HTTP admin API lists the connections and recent publishes for tests.

Run: python broker.py --listen HOST:PORT --cert F --key F --client-ca F --aws-endpoint URL
     --region R --admin HOST:PORT --log F [--no-authorization], with AWS_ACCESS_KEY_ID and
     AWS_SECRET_ACCESS_KEY set.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import datetime
import hashlib
import json
import logging
import os
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from authorization import AllowAllAuthorizer, AuthorizationContext, PolicyAuthorizer, PolicyRegistry
from mqtt_codec import (
    PINGRESP,
    SUBACK_FAILURE,
    ConnackCode,
    ConnectPacket,
    PacketType,
    ProtocolError,
    PublishPacket,
    Will,
    encode_connack,
    encode_packet_id_ack,
    encode_publish,
    encode_suback,
    expect_empty_body,
    parse_connect,
    parse_puback,
    parse_publish,
    parse_subscribe,
    parse_unsubscribe,
    read_packet,
    topic_matches,
)

LOG = logging.getLogger("krypton_lab_broker")

# AWS IoT Core message broker limits. Sources: the AWS IoT Core quotas page (payload, in-flight
# messages) and the AWS IoT Device SDK v2 option AwsIotCoreDefaults (client id, topic, slashes,
# filters per SUBSCRIBE). AWS caps the keepalive interval at 1200 s.
MAX_PAYLOAD_BYTES = 128 * 1024
MAX_CLIENT_ID_BYTES = 128
MAX_TOPIC_BYTES = 256
MAX_TOPIC_SLASHES = 7
MAX_FILTERS_PER_SUBSCRIBE = 8
MAX_KEEPALIVE_SECONDS = 1200
MAX_OUTBOUND_INFLIGHT = 100
# Basic Ingest topics do not count this prefix against MAX_TOPIC_SLASHES.
BASIC_INGEST_PREFIX = "$aws/rules/"

# Room for the topic, client id, user name and password fields around a maximum payload.
MAX_REMAINING_LENGTH = MAX_PAYLOAD_BYTES + 64 * 1024
MAX_WRITE_BUFFER_BYTES = 1024 * 1024
TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10.0
CERTIFICATE_CACHE_SECONDS = 1.0
# Characters of a UTF-8 payload, or bytes of a binary payload, that a log line shows.
PAYLOAD_LOG_PREVIEW_LENGTH = 200
ADMIN_CALL_TIMEOUT_SECONDS = 5.0


class ConnectionClosed(Exception):
    """Client request that AWS IoT Core rejects by closing the connection."""


class RegistryError(Exception):
    """Failed DescribeCertificate call to the AWS stand-in."""


def utc_now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def payload_preview(payload: bytes) -> str:
    """Return the repr of the start of a payload, as text when it is UTF-8, for a log line."""
    suffix = f"... ({len(payload)} bytes)" if len(payload) > PAYLOAD_LOG_PREVIEW_LENGTH else ""
    try:
        return repr(payload.decode("utf-8")[:PAYLOAD_LOG_PREVIEW_LENGTH]) + suffix
    except UnicodeDecodeError:
        return repr(payload[:PAYLOAD_LOG_PREVIEW_LENGTH]) + suffix


def payload_fields(payload: bytes) -> dict[str, str]:
    """Return the payload as UTF-8 text when it decodes, and as base64 otherwise."""
    try:
        return {"payload": payload.decode("utf-8"), "payload_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"payload": base64.b64encode(payload).decode("ascii"), "payload_encoding": "base64"}


def check_topic_limits(topic: str, kind: str) -> None:
    """Raise ConnectionClosed for a topic name or filter over the AWS IoT Core size or depth limit."""
    size = len(topic.encode("utf-8"))
    if size > MAX_TOPIC_BYTES:
        raise ConnectionClosed(f"{kind} of {size} bytes exceeds the AWS IoT limit of {MAX_TOPIC_BYTES} bytes")
    counted = topic
    if topic.startswith(BASIC_INGEST_PREFIX):
        # "$aws/rules/<rule name>/" is not counted.
        counted = topic[len(BASIC_INGEST_PREFIX):].partition("/")[2]
    if counted.count("/") > MAX_TOPIC_SLASHES:
        raise ConnectionClosed(f"{kind} {topic!r} has more than {MAX_TOPIC_SLASHES} slashes (AWS IoT limit)")


# ---------------------------------------------------------------------------------------------
# Certificate registry: the AWS stand-in's view of device certificates.


@dataclass(frozen=True)
class CertificateRecord:
    certificate_id: str
    status: str | None  # None when the certificate is not registered
    arn: str | None

    @property
    def is_active(self) -> bool:
        return self.status == "ACTIVE"

    def describe(self) -> str:
        if self.status is None:
            return f"certificate {self.certificate_id} is not registered"
        return f"certificate {self.certificate_id} is {self.status}"


def create_iot_client(endpoint_url: str, region: str):
    """Create a boto3 IoT client with the admin keys from the environment.

    The keys are passed explicitly so that botocore never falls back to other credential
    sources such as the EC2 instance metadata address.
    """
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        raise ValueError("AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not set: set both to admin keys of the AWS stand-in")
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        region_name=region,
    )
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
    return session.client("iot", endpoint_url=endpoint_url, config=config)


class CertificateRegistry:
    """Certificate status from DescribeCertificate, each response cached for at most cache_seconds."""

    def __init__(self, iot_client, cache_seconds: float = CERTIFICATE_CACHE_SECONDS) -> None:
        self._client = iot_client
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, CertificateRecord]] = {}

    async def lookup(self, certificate_id: str) -> CertificateRecord:
        cached = self._cache.get(certificate_id)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        # A cached response's age counts from before its request, so it never exceeds cache_seconds.
        requested_at = time.monotonic()
        record = await asyncio.to_thread(self._describe, certificate_id)
        self._store(certificate_id, requested_at, record)
        return record

    def _store(self, certificate_id: str, requested_at: float, record: CertificateRecord) -> None:
        if len(self._cache) >= 1024:
            expired = [key for key, (stored_at, _) in self._cache.items() if requested_at - stored_at >= self._cache_seconds]
            for key in expired:
                del self._cache[key]
        self._cache[certificate_id] = (requested_at, record)

    def _describe(self, certificate_id: str) -> CertificateRecord:
        try:
            response = self._client.describe_certificate(certificateId=certificate_id)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ResourceNotFoundException":
                return CertificateRecord(certificate_id, None, None)
            raise RegistryError(f"DescribeCertificate failed: {error.get('Code')}: {error.get('Message')}") from None
        except BotoCoreError as exc:
            raise RegistryError(f"DescribeCertificate failed: {exc}") from None
        description = response["certificateDescription"]
        return CertificateRecord(certificate_id, description["status"], description["certificateArn"])


# ---------------------------------------------------------------------------------------------
# Sessions and routing.


@dataclass
class Session:
    client_id: str
    certificate_id: str
    context: AuthorizationContext
    peer_host: str
    peer_port: int
    keepalive: int
    clean_session: bool
    will: Will | None
    writer: asyncio.StreamWriter
    connected_at: str = field(default_factory=utc_now_iso)
    subscriptions: dict[str, int] = field(default_factory=dict)
    inflight: set[int] = field(default_factory=set)
    close_reason: str | None = None
    dropped_deliveries: int = 0
    denied_deliveries: int = 0
    _next_packet_id: int = 1

    @property
    def peer(self) -> str:
        return format_address(self.peer_host, self.peer_port)

    @property
    def is_closing(self) -> bool:
        return self.close_reason is not None or self.writer.transport.is_closing()

    def send(self, data: bytes) -> None:
        """Queue a packet, closing the connection when the client has stopped reading."""
        if self.is_closing:
            return
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER_BYTES:
            self.abort(f"client is not reading: more than {MAX_WRITE_BUFFER_BYTES} bytes wait to be sent")
            return
        self.writer.write(data)

    def deliver(self, topic: str, payload: bytes, qos: int) -> None:
        """Send a PUBLISH to this subscriber, or drop it while the subscriber cannot take more."""
        if self.is_closing:
            return
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER_BYTES:
            self._drop_delivery(topic, "write buffer is full")
            return
        packet_id = None
        if qos:
            # NOTE: AWS IoT Core sends no new messages until the client acknowledges some, and
            # does not document whether it keeps them meanwhile. This broker drops them.
            if len(self.inflight) >= MAX_OUTBOUND_INFLIGHT:
                self._drop_delivery(topic, f"{MAX_OUTBOUND_INFLIGHT} QoS 1 messages wait for PUBACK")
                return
            packet_id = self._allocate_packet_id()
            self.inflight.add(packet_id)
        self.writer.write(encode_publish(topic, payload, qos, packet_id))

    def abort(self, reason: str) -> None:
        """Close the connection at once. The session's reader then ends with this reason."""
        if self.close_reason is None:
            self.close_reason = reason
        self.writer.transport.abort()

    def _allocate_packet_id(self) -> int:
        # At most MAX_OUTBOUND_INFLIGHT of the 65535 identifiers are in use, so this ends quickly.
        while self._next_packet_id in self.inflight:
            self._next_packet_id = self._next_packet_id % 65535 + 1
        packet_id = self._next_packet_id
        self._next_packet_id = packet_id % 65535 + 1
        return packet_id

    def _drop_delivery(self, topic: str, reason: str) -> None:
        self.dropped_deliveries += 1
        if self.dropped_deliveries == 1 or self.dropped_deliveries % 100 == 0:
            LOG.warning(
                "dropped delivery client_id=%r topic=%r: %s (%d dropped so far)",
                self.client_id, topic, reason, self.dropped_deliveries,
            )

    def to_json(self) -> dict:
        return {
            "client_id": self.client_id,
            "certificate_id": self.certificate_id,
            "peer_address": self.peer_host,
            "peer_port": self.peer_port,
            "connected_at": self.connected_at,
            "keepalive": self.keepalive,
            "clean_session": self.clean_session,
            "subscriptions": [{"topic_filter": f, "qos": q} for f, q in self.subscriptions.items()],
        }


class StartTlsServerProtocol(asyncio.StreamReaderProtocol):
    """Stream protocol that leaves incoming bytes in the socket until the handler starts TLS.

    Without the pause, the client's TLS ClientHello could reach the plain StreamReader before
    StreamWriter.start_tls() runs, and the handshake would then never finish.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.pause_reading()
        super().connection_made(transport)

    def eof_received(self) -> bool:
        # The base class keeps a plain connection half open after EOF, and asyncio warns when
        # a protocol requests that over TLS. Close the connection in both cases.
        super().eof_received()
        return False


class Broker:
    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        registry: CertificateRegistry,
        authorizer: PolicyAuthorizer | AllowAllAuthorizer,
        max_messages: int,
        recheck_interval: float,
    ) -> None:
        self.ssl_context = ssl_context
        self.registry = registry
        self.authorizer = authorizer
        self.recheck_interval = recheck_interval
        self.sessions: dict[str, Session] = {}
        self.messages: collections.deque[dict] = collections.deque(maxlen=max_messages)
        self.shutting_down = False

    def protocol_factory(self) -> asyncio.Protocol:
        return StartTlsServerProtocol(asyncio.StreamReader(), self.handle_connection)

    # -- connection setup ---------------------------------------------------------------------

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_host, peer_port = (writer.get_extra_info("peername") or ("unknown", 0))[:2]
        peer = format_address(peer_host, peer_port)
        try:
            session = await self._open_session(reader, writer, peer_host, peer_port)
        except Exception:
            LOG.exception("unexpected error while accepting peer=%s", peer)
            writer.transport.abort()
            return
        if session is None:
            return
        try:
            await self._serve(session, reader)
        except Exception:
            LOG.exception("unexpected error in session client_id=%r", session.client_id)
            session.abort("internal broker error")
        finally:
            await self._end_session(session)

    async def _open_session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer_host: str, peer_port: int
    ) -> Session | None:
        """Run the TLS handshake, read CONNECT and check the certificate.

        Returns the registered session after CONNACK 0, or None after closing a refused connection.
        """
        peer = format_address(peer_host, peer_port)
        try:
            await writer.start_tls(self.ssl_context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_SECONDS)
        except OSError as exc:  # ssl.SSLError, ConnectionError and TimeoutError are all OSError
            LOG.info("refused peer=%s: TLS handshake failed: %s", peer, exc)
            return None

        certificate_der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        # AWS IoT certificate ids are the SHA-256 of the DER certificate (moto with iot.use_valid_cert).
        certificate_id = hashlib.sha256(certificate_der).hexdigest()

        try:
            connect = await asyncio.wait_for(self._read_connect(reader), CONNECT_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            return self._refuse(writer, peer, certificate_id, None, f"no CONNECT within {CONNECT_TIMEOUT_SECONDS:g} s")
        except asyncio.IncompleteReadError:
            return self._refuse(writer, peer, certificate_id, None, "connection closed before CONNECT")
        except (ProtocolError, OSError) as exc:
            return self._refuse(writer, peer, certificate_id, None, f"invalid CONNECT: {exc}")
        client_id = connect.client_id or None

        # AWS IoT Core authenticates the certificate before it reads CONNECT, so an unregistered or
        # inactive certificate gets no CONNACK even when CONNECT is otherwise wrong.
        try:
            certificate = await self.registry.lookup(certificate_id)
        except RegistryError as exc:
            return self._refuse(writer, peer, certificate_id, client_id, f"certificate lookup failed: {exc}", logging.ERROR)
        if not certificate.is_active:
            return self._refuse(writer, peer, certificate_id, client_id, certificate.describe())

        if not connect.is_mqtt_3_1_1:
            reason = f"unsupported protocol {connect.protocol_name!r} level {connect.protocol_level}, only MQTT 3.1.1"
            return self._reject_with_connack(writer, peer, certificate_id, client_id, ConnackCode.UNACCEPTABLE_PROTOCOL_VERSION, reason)
        if not connect.client_id:
            return self._reject_with_connack(writer, peer, certificate_id, client_id, ConnackCode.IDENTIFIER_REJECTED, "empty client id")
        client_id_size = len(connect.client_id.encode("utf-8"))
        if client_id_size > MAX_CLIENT_ID_BYTES:
            reason = f"client id of {client_id_size} bytes exceeds the AWS IoT limit of {MAX_CLIENT_ID_BYTES} bytes"
            return self._reject_with_connack(writer, peer, certificate_id, client_id, ConnackCode.IDENTIFIER_REJECTED, reason)
        if connect.will is not None:
            try:
                self._check_will(connect.will)
            except ConnectionClosed as exc:
                return self._refuse(writer, peer, certificate_id, client_id, f"invalid will: {exc}")

        context = AuthorizationContext(connect.client_id, certificate_id, certificate.arn, peer_host)
        # A refused client never reaches _register_session, so it cannot take over the client id.
        if not await self._authorize("iot:Connect", "client", connect.client_id, context):
            return self._refuse(writer, peer, certificate_id, client_id, "iot:Connect not authorized")

        return self._register_session(connect, context, writer, peer_host, peer_port)

    async def _read_connect(self, reader: asyncio.StreamReader) -> ConnectPacket:
        packet = await read_packet(reader, MAX_REMAINING_LENGTH)
        if packet.packet_type != PacketType.CONNECT:
            raise ProtocolError(f"first packet is {packet.packet_type.name}, expected CONNECT ([MQTT-3.1.0-1])")
        return parse_connect(packet.body)

    def _check_will(self, will: Will) -> None:
        if will.qos == 2:
            raise ConnectionClosed("will QoS 2 is not supported by AWS IoT Core")
        check_topic_limits(will.topic, "will topic")
        if len(will.payload) > MAX_PAYLOAD_BYTES:
            raise ConnectionClosed(f"will payload of {len(will.payload)} bytes exceeds {MAX_PAYLOAD_BYTES} bytes")

    def _refuse(
        self, writer, peer: str, certificate_id: str, client_id: str | None, reason: str, level: int = logging.INFO
    ) -> None:
        """Close a connection without CONNACK, as AWS IoT Core does for a refused certificate."""
        LOG.log(level, "refused peer=%s client_id=%r certificate_id=%s: %s", peer, client_id, certificate_id, reason)
        writer.transport.abort()

    def _reject_with_connack(self, writer, peer: str, certificate_id: str, client_id: str | None, code: ConnackCode, reason: str) -> None:
        LOG.info("refused peer=%s client_id=%r certificate_id=%s with CONNACK %d: %s", peer, client_id, certificate_id, code, reason)
        writer.write(encode_connack(code))
        writer.close()  # sends the CONNACK before closing

    def _register_session(self, connect: ConnectPacket, context: AuthorizationContext, writer, peer_host: str, peer_port: int) -> Session:
        # Keepalive 0 means no timeout ([MQTT-3.1.2-10]).
        # NOTE: AWS IoT Core raises intervals below 30 s to 30 s. The lab keeps the client's value
        # so that tests can observe a keepalive timeout quickly.
        keepalive = min(connect.keepalive, MAX_KEEPALIVE_SECONDS)
        session = Session(
            client_id=connect.client_id,
            certificate_id=context.certificate_id,
            context=context,
            peer_host=peer_host,
            peer_port=peer_port,
            keepalive=keepalive,
            clean_session=connect.clean_session,
            will=connect.will,
            writer=writer,
        )
        previous = self.sessions.get(session.client_id)
        if previous is not None:
            previous.abort(f"client id taken over by a new connection from peer={session.peer}")
        self.sessions[session.client_id] = session
        # NOTE: AWS IoT Core supports persistent sessions (clean session 0), but this broker keeps
        # none, so CONNACK never reports a present session.
        session.send(encode_connack(ConnackCode.ACCEPTED, session_present=False))
        LOG.info(
            "connected client_id=%r certificate_id=%s peer=%s keepalive=%d clean_session=%d",
            session.client_id, session.certificate_id, session.peer, keepalive, connect.clean_session,
        )
        return session

    # -- packet loop --------------------------------------------------------------------------

    async def _serve(self, session: Session, reader: asyncio.StreamReader) -> None:
        """Handle packets until the connection ends, leaving the reason in session.close_reason."""
        timeout = session.keepalive * 1.5 if session.keepalive else None
        while not session.is_closing:
            try:
                packet = await asyncio.wait_for(read_packet(reader, MAX_REMAINING_LENGTH), timeout)
            except asyncio.TimeoutError:
                session.abort(f"keepalive timeout: no packet within 1.5 x {session.keepalive} s")
                return
            except asyncio.IncompleteReadError:
                session.abort("connection closed by the client without DISCONNECT")
                return
            except OSError as exc:
                session.abort(f"connection error: {exc}")
                return
            except ProtocolError as exc:
                session.abort(f"protocol error: {exc}")
                return

            if packet.packet_type == PacketType.DISCONNECT:
                # DISCONNECT discards the will message ([MQTT-3.14.4-3]).
                session.will = None
                session.close_reason = "DISCONNECT from the client"
                session.writer.close()
                return
            try:
                await self._dispatch(session, packet)
            except ProtocolError as exc:
                session.abort(f"protocol error: {exc}")
            except ConnectionClosed as exc:
                session.abort(str(exc))

    async def _dispatch(self, session: Session, packet) -> None:
        packet_type = packet.packet_type
        if packet_type == PacketType.PUBLISH:
            await self._handle_publish(session, parse_publish(packet.flags, packet.body))
        elif packet_type == PacketType.PUBACK:
            session.inflight.discard(parse_puback(packet.body))
        elif packet_type == PacketType.SUBSCRIBE:
            await self._handle_subscribe(session, packet.body)
        elif packet_type == PacketType.UNSUBSCRIBE:
            packet_id, topic_filters = parse_unsubscribe(packet.body)
            for topic_filter in topic_filters:
                session.subscriptions.pop(topic_filter, None)
            LOG.info("unsubscribed client_id=%r topic_filters=%r", session.client_id, topic_filters)
            session.send(encode_packet_id_ack(PacketType.UNSUBACK, packet_id))
        elif packet_type == PacketType.PINGREQ:
            expect_empty_body(packet)
            session.send(PINGRESP)
        elif packet_type in (PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP):
            raise ConnectionClosed(f"{packet_type.name}: QoS 2 is not supported by AWS IoT Core")
        elif packet_type == PacketType.CONNECT:
            raise ProtocolError("second CONNECT on one connection ([MQTT-3.1.0-2])")
        else:
            raise ProtocolError(f"{packet_type.name} is sent only by servers")

    async def _handle_publish(self, session: Session, publish: PublishPacket) -> None:
        if publish.qos == 2:
            raise ConnectionClosed(f"PUBLISH with QoS 2 to {publish.topic!r}: QoS 2 is not supported by AWS IoT Core")
        check_topic_limits(publish.topic, "topic")
        if len(publish.payload) > MAX_PAYLOAD_BYTES:
            raise ConnectionClosed(
                f"PUBLISH payload of {len(publish.payload)} bytes to {publish.topic!r} exceeds the AWS IoT limit of {MAX_PAYLOAD_BYTES} bytes"
            )
        # AWS IoT Core closes an MQTT 3.1.1 connection that publishes without permission.
        if not await self._authorize_publish(session.context, publish.topic, publish.retain):
            raise ConnectionClosed(f"PUBLISH to {publish.topic!r} not authorized")

        # The retain flag is accepted and ignored: the lab keeps no retained messages.
        await self.publish(session.client_id, publish.topic, publish.payload, publish.qos, publish.retain)
        if publish.qos == 1:
            session.send(encode_packet_id_ack(PacketType.PUBACK, publish.packet_id))

    async def _handle_subscribe(self, session: Session, body: bytes) -> None:
        packet_id, requests = parse_subscribe(body)
        # AWS IoT Core does not document how it responds to a SUBSCRIBE over these limits, so
        # this broker closes the connection as it does for other invalid requests.
        if len(requests) > MAX_FILTERS_PER_SUBSCRIBE:
            raise ConnectionClosed(f"SUBSCRIBE with {len(requests)} topic filters, AWS IoT allows {MAX_FILTERS_PER_SUBSCRIBE}")
        return_codes = []
        for topic_filter, requested_qos in requests:
            # AWS IoT Core sends no SUBACK when QoS 2 is requested.
            if requested_qos == 2:
                raise ConnectionClosed(f"SUBSCRIBE with QoS 2 to {topic_filter!r}: QoS 2 is not supported by AWS IoT Core")
            check_topic_limits(topic_filter, "topic filter")
            # NOTE: SUBACK 0x80 for a filter the policies do not allow is the lab's reading of AWS
            # IoT Core's MQTT 3.1.1 behaviour, not checked against AWS.
            if await self._authorize("iot:Subscribe", "topicfilter", topic_filter, session.context):
                session.subscriptions[topic_filter] = requested_qos
                return_codes.append(requested_qos)
            else:
                return_codes.append(SUBACK_FAILURE)
        LOG.info(
            "subscribed client_id=%r topic_filters=%r return_codes=%r",
            session.client_id, [topic_filter for topic_filter, _ in requests], return_codes,
        )
        session.send(encode_suback(packet_id, return_codes))

    async def publish(self, client_id: str, topic: str, payload: bytes, qos: int, retain: bool, is_will: bool = False) -> None:
        """Record a message and deliver it to every matching, authorized subscriber."""
        LOG.info(
            "%s client_id=%r topic=%r qos=%d retain=%d bytes=%d payload=%s",
            "will message" if is_will else "PUBLISH", client_id, topic, qos, retain, len(payload), payload_preview(payload),
        )
        self.messages.append(
            {"client_id": client_id, "topic": topic, **payload_fields(payload), "qos": qos, "retain": retain, "time": utc_now_iso()}
        )
        for subscriber in list(self.sessions.values()):
            matching_qos = [q for f, q in subscriber.subscriptions.items() if topic_matches(f, topic)]
            if not matching_qos:
                continue
            # AWS IoT Core checks iot:Receive for every delivery, so a policy change applies to
            # existing subscriptions too.
            context = subscriber.context
            decision = await self.authorizer.authorize("iot:Receive", context.resource_arn("topic", topic), context)
            if not decision.allowed:
                self._log_denied_delivery(subscriber, topic, decision.reason)
                continue
            # One copy at the highest granted QoS, as MQTT 3.1.1 section 3.3.5 allows for overlaps.
            subscriber.deliver(topic, payload, min(qos, max(matching_qos)))

    # -- authorization ------------------------------------------------------------------------

    async def _authorize(self, action: str, resource_type: str, name: str, context: AuthorizationContext) -> bool:
        """Ask the authorizer and log a denial with the client id, action, resource and reason."""
        resource = context.resource_arn(resource_type, name)
        decision = await self.authorizer.authorize(action, resource, context)
        if not decision.allowed:
            LOG.info("denied client_id=%r action=%s resource=%s: %s", context.client_id, action, resource, decision.reason)
        return decision.allowed

    async def _authorize_publish(self, context: AuthorizationContext, topic: str, retain: bool) -> bool:
        if not await self._authorize("iot:Publish", "topic", topic, context):
            return False
        # AWS IoT Core requires iot:RetainPublish as well for a PUBLISH with the RETAIN flag.
        # NOTE: closing the connection when only iot:RetainPublish is missing, as for a missing
        # iot:Publish, is the lab's assumption.
        return not retain or await self._authorize("iot:RetainPublish", "topic", topic, context)

    def _log_denied_delivery(self, subscriber: Session, topic: str, reason: str) -> None:
        # Every publish to a matching topic repeats the denial, so log the first and every 100th.
        subscriber.denied_deliveries += 1
        if subscriber.denied_deliveries == 1 or subscriber.denied_deliveries % 100 == 0:
            LOG.info(
                "denied client_id=%r action=iot:Receive resource=%s: %s (%d deliveries denied so far)",
                subscriber.client_id, subscriber.context.resource_arn("topic", topic), reason, subscriber.denied_deliveries,
            )

    async def _end_session(self, session: Session) -> None:
        if session.close_reason is None:
            session.abort("connection ended")
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        LOG.info(
            "disconnected client_id=%r certificate_id=%s peer=%s: %s",
            session.client_id, session.certificate_id, session.peer, session.close_reason,
        )
        if session.dropped_deliveries:
            LOG.warning("client_id=%r missed %d deliveries", session.client_id, session.dropped_deliveries)
        if session.will is not None and not self.shutting_down:
            will = session.will
            # NOTE: AWS IoT Core does not document when it checks the will topic. The lab checks
            # iot:Publish when it sends the will, and drops a will that is not authorized.
            if await self._authorize_publish(session.context, will.topic, will.retain):
                await self.publish(session.client_id, will.topic, will.payload, will.qos, will.retain, is_will=True)

    # -- certificate re-checks and shutdown ---------------------------------------------------

    async def recheck_certificates(self) -> None:
        """Disconnect sessions whose certificate stopped being ACTIVE, as AWS IoT Core does.

        AWS disconnects such devices "within a few minutes" (UpdateCertificate API reference),
        and this loop does it within recheck_interval plus the certificate cache time.
        """
        failing: set[str] = set()
        while True:
            await asyncio.sleep(self.recheck_interval)
            for certificate_id in {session.certificate_id for session in self.sessions.values()}:
                try:
                    record = await self.registry.lookup(certificate_id)
                except RegistryError as exc:
                    if certificate_id not in failing:
                        LOG.error("certificate re-check failed for certificate_id=%s: %s", certificate_id, exc)
                        failing.add(certificate_id)
                    continue
                failing.discard(certificate_id)
                if record.is_active:
                    continue
                for session in [s for s in self.sessions.values() if s.certificate_id == certificate_id]:
                    session.abort(record.describe())

    def close_all(self, reason: str) -> None:
        self.shutting_down = True
        for session in list(self.sessions.values()):
            session.abort(reason)

    # -- admin API views (run in the event loop thread) ---------------------------------------

    async def list_connections(self) -> list[dict]:
        return [session.to_json() for session in self.sessions.values()]

    async def list_messages(self, client_id: str | None, topic: str | None) -> list[dict]:
        return [
            dict(message)
            for message in self.messages
            if (client_id is None or message["client_id"] == client_id) and (topic is None or message["topic"] == topic)
        ]

    async def clear_messages(self) -> int:
        count = len(self.messages)
        self.messages.clear()
        return count


# ---------------------------------------------------------------------------------------------
# Admin API: plain HTTP in a thread, reading broker state through the event loop.


class AdminHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], broker: Broker, loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self.loop = loop
        super().__init__(address, AdminRequestHandler)

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(ADMIN_CALL_TIMEOUT_SECONDS)


class AdminRequestHandler(BaseHTTPRequestHandler):
    """GET /_lab/connections, GET /_lab/messages[?client_id=&topic=], DELETE /_lab/messages."""

    server: AdminHTTPServer
    server_version = "krypton-lab-broker"
    PATHS = {"/_lab/connections": ("GET",), "/_lab/messages": ("GET", "DELETE")}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if not self._check_route(url.path, "GET"):
            return
        if url.path == "/_lab/connections":
            self._send_json(200, self.server.call(self.server.broker.list_connections()))
            return
        query = parse_qs(url.query)
        client_id = query.get("client_id", [None])[0]
        topic = query.get("topic", [None])[0]
        self._send_json(200, self.server.call(self.server.broker.list_messages(client_id, topic)))

    def do_DELETE(self) -> None:
        url = urlsplit(self.path)
        if self._check_route(url.path, "DELETE"):
            self._send_json(200, {"deleted": self.server.call(self.server.broker.clear_messages())})

    def do_POST(self) -> None:
        self._check_route(urlsplit(self.path).path, "POST")

    def do_PUT(self) -> None:
        self._check_route(urlsplit(self.path).path, "PUT")

    def _check_route(self, path: str, method: str) -> bool:
        methods = self.PATHS.get(path)
        if methods is None:
            self._send_json(404, {"message": f"no such path: {path}; use {', '.join(sorted(self.PATHS))}"})
            return False
        if method not in methods:
            self._send_json(405, {"message": f"{method} is not allowed on {path}; use {', '.join(methods)}"}, allow=methods)
            return False
        return True

    def _send_json(self, status: int, document, allow: tuple[str, ...] = ()) -> None:
        body = json.dumps(document).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", ", ".join(allow))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (name fixed by BaseHTTPRequestHandler)
        LOG.debug("admin API %s: %s", self.address_string(), format % args)


# ---------------------------------------------------------------------------------------------
# Command line.


def parse_host_port(value: str) -> tuple[str, int]:
    host, separator, port = value.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"invalid address {value!r}: expected HOST:PORT, for example 127.0.0.1:8883")
    return host.strip("[]"), int(port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="MQTT 3.1.1 broker standing in for AWS IoT Core in the soracom.krypton lab. "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must hold admin keys of the AWS stand-in."
    )
    parser.add_argument("--listen", required=True, type=parse_host_port, metavar="HOST:PORT", help="address for MQTT over TLS")
    parser.add_argument("--cert", required=True, help="PEM server certificate (with any intermediate certificates)")
    parser.add_argument("--key", required=True, help="PEM private key of the server certificate")
    parser.add_argument("--client-ca", required=True, help="PEM CA certificate that signs device certificates")
    parser.add_argument("--aws-endpoint", required=True, metavar="URL", help="endpoint URL of the AWS stand-in, for DescribeCertificate")
    parser.add_argument("--region", required=True, help="AWS region of the device certificates")
    parser.add_argument("--admin", required=True, type=parse_host_port, metavar="HOST:PORT", help="address of the HTTP admin API")
    parser.add_argument("--log", required=True, metavar="FILE", help="log file (appended)")
    parser.add_argument(
        "--recheck-interval", type=float, default=5.0, metavar="SECONDS",
        help="how often the certificates of open connections are checked again (default: %(default)s)",
    )
    parser.add_argument(
        "--max-messages", type=int, default=1000, metavar="COUNT",
        help="number of recent publishes kept for GET /_lab/messages (default: %(default)s)",
    )
    parser.add_argument(
        "--no-authorization", action="store_true",
        help="allow every action instead of evaluating the AWS IoT policies attached to the client certificate",
    )
    parser.add_argument("--debug", action="store_true", help="also log admin API requests")
    args = parser.parse_args(argv)
    if args.recheck_interval <= 0:
        parser.error("--recheck-interval must be greater than 0")
    if args.max_messages < 1:
        parser.error("--max-messages must be at least 1")
    return args


def is_same_file(stream, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (OSError, ValueError, AttributeError):
        return False


def configure_logging(path: str, debug: bool) -> None:
    formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(formatter)
    LOG.addHandler(file_handler)
    # Errors also go to stderr, unless stderr is the log file itself (labctl redirects it there).
    if not is_same_file(sys.stderr, path):
        error_handler = logging.StreamHandler(sys.stderr)
        error_handler.setLevel(logging.ERROR)
        error_handler.setFormatter(formatter)
        LOG.addHandler(error_handler)
    LOG.setLevel(logging.DEBUG if debug else logging.INFO)
    LOG.propagate = False


def create_ssl_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # AWS IoT Core accepts TLS 1.2 and 1.3.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(cafile=client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def run(
    args: argparse.Namespace, ssl_context: ssl.SSLContext, registry: CertificateRegistry, authorizer: PolicyAuthorizer | AllowAllAuthorizer
) -> int:
    broker = Broker(ssl_context, registry, authorizer, args.max_messages, args.recheck_interval)
    loop = asyncio.get_running_loop()

    host, port = args.listen
    try:
        server = await loop.create_server(broker.protocol_factory, host, port)
    except OSError as exc:
        LOG.error("cannot listen on %s: %s", format_address(host, port), exc)
        return 1
    try:
        admin = AdminHTTPServer(args.admin, broker, loop)
    except OSError as exc:
        LOG.error("cannot start the admin API on %s: %s", format_address(*args.admin), exc)
        server.close()
        return 1
    admin_thread = threading.Thread(target=admin.serve_forever, name="admin-api", daemon=True)
    admin_thread.start()
    recheck_task = asyncio.create_task(broker.recheck_certificates())

    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    LOG.info(
        "started: MQTT over TLS on %s, admin API on http://%s, AWS endpoint %s, region %s, IoT policy authorization %s, pid %d",
        format_address(host, port), format_address(*args.admin), args.aws_endpoint, args.region,
        "off" if args.no_authorization else "on", os.getpid(),
    )
    await stop.wait()

    LOG.info("stopping: closing %d connections", len(broker.sessions))
    server.close()
    broker.close_all("broker stopped")
    recheck_task.cancel()
    admin.shutdown()
    admin.server_close()
    # Let the session handlers log their disconnects before the loop ends.
    await asyncio.sleep(0.1)
    LOG.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log, args.debug)
    try:
        ssl_context = create_ssl_context(args.cert, args.key, args.client_ca)
    except (OSError, ssl.SSLError) as exc:  # ssl.SSLError is an OSError, named for the reader
        LOG.error("cannot load TLS files (--cert %s, --key %s, --client-ca %s): %s", args.cert, args.key, args.client_ca, exc)
        return 1
    try:
        iot_client = create_iot_client(args.aws_endpoint, args.region)
    except ValueError as exc:
        LOG.error("cannot create the AWS IoT client: %s", exc)
        return 1
    registry = CertificateRegistry(iot_client)
    authorizer = AllowAllAuthorizer() if args.no_authorization else PolicyAuthorizer(PolicyRegistry(iot_client))
    return asyncio.run(run(args, ssl_context, registry, authorizer))


if __name__ == "__main__":
    sys.exit(main())
