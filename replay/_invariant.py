"""The loss invariant: every data frame a server sent is in the archive or in a recorded gap.

Input is the wire server's send log (:mod:`replay.wire.sendlog`, NDJSON from
``ticktape sim --send-log``) and an archive. For each market stream of the log:

* a sent frame is **archived** when a ``source='ws'`` row of its stream has exactly its
  payload text (``raw`` is the bare payload, also for combined-stream envelopes);
* an aggTrade frame missing from the ws rows is **backfilled** when a ``source='rest'`` row
  carries its aggregate trade id ``a`` (BINANCE.md: aggTrade ids are consecutive and REST
  ``/fapi/v1/aggTrades?fromId=`` returns the same trades);
* otherwise it is **in a gap** when a recorded gap of its stream or of ``*`` intersects the
  window in which it could have arrived: from its send time (minus ``skew_ns``, the sim stamps
  ``send_ns`` just after writing to the socket) to the receive time of the next archived frame
  sent after it on the same connection (TCP keeps a connection's order), or, when nothing later
  on that connection was archived (the connection died), to ``max_latency_ns`` after the later
  of its send time and the receipt of the connection's previous archived frame: the disconnect
  or recorder-down gap must start within that window;
* anything else is an **unexplained hole**.

Also counted: ``duplicates`` (a payload stored more than once), ``reorders`` (archive order,
by ``recv_ns``, going back in one sent connection's order), ``unsent`` (ws rows no frame
matched: a byte difference shows up here and as a hole). Payloads are kept as 16-byte hashes
so multi-million-frame soak logs fit in memory; a hole is reported by connection, sequence
number and send time (find its payload in the send log). User-data frames (listenKey streams) are
counted as ``skipped``: the recorder stores them under ``userData`` with secrets redacted.
"""

from __future__ import annotations

import bisect
import hashlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from replay._archive import Archive
from replay.wire.sendlog import SentFrame, SentKind
from schemas.errors import ConfigError
from schemas.message import WILDCARD_STREAM, Gap
from schemas.streams import parse_stream

