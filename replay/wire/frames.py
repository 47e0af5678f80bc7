"""RFC 6455 server-to-client frame encoding for batched sends (pure).

Writing a whole batch of data frames with one ``transport.write`` is what lets one core push
tens of thousands of messages a second; per-frame ``send_str`` costs a syscall each.
Server frames are unmasked (RFC 6455 section 5.1); RSV1 stays clear, so the frames are valid
whether or not permessage-deflate was negotiated.
"""

from __future__ import annotations

import struct

_OP_TEXT = 0x81  # FIN + text opcode
_LEN2 = struct.Struct("!BBH")
_LEN8 = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One complete unmasked text frame carrying ``payload`` (UTF-8 bytes)."""
    n = len(payload)
    if n < 126:
        return bytes((_OP_TEXT, n)) + payload
    if n < 65536:
        return _LEN2.pack(_OP_TEXT, 126, n) + payload
    return _LEN8.pack(_OP_TEXT, 127, n) + payload


def text_frames(texts: list[str]) -> bytes:
    """Concatenated text frames, one per string, in order."""
    return b"".join([text_frame(t.encode()) for t in texts])


__all__ = ["text_frame", "text_frames"]
