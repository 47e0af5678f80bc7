"""What journal recovery reports (importable without pyarrow, for the recorder process)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from schemas.message import Message

QUEUE_FULL_DETAIL = "writer queue full"
"""Prefix of the detail of a queue-drop gap (its rows are restored from the journal)."""


@dataclass
class RecoveryReport:
    """What :meth:`recorder._storage.Storage.open` found and did."""

    segments: int = 0
    journaled_messages: int = 0
    written_messages: int = 0
    already_sealed: int = 0
    journaled_gaps: int = 0
    written_gaps: int = 0
    torn_bytes: int = 0
    dropped_records: int = 0
    damaged: list[str] = field(default_factory=list)
    """One line per damaged segment: name, reason, bytes dropped."""
    tmp_removed: int = 0
    last_recv_ns: int | None = None
    """recv_ns of the last journaled message: the start of the ``recorder_down`` gap."""
    last_by_stream: dict[str, Message] = field(default_factory=dict)
    """Last journaled message per stream (seeds the gap detector's sequence state)."""

    def merge(self, other: RecoveryReport) -> RecoveryReport:
        """Sum of two reports (counts add, the later ``last_*`` wins)."""
        out = dataclasses.replace(self, damaged=[*self.damaged, *other.damaged],
                                  last_by_stream={**self.last_by_stream, **other.last_by_stream})
        for f in ("segments", "journaled_messages", "written_messages", "already_sealed",
                  "journaled_gaps", "written_gaps", "torn_bytes", "dropped_records",
                  "tmp_removed"):
            setattr(out, f, getattr(self, f) + getattr(other, f))
        if other.last_recv_ns is not None:
            out.last_recv_ns = max(self.last_recv_ns or 0, other.last_recv_ns)
        return out


__all__ = ["QUEUE_FULL_DETAIL", "RecoveryReport"]
