"""An exact record of every frame the wire server sent, per connection.

Recorder tests compare what they stored against this log to prove nothing was lost silently.
Kept in memory (read it in-process) and optionally appended to an NDJSON file.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from schemas.errors import ConfigError


class SentKind(enum.StrEnum):
    """What a send-log record describes."""

    DATA = "data"
    """A market or user-data frame (``stream`` and ``payload`` set)."""
    REPLY = "reply"
    """A reply to a control message."""
    MALFORMED = "malformed"
    """An injected text frame that is not valid JSON."""
    BINARY = "binary"
    """An injected binary frame (``payload`` is its bytes as latin-1 text)."""
    CLOSE = "close"
    """A close frame (``payload`` is ``"<code> <reason>"``)."""
    DROP = "drop"
    """The TCP connection was aborted without a close frame."""


@dataclass(frozen=True, slots=True)
class SentFrame:
    """One thing sent on one connection.

    ``seq`` counts every record of the connection from 1. ``combined`` tells whether the data
    frame went out in the ``{"stream":..,"data":..}`` envelope (rebuild it with
    :func:`schemas.wire.make_envelope`); ``payload`` is always the bare payload text.
    """

    conn_id: int
    seq: int
    kind: SentKind
    stream: str
    payload: str
    send_ns: int
    combined: bool = False

    def to_json(self) -> dict[str, Any]:
        """The NDJSON form of the record."""
        return {"conn_id": self.conn_id, "seq": self.seq, "kind": self.kind.value,
                "stream": self.stream, "payload": self.payload, "send_ns": self.send_ns,
                "combined": self.combined}


class SendLog:
    """Per-connection record of sent frames, in memory and optionally in an NDJSON file.

    ``keep_in_memory=False`` with a ``path`` writes the file only (long CLI runs).
    Call :meth:`close` (or use as a context manager) to flush and close the file.
    """

    def __init__(self, path: str | Path | None = None, *, keep_in_memory: bool = True) -> None:
        self._records: list[SentFrame] = []
        self._keep = keep_in_memory
        self._seq: dict[int, int] = {}
        self._file: BinaryIO | None = None
        if path is not None:
            try:
                self._file = open(path, "ab", buffering=1 << 20)  # noqa: SIM115 closed in close()
            except OSError as exc:
                raise ConfigError(f"cannot open send log {path}: {exc.strerror}") from exc

    def add(self, conn_id: int, kind: SentKind, stream: str, payload: str, send_ns: int,
            combined: bool = False) -> None:
        """Record one sent frame."""
        seq = self._seq.get(conn_id, 0) + 1
        self._seq[conn_id] = seq
        record = SentFrame(conn_id, seq, kind, stream, payload, send_ns, combined)
        if self._keep:
            self._records.append(record)
        if self._file is not None:
            self._file.write(orjson.dumps(record.to_json()) + b"\n")

    def add_batch(self, conn_id: int, frames: list[tuple[str, str]], send_ns: int,
                  combined: bool) -> None:
        """Record a batch of data frames sent together."""
        seq = self._seq.get(conn_id, 0)
        records = []
        for stream, payload in frames:
            seq += 1
            records.append(SentFrame(conn_id, seq, SentKind.DATA, stream, payload, send_ns,
                                     combined))
        self._seq[conn_id] = seq
        if self._keep:
            self._records.extend(records)
        if self._file is not None:
            self._file.write(b"".join(orjson.dumps(r.to_json()) + b"\n" for r in records))

    def records(self, conn_id: int | None = None) -> list[SentFrame]:
        """All records so far, or those of one connection, in send order."""
        if conn_id is None:
            return list(self._records)
        return [r for r in self._records if r.conn_id == conn_id]

    def data(self, conn_id: int | None = None) -> list[SentFrame]:
        """Only the data frames (market and user events)."""
        return [r for r in self.records(conn_id) if r.kind is SentKind.DATA]

    def connections(self) -> list[int]:
        """Connection ids that have sent anything."""
        return sorted(self._seq)

    def __iter__(self) -> Iterator[SentFrame]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def flush(self) -> None:
        """Flush the NDJSON file, if any."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the NDJSON file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> SendLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["SendLog", "SentFrame", "SentKind"]
