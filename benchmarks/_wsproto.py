"""The few bytes of RFC 6455 the loopback feeder needs: pure functions, no sockets.

The feeder is a bare-bones websocket *server*: it answers the HTTP upgrade, sends unmasked
text frames that were encoded ahead of time, and reads the client's masked control frames
(SUBSCRIBE, ping, close). Nothing here is reused by the product; the product speaks websocket
through aiohttp.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def accept_key(client_key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1(client_key.strip().encode() + _GUID).digest()
    return base64.b64encode(digest).decode()


def upgrade_response(client_key: str) -> bytes:
    """The ``101 Switching Protocols`` response completing the handshake."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(client_key)}\r\n\r\n"
    ).encode()


def http_response(body: bytes, status: str = "200 OK") -> bytes:
    """A plain HTTP/1.1 JSON response that closes the connection."""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def encode_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One unmasked, final server frame (servers never mask, RFC 6455 section 5.1)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


@dataclass(frozen=True, slots=True)
class Request:
    """The parts of an HTTP request line and headers the feeder looks at."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def is_upgrade(self) -> bool:
        """True for a websocket upgrade request."""
        return self.headers.get("upgrade", "").lower() == "websocket"


def parse_request(head: bytes) -> Request:
    """Parse the request line and headers (everything before the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return Request(method, target, headers)


def parse_frame(buf: bytes | bytearray) -> tuple[int, bytes, int] | None:
    """Decode one client frame at the start of ``buf``: ``(opcode, payload, consumed)``.

    Returns ``None`` when ``buf`` does not yet hold a whole frame. Client frames are masked
    (RFC 6455 section 5.3); fragmentation is not needed for control and SUBSCRIBE traffic.
    """
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    opcode = b0 & 0x0F
    masked = b1 & 0x80
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n = struct.unpack_from("!H", buf, 2)[0]
        pos = 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n = struct.unpack_from("!Q", buf, 2)[0]
        pos = 10
    mask = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        mask = bytes(buf[pos:pos + 4])
        pos += 4
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos:pos + n])
    if masked:
        repeated = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
            n, "big")
    return opcode, payload, pos + n


__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Request",
    "accept_key",
    "encode_frame",
    "http_response",
    "parse_frame",
    "parse_request",
    "upgrade_response",
]
