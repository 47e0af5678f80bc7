"""A content hash of a message sequence: equal for equal ``(stream, recv_ns, raw)`` sequences.

Each message contributes ``len(stream) | stream | recv_ns | len(raw) | raw`` (lengths and
``recv_ns`` as 8-byte big-endian integers, text as UTF-8) to one SHA-256, so no two different
sequences share an encoding. Gaps are not hashed: the same data seen live and replayed may
carry differently timed disconnect records, but its messages are identical.
"""

from __future__ import annotations

import hashlib

from schemas.message import Gap, Message


class ContentHasher:
    """Incremental SHA-256 over ``(stream, recv_ns, raw)`` triples."""

    __slots__ = ("_sha", "count")

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.count = 0

    def add(self, stream: str, recv_ns: int, raw: str) -> None:
        """Append one message."""
        sb = stream.encode()
        rb = raw.encode()
        self._sha.update(
            len(sb).to_bytes(8, "big")
            + sb
            + recv_ns.to_bytes(8, "big", signed=True)
            + len(rb).to_bytes(8, "big")
            + rb
        )
        self.count += 1

    def hexdigest(self) -> str:
        """The hash of everything added so far (64 hex digits)."""
        return self._sha.hexdigest()


class HashingHandler:
    """A :class:`~schemas.handler.Handler` that hashes every message it receives.

    Attach the same instance type to a live recording and to its replay: equal
    :meth:`hexdigest` values mean the two delivered identical message sequences.
    """

    def __init__(self) -> None:
        self._hasher = ContentHasher()
        self.gaps = 0

    @property
    def messages(self) -> int:
        """Messages hashed so far."""
        return self._hasher.count

    async def on_message(self, msg: Message) -> None:
        """Hash one message."""
        self._hasher.add(msg.stream, msg.recv_ns, msg.raw)

    async def on_gap(self, gap: Gap) -> None:
        """Count the gap (not hashed)."""
        self.gaps += 1

    def hexdigest(self) -> str:
        """SHA-256 of the messages so far."""
        return self._hasher.hexdigest()


__all__ = ["ContentHasher", "HashingHandler"]
