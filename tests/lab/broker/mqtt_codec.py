# Copyright (c) 2026 soracom.krypton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""MQTT 3.1.1 packet encoding, decoding and topic rules for the lab broker.

Section numbers such as [MQTT-3.1.2-3] refer to the OASIS MQTT Version 3.1.1 standard
(http://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html).
"""

from __future__ import annotations

import asyncio
import enum
import struct
from dataclasses import dataclass


class PacketType(enum.IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


class ConnackCode(enum.IntEnum):
    ACCEPTED = 0
    UNACCEPTABLE_PROTOCOL_VERSION = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_USERNAME_OR_PASSWORD = 4
    NOT_AUTHORIZED = 5


SUBACK_FAILURE = 0x80

# Fixed-header flags that every packet type except PUBLISH must carry ([MQTT-2.2.2-1]).
REQUIRED_FLAGS = {
    PacketType.CONNECT: 0,
    PacketType.CONNACK: 0,
    PacketType.PUBACK: 0,
    PacketType.PUBREC: 0,
    PacketType.PUBREL: 0b0010,
    PacketType.PUBCOMP: 0,
    PacketType.SUBSCRIBE: 0b0010,
    PacketType.SUBACK: 0,
    PacketType.UNSUBSCRIBE: 0b0010,
    PacketType.UNSUBACK: 0,
    PacketType.PINGREQ: 0,
    PacketType.PINGRESP: 0,
    PacketType.DISCONNECT: 0,
}

PROTOCOL_NAME = "MQTT"
PROTOCOL_LEVEL_3_1_1 = 4


class ProtocolError(Exception):
    """A packet that breaks MQTT 3.1.1: the server closes the connection ([MQTT-4.8.0-1])."""


@dataclass
class Packet:
    packet_type: PacketType
    flags: int
    body: bytes


@dataclass
class Will:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class ConnectPacket:
    protocol_name: str
    protocol_level: int
    clean_session: bool = True
    keepalive: int = 0
    client_id: str = ""
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None

    @property
    def is_mqtt_3_1_1(self) -> bool:
        return self.protocol_name == PROTOCOL_NAME and self.protocol_level == PROTOCOL_LEVEL_3_1_1


@dataclass
class PublishPacket:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    packet_id: int | None


class BodyReader:
    """Cursor over a packet body that raises ProtocolError when a field runs past the end."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._position

    def read_bytes(self, count: int) -> bytes:
        if count > self.remaining:
            raise ProtocolError(f"packet too short: needed {count} more bytes, {self.remaining} left")
        chunk = self._data[self._position:self._position + count]
        self._position += count
        return chunk

    def read_u8(self) -> int:
        return self.read_bytes(1)[0]

    def read_u16(self) -> int:
        return struct.unpack("!H", self.read_bytes(2))[0]

    def read_binary(self) -> bytes:
        return self.read_bytes(self.read_u16())

    def read_string(self) -> str:
        raw = self.read_binary()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"string is not valid UTF-8: {exc}") from None
        if "\x00" in text:
            raise ProtocolError("string contains U+0000 ([MQTT-1.5.3-2])")
        return text

    def read_rest(self) -> bytes:
        return self.read_bytes(self.remaining)


async def read_remaining_length(reader: asyncio.StreamReader) -> int:
    """Decode the variable-length Remaining Length field (1 to 4 bytes, section 2.2.3)."""
    value = 0
    for position in range(4):
        byte = (await reader.readexactly(1))[0]
        value += (byte & 0x7F) << (7 * position)
        if not byte & 0x80:
            return value
    raise ProtocolError("malformed Remaining Length: more than 4 bytes")


