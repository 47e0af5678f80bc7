"""The two events that flow through ticktape: a received frame and a hole in the data."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson

WILDCARD_STREAM = "*"
"""``Gap.stream`` value for a gap that concerns every stream of a connection or recorder."""


class Source(enum.StrEnum):
    """Where a stored row came from (the ``source`` column)."""

    WS = "ws"
    """Received on a websocket."""
    REST = "rest"
    """Fetched over REST: depth snapshots and aggTrade backfill."""


class GapKind(enum.StrEnum):
    """Why data may be missing over an interval."""

    DISCONNECT = "disconnect"
    """The connection was down (or never came up) between the two instants."""
    SEQUENCE = "sequence"
    """An exchange sequence broke: depth ``pu`` != previous ``u``, or an aggTrade id jump."""
    SILENCE = "silence"
    """A stream was silent for longer than its expected cadence allows."""
    RECORDER_DOWN = "recorder_down"
    """The recorder was not running (found on restart from the journal)."""
    ROTATION = "rotation"
    """A planned connection rotation could not be made seamless."""
    REJECTED = "rejected"
    """Frames were received but could not be stored (malformed, queue full, disk full)."""


class Message:
    """One frame received from (or replayed as if from) the exchange.

    ``raw`` is the exact payload text. For a combined-stream frame it is the ``data`` value
    exactly as it stood inside the ``{"stream":..,"data":..}`` envelope (see
    :func:`schemas.wire.split_envelope`), so the envelope is rebuilt byte-identically from
    ``stream`` and ``raw``. ``data`` is decoded lazily, once.
    """

    __slots__ = ("_data", "conn_id", "raw", "recv_ns", "seq", "source", "stream")

    stream: str
    recv_ns: int
    conn_id: int
    seq: int
    raw: str
    source: Source
    _data: Any

    def __init__(
        self,
        stream: str,
        recv_ns: int,
        raw: str,
        conn_id: int = 0,
        seq: int = 0,
        source: Source = Source.WS,
        data: Any = None,
    ) -> None:
        # The slot descriptors' own setters: ~2x faster than object.__setattr__ per field,
        # and the recorder builds one Message per received frame.
        _SET_STREAM(self, stream)
        _SET_RECV_NS(self, recv_ns)
        _SET_RAW(self, raw)
        _SET_CONN_ID(self, conn_id)
        _SET_SEQ(self, seq)
        _SET_SOURCE(self, source)
        _SET_DATA(self, data)

    @classmethod
    def from_columns(
        cls,
        stream: Sequence[str],
        recv_ns: Sequence[int],
        raw: Sequence[str],
        conn_id: Sequence[int],
        seq: Sequence[int],
        source: Sequence[Source],
    ) -> list[Message]:
        """Many messages at once, row ``i`` built from item ``i`` of every column.

        The result equals ``[Message(*row) for row in zip(stream, recv_ns, raw, conn_id, seq,
        source)]`` (``data`` decoded lazily), at a fraction of the cost: each slot is filled
        for all rows in one C-level pass instead of one ``__init__`` call per row. Replay
        builds every message this way. Raises ``ValueError`` if the columns differ in length.
        """
        n = len(stream)
        if not n == len(recv_ns) == len(raw) == len(conn_id) == len(seq) == len(source):
            raise ValueError("Message.from_columns: columns differ in length")
        msgs = list(map(_NEW, repeat(cls, n)))
        _CONSUME(map(_SET_STREAM, msgs, stream))
        _CONSUME(map(_SET_RECV_NS, msgs, recv_ns))
        _CONSUME(map(_SET_RAW, msgs, raw))
        _CONSUME(map(_SET_CONN_ID, msgs, conn_id))
        _CONSUME(map(_SET_SEQ, msgs, seq))
        _CONSUME(map(_SET_SOURCE, msgs, source))
        _CONSUME(map(_SET_DATA, msgs, repeat(None, n)))
        return msgs

    @property
    def data(self) -> Any:
        """The parsed payload (a dict, or a list for ``!...@arr`` streams)."""
        value = self._data
        if value is None:
            value = orjson.loads(self.raw)
            _SET_DATA(self, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Message is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.stream, self.recv_ns, self.conn_id, self.seq, self.raw, self.source) == (
            other.stream,
            other.recv_ns,
            other.conn_id,
            other.seq,
            other.raw,
            other.source,
        )

    def __hash__(self) -> int:
        return hash((self.stream, self.recv_ns, self.conn_id, self.seq, self.raw))

    def __repr__(self) -> str:
        raw = self.raw if len(self.raw) <= 60 else self.raw[:57] + "..."
        return (
            f"Message(stream={self.stream!r}, recv_ns={self.recv_ns}, conn_id={self.conn_id}, "
            f"seq={self.seq}, source={self.source.value!r}, raw={raw!r})"
        )

    @property
    def sort_key(self) -> tuple[int, int, int]:
        """The archive order: ``(recv_ns, conn_id, seq)``."""
        return (self.recv_ns, self.conn_id, self.seq)


_SET_STREAM = Message.__dict__["stream"].__set__
_SET_RECV_NS = Message.__dict__["recv_ns"].__set__
_SET_RAW = Message.__dict__["raw"].__set__
_SET_CONN_ID = Message.__dict__["conn_id"].__set__
_SET_SEQ = Message.__dict__["seq"].__set__
_SET_SOURCE = Message.__dict__["source"].__set__
_SET_DATA = Message.__dict__["_data"].__set__
_NEW = Message.__new__
_CONSUME: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend
"""Runs an iterator to its end, in C."""


@dataclass(frozen=True, slots=True)
class Gap:
    """An interval ``[start_ns, end_ns]`` in which data of ``stream`` may be missing.

    ``stream`` is a canonical stream name or ``"*"`` for all streams of the recorder.
    ``recovered`` is true once a REST backfill has filled the hole.
    """

    stream: str
    start_ns: int
    end_ns: int
    kind: GapKind
    detail: str = ""
    recovered: bool = False

    @property
    def duration_ns(self) -> int:
        """Length of the interval in nanoseconds (never negative)."""
        return max(0, self.end_ns - self.start_ns)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, as written by ``ticktape replay --format ndjson``."""
        return {
            "stream": self.stream,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "kind": self.kind.value,
            "detail": self.detail,
            "recovered": self.recovered,
        }


Event = Message | Gap
"""What a :class:`~schemas.handler.Handler` receives."""

__all__ = ["WILDCARD_STREAM", "Event", "Gap", "GapKind", "Message", "Source"]