SEC = 1_000_000_000
DEFAULT_SKEW_NS = SEC
DEFAULT_MAX_LATENCY_NS = 30 * SEC
MAX_SAMPLES = 20
"""Unexplained holes listed in a report (all are counted)."""


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def read_send_log(path: str | Path) -> Iterator[SentFrame]:
    """Records of a send-log NDJSON file, in file (= per-connection send) order.

    A torn last line (the sim was killed mid-write) is ignored; any other bad line raises
    :class:`ConfigError` naming the line.
    """
    try:
        with open(path, "rb") as f:
            lines = iter(f)
            for number, line in enumerate(lines, 1):
                try:
                    obj = orjson.loads(line)
                    yield SentFrame(int(obj["conn_id"]), int(obj["seq"]), SentKind(obj["kind"]),
                                    str(obj["stream"]), str(obj["payload"]),
                                    int(obj["send_ns"]), bool(obj.get("combined", False)))
                except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
                    if next(lines, None) is None and not line.endswith(b"\n"):
                        return  # torn tail of a killed writer
                    raise ConfigError(f"send log {path}: line {number} is not a send record"
                                      ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read send log {path}: {exc.strerror}") from exc


@dataclass(slots=True)
class StreamLoss:
    """Counts for one stream (frames are counted per send, messages per distinct payload)."""

    stream: str
    sent: int = 0
    """Data frames sent (every connection, so an overlap sends a message twice)."""
    messages: int = 0
    """Distinct payloads sent."""
    archived: int = 0
    backfilled: int = 0
    in_gap: int = 0
    holes: int = 0
    duplicates: int = 0
    reorders: int = 0
    unsent: int = 0

    def to_json(self) -> dict[str, Any]:
        """A plain dict of the counts."""
        return {"stream": self.stream, "sent": self.sent, "messages": self.messages,
                "archived": self.archived, "backfilled": self.backfilled,
                "in_gap": self.in_gap, "holes": self.holes, "duplicates": self.duplicates,
                "reorders": self.reorders, "unsent": self.unsent}


@dataclass(frozen=True, slots=True)
class Hole:
    """One sent frame neither archived nor covered by a gap."""

    stream: str
    conn_id: int
    seq: int
    send_ns: int


@dataclass(slots=True)
class LossReport:
    """Result of :func:`check_loss`; ``ok`` when nothing is lost silently."""

    streams: dict[str, StreamLoss] = field(default_factory=dict)
    holes: list[Hole] = field(default_factory=list)
    skipped: int = 0
    after_end: int = 0
    gaps: int = 0

    def total(self) -> StreamLoss:
        """The counts summed over streams (``stream`` is ``"*"``)."""
        out = StreamLoss(WILDCARD_STREAM)
        for s in self.streams.values():
            for name in ("sent", "messages", "archived", "backfilled", "in_gap", "holes",
                         "duplicates", "reorders", "unsent"):
                setattr(out, name, getattr(out, name) + getattr(s, name))
        return out

    @property
    def ok(self) -> bool:
        """No unexplained hole, no duplicate and no stored frame that was never sent."""
        total = self.total()
        return total.holes == 0 and total.duplicates == 0 and total.unsent == 0

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        return {"ok": self.ok, "total": self.total().to_json(), "skipped": self.skipped,
                "after_end": self.after_end, "gaps": self.gaps,
                "streams": [s.to_json() for s in sorted(self.streams.values(),
                                                         key=lambda s: s.stream)],
                "holes": [{"stream": h.stream, "conn_id": h.conn_id, "seq": h.seq,
                           "send_ns": h.send_ns}
                          for h in self.holes]}


class _Sent:
    """The sent frames of one stream, in log order, with payload hashes."""

    __slots__ = ("agg_ids", "conn", "first", "keys", "multi", "send_ns", "seq", "stats")

    def __init__(self, stream: str) -> None:
        self.stats = StreamLoss(stream)
        self.send_ns = array("q")
        self.conn = array("q")
        self.seq = array("q")
        self.keys: list[bytes] = []
        self.first: dict[bytes, int] = {}
        self.multi: dict[bytes, list[int]] = {}
        self.agg_ids: array[int] | None = array("q") if stream.endswith("@aggTrade") else None

    def add(self, frame: SentFrame) -> None:
        index = len(self.keys)
        key = _key(frame.payload)
        self.send_ns.append(frame.send_ns)
        self.conn.append(frame.conn_id)
        self.seq.append(frame.seq)
        self.keys.append(key)
        if self.agg_ids is not None:
            a = _agg_id(frame.payload)
            self.agg_ids.append(-1 if a is None else a)
        if key in self.first:
            self.multi.setdefault(key, [self.first[key]]).append(index)
        else:
            self.first[key] = index

    def instances(self, key: bytes) -> list[int]:
        return self.multi.get(key) or [self.first[key]]


class _GapIndex:
    """Answers "does any gap intersect [lo, hi]?" for one stream plus ``*``."""

    def __init__(self, gaps: list[Gap]) -> None:
        ordered = sorted(gaps, key=lambda g: g.start_ns)
        self.starts = [g.start_ns for g in ordered]
        self.max_end: list[int] = []
        best = -(1 << 63)
        for g in ordered:
            best = max(best, g.end_ns)
            self.max_end.append(best)

    def covers(self, lo: int, hi: int) -> bool:
        n = bisect.bisect_right(self.starts, hi)
        return n > 0 and self.max_end[n - 1] >= lo


def _agg_id(raw: str) -> int | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    a = value.get("a") if isinstance(value, dict) else None
    return a if isinstance(a, int) else None


def _collect(frames: Iterable[SentFrame], report: LossReport) -> dict[str, _Sent]:
    by_stream: dict[str, _Sent] = {}
    names: dict[str, str | None] = {}
    for frame in frames:
        if frame.kind is not SentKind.DATA:
            continue
        if frame.stream not in names:
            try:
                parsed = parse_stream(frame.stream)
                names[frame.stream] = None if parsed.channel == "userData" else parsed.name
            except ValueError:
                names[frame.stream] = None
        stream = names[frame.stream]
        if stream is None:
            report.skipped += 1
            continue
        sent = by_stream.get(stream)
        if sent is None:
            sent = by_stream[stream] = _Sent(stream)
        sent.add(frame)
    return by_stream


def _check_stream(archive: Archive, sent: _Sent, gaps: _GapIndex, until_ns: int | None,
                  skew_ns: int, max_latency_ns: int, report: LossReport) -> None:
    stats = sent.stats
    stats.sent = len(sent.keys)
    stats.messages = len(sent.first)
    rows: list[tuple[int, bytes]] = []
    rest_ids: set[int] = set()
    is_agg = stats.stream.endswith("@aggTrade")
    for batch in archive.read_stream(stats.stream, columns=("recv_ns", "source", "raw")):
        recvs = batch.column("recv_ns").to_pylist()
        sources = batch.column("source").to_pylist()
        raws = batch.column("raw").to_pylist()
        for recv, source, raw_or_none in zip(recvs, sources, raws, strict=True):
            raw = raw_or_none or ""
            if source == "rest":
                if is_agg and (a := _agg_id(raw)) is not None:
                    rest_ids.add(a)
                continue
            rows.append((int(recv or 0), _key(raw)))
    rows.sort(key=lambda r: r[0])  # archive (replay) order; sort is stable
    recv_of: dict[bytes, int] = {}
    last_seq: dict[int, int] = {}
    for recv, key in rows:
        if key in recv_of:
            stats.duplicates += 1
            continue
        index = sent.first.get(key)
        if index is None:
            stats.unsent += 1
            continue
        recv_of[key] = recv
        conn, seq = sent.conn[index], sent.seq[index]
        if seq < last_seq.get(conn, 0):
            stats.reorders += 1
        else:
            last_seq[conn] = seq
    stats.archived = len(recv_of)
    # Receive times of the archived frames sent just before / after each one on its connection.
    size = len(sent.keys)
    next_recv, prev_recv = array("q", bytes(8 * size)), array("q", bytes(8 * size))
    following: dict[int, int] = {}
    for i in range(size - 1, -1, -1):
        conn = sent.conn[i]
        next_recv[i] = following.get(conn, 0)
        recv = recv_of.get(sent.keys[i])
        if recv is not None:
            following[conn] = recv if conn not in following else min(recv, following[conn])
    preceding: dict[int, int] = {}
    for i in range(size):
        conn = sent.conn[i]
        prev_recv[i] = preceding.get(conn, 0)
        recv = recv_of.get(sent.keys[i])
        if recv is not None:
            preceding[conn] = max(recv, preceding.get(conn, 0))
    for key, first in sent.first.items():
        if key in recv_of:
            continue
        if until_ns is not None and min(sent.send_ns[i] for i in sent.instances(key)) > until_ns:
            report.after_end += 1
            continue
        if rest_ids and sent.agg_ids is not None and sent.agg_ids[first] in rest_ids:
            stats.backfilled += 1
            continue
        explained = False
        for i in sent.instances(key):
            lo = sent.send_ns[i] - skew_ns
            # A reader running behind receives late: bound from whichever is later, the send
            # or the receipt of the connection's previous archived frame.
            hi = next_recv[i] or max(sent.send_ns[i], prev_recv[i]) + max_latency_ns
            if gaps.covers(lo, max(lo, hi)):
                explained = True
                break
        if explained:
            stats.in_gap += 1
        else:
            stats.holes += 1
            if len(report.holes) < MAX_SAMPLES:
                report.holes.append(Hole(stats.stream, sent.conn[first], sent.seq[first],
                                         sent.send_ns[first]))


def check_loss(frames: Iterable[SentFrame], archive: Archive | str | Path, *,
               until_ns: int | None = None, skew_ns: int = DEFAULT_SKEW_NS,
               max_latency_ns: int = DEFAULT_MAX_LATENCY_NS) -> LossReport:
    """Check the loss invariant of ``archive`` against the sent ``frames`` (see module doc).

    ``until_ns``: frames sent after it need not be archived (missing ones are counted as
    ``after_end``): the recorder was told to stop then. Those that were stored still count.
    """
    if skew_ns < 0 or max_latency_ns <= 0:
        raise ConfigError("skew must be >= 0 and max latency > 0")
    arch = archive if isinstance(archive, Archive) else Archive(archive)
    report = LossReport()
    by_stream = _collect(frames, report)
    all_gaps = arch.gaps()
    report.gaps = len(all_gaps)
    for stream, sent in sorted(by_stream.items()):
        relevant = [g for g in all_gaps if g.stream in (stream, WILDCARD_STREAM)]
        _check_stream(arch, sent, _GapIndex(relevant), until_ns, skew_ns, max_latency_ns,
                      report)
        report.streams[stream] = sent.stats
    return report


__all__ = ["DEFAULT_MAX_LATENCY_NS", "DEFAULT_SKEW_NS", "Hole", "LossReport", "StreamLoss",
           "check_loss", "read_send_log"]