async def read_packet(reader: asyncio.StreamReader, max_remaining_length: int) -> Packet:
    """Read one control packet.

    Raises ProtocolError for a reserved packet type, wrong fixed-header flags or a Remaining Length
    above max_remaining_length (checked before the body is read, so memory stays bounded), and
    asyncio.IncompleteReadError when the peer closes the connection.
    """
    first_byte = (await reader.readexactly(1))[0]
    type_value, flags = first_byte >> 4, first_byte & 0x0F
    try:
        packet_type = PacketType(type_value)
    except ValueError:
        raise ProtocolError(f"reserved packet type {type_value}") from None
    if packet_type != PacketType.PUBLISH and flags != REQUIRED_FLAGS[packet_type]:
        raise ProtocolError(f"invalid fixed-header flags {flags:#06b} for {packet_type.name}")

    remaining_length = await read_remaining_length(reader)
    if remaining_length > max_remaining_length:
        raise ProtocolError(
            f"{packet_type.name} packet of {remaining_length} bytes exceeds the maximum of {max_remaining_length} bytes"
        )
    body = await reader.readexactly(remaining_length) if remaining_length else b""
    return Packet(packet_type, flags, body)


def parse_connect(body: bytes) -> ConnectPacket:
    """Parse a CONNECT body.

    Parsing stops after the protocol level when the client speaks another MQTT version, because the
    rest of an MQTT 5 CONNECT has another layout. The caller then responds with CONNACK code 1.
    """
    reader = BodyReader(body)
    connect = ConnectPacket(protocol_name=reader.read_string(), protocol_level=reader.read_u8())
    if not connect.is_mqtt_3_1_1:
        return connect

    flags = reader.read_u8()
    if flags & 0x01:
        raise ProtocolError("reserved CONNECT flag is set ([MQTT-3.1.2-3])")
    connect.clean_session = bool(flags & 0x02)
    will_flag = bool(flags & 0x04)
    will_qos = (flags >> 3) & 0x03
    will_retain = bool(flags & 0x20)
    password_flag = bool(flags & 0x40)
    username_flag = bool(flags & 0x80)
    if not will_flag and (will_qos or will_retain):
        raise ProtocolError("will QoS or will retain set without the will flag ([MQTT-3.1.2-13])")
    if will_qos == 3:
        raise ProtocolError("will QoS 3 is invalid ([MQTT-3.1.2-14])")
    if password_flag and not username_flag:
        raise ProtocolError("password flag set without the user name flag ([MQTT-3.1.2-22])")
    connect.keepalive = reader.read_u16()

    connect.client_id = reader.read_string()
    if will_flag:
        will_topic = reader.read_string()
        validate_topic_name(will_topic)
        connect.will = Will(topic=will_topic, payload=reader.read_binary(), qos=will_qos, retain=will_retain)
    if username_flag:
        connect.username = reader.read_string()
    if password_flag:
        connect.password = reader.read_binary()
    if reader.remaining:
        raise ProtocolError(f"{reader.remaining} unexpected bytes after the CONNECT payload")
    return connect


def parse_publish(flags: int, body: bytes) -> PublishPacket:
    """Parse a PUBLISH packet, QoS 2 included: the broker decides what to do with QoS 2."""
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3 ([MQTT-3.3.1-4])")
    dup = bool(flags & 0x08)
    if dup and qos == 0:
        raise ProtocolError("PUBLISH with DUP set and QoS 0 ([MQTT-3.3.1-2])")
    reader = BodyReader(body)
    topic = reader.read_string()
    validate_topic_name(topic)
    packet_id = None
    if qos:
        packet_id = reader.read_u16()
        if packet_id == 0:
            raise ProtocolError("PUBLISH with packet identifier 0 ([MQTT-2.3.1-1])")
    return PublishPacket(
        topic=topic, payload=reader.read_rest(), qos=qos, retain=bool(flags & 0x01), dup=dup, packet_id=packet_id
    )


def parse_subscribe(body: bytes) -> tuple[int, list[tuple[str, int]]]:
    """Return the packet identifier and the (topic filter, requested QoS) pairs of a SUBSCRIBE."""
    reader = BodyReader(body)
    packet_id = read_packet_id(reader)
    requests = []
    while reader.remaining:
        topic_filter = reader.read_string()
        options = reader.read_u8()
        if options & 0xFC:
            raise ProtocolError(f"reserved bits set in the requested QoS byte {options:#04x} (section 3.8.3)")
        if options == 3:
            raise ProtocolError("SUBSCRIBE with requested QoS 3 (section 3.8.3)")
        validate_topic_filter(topic_filter)
        requests.append((topic_filter, options))
    if not requests:
        raise ProtocolError("SUBSCRIBE without a topic filter ([MQTT-3.8.3-3])")
    return packet_id, requests


def parse_unsubscribe(body: bytes) -> tuple[int, list[str]]:
    """Return the packet identifier and the topic filters of an UNSUBSCRIBE."""
    reader = BodyReader(body)
    packet_id = read_packet_id(reader)
    topic_filters = []
    while reader.remaining:
        topic_filters.append(reader.read_string())
    if not topic_filters:
        raise ProtocolError("UNSUBSCRIBE without a topic filter ([MQTT-3.10.3-2])")
    return packet_id, topic_filters


def parse_puback(body: bytes) -> int:
    reader = BodyReader(body)
    packet_id = reader.read_u16()
    if reader.remaining:
        raise ProtocolError(f"PUBACK with {reader.remaining} unexpected bytes")
    return packet_id


def read_packet_id(reader: BodyReader) -> int:
    packet_id = reader.read_u16()
    if packet_id == 0:
        raise ProtocolError("packet identifier 0 ([MQTT-2.3.1-1])")
    return packet_id


def expect_empty_body(packet: Packet) -> None:
    if packet.body:
        raise ProtocolError(f"{packet.packet_type.name} with a {len(packet.body)}-byte body, expected none")


def validate_topic_name(topic: str) -> None:
    """Raise ProtocolError for an empty topic name or one with wildcards ([MQTT-4.7.3-1], [MQTT-3.3.2-2])."""
    if not topic:
        raise ProtocolError("empty topic name")
    if "+" in topic or "#" in topic:
        raise ProtocolError(f"topic name {topic!r} contains a wildcard")


def validate_topic_filter(topic_filter: str) -> None:
    """Raise ProtocolError unless wildcards fill whole levels and '#' is the last level (section 4.7.1)."""
    if not topic_filter:
        raise ProtocolError("empty topic filter")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ProtocolError(f"topic filter {topic_filter!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise ProtocolError(f"topic filter {topic_filter!r}: '+' must be a whole level")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Return whether a valid topic filter matches a topic name (section 4.7).

    Filters that start with a wildcard do not match topics that start with '$' ([MQTT-4.7.2-1]).
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, filter_level in enumerate(filter_levels):
        if filter_level == "#":
            # "sport/#" also matches "sport" itself ([MQTT-4.7.1-2]).
            return True
        if index >= len(topic_levels):
            return False
        if filter_level != "+" and filter_level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


def encode_remaining_length(length: int) -> bytes:
    encoded = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        encoded.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(encoded)


def encode_packet(packet_type: PacketType, flags: int, body: bytes = b"") -> bytes:
    return bytes([packet_type << 4 | flags]) + encode_remaining_length(len(body)) + body


def encode_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def encode_connack(code: ConnackCode, session_present: bool = False) -> bytes:
    return encode_packet(PacketType.CONNACK, 0, bytes([int(session_present), code]))


def encode_publish(topic: str, payload: bytes, qos: int, packet_id: int | None = None, retain: bool = False) -> bytes:
    body = encode_string(topic)
    if qos:
        body += struct.pack("!H", packet_id)
    return encode_packet(PacketType.PUBLISH, qos << 1 | int(retain), body + payload)


def encode_packet_id_ack(packet_type: PacketType, packet_id: int) -> bytes:
    """Encode a PUBACK or UNSUBACK, whose body is only the packet identifier."""
    return encode_packet(packet_type, 0, struct.pack("!H", packet_id))


def encode_suback(packet_id: int, return_codes: list[int]) -> bytes:
    return encode_packet(PacketType.SUBACK, 0, struct.pack("!H", packet_id) + bytes(return_codes))


PINGRESP = encode_packet(PacketType.PINGRESP, 0)
