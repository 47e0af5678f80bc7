"""Journal recovery: replay unsealed segments into sealed Parquet, exactly once.

A segment outlives its rows' partitions only briefly (deletion follows sealing), so after a
crash some of its rows may already be sealed. Recovery therefore subtracts, per stream, the
``(recv_ns, conn_id, seq)`` keys (as a multiset) already present in sealed partitions that
overlap the recovered time range, and gaps by ``(stream, start_ns, end_ns, kind)``; what
remains is written through a :class:`~recorder._writer.PartitionSet` with the live rotation
rules. A torn or corrupt tail is truncated and reported, never raised.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recorder._fs import archive_error, fsync_dir
from recorder._journal import SegmentReader, read_last_recv, truncate_segment, write_last_recv
from recorder._partition import GAP_SCHEMA
from recorder._recovery_report import QUEUE_FULL_DETAIL, RecoveryReport
from recorder._writer import PartitionSet, WriterConfig, sealed_partitions
from schemas import layout
from schemas.message import Gap, GapKind, Message

_CHUNK = 5_000

Key = tuple[int, int, int]
GapKey = tuple[str, int, int, str]


class _StreamKeys:
    """Sealed keys of one stream, loaded for the partitions around the current recv_ns.

    Journal rows of a stream come in recv_ns order, so only partitions whose range covers
    the current row are held in memory; one that ends before it is dropped.
    """

    def __init__(self, files: list[tuple[int, int, Path]]) -> None:
        self.files = sorted(files)
        self.next = 0
        self.loaded: dict[Path, tuple[int, Counter[Key]]] = {}
        self.prev_t = -1

    def take(self, key: Key) -> bool:
        """True (and the key is used up) if a sealed partition already holds ``key``."""
        t = key[0]
        if t < self.prev_t:  # clock stepped back between runs: rescan from the start
            self.next = 0
            self.loaded.clear()
        self.prev_t = t
        files = self.files
        while self.next < len(files) and files[self.next][0] <= t:
            _, last, path = files[self.next]
            self.next += 1
            if last >= t:
                tab = _read(path, ["recv_ns", "conn_id", "seq"])
                cols: list[list[int]] = [tab.column(i).to_pylist()  # type: ignore[misc]
                                         for i in range(3)]
                self.loaded[path] = (last, Counter(zip(*cols, strict=True)))
        hit = False
        for path, (last, keys) in list(self.loaded.items()):
            if last < t:
                del self.loaded[path]
            elif not hit and keys[key] > 0:
                keys[key] -= 1
                hit = True
        return hit


class _Sealed:
    """Keys already in sealed files, per stream and for gaps."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._streams: dict[str, _StreamKeys] = {}
        self._gap_keys: Counter[GapKey] | None = None

    def take(self, m: Message) -> bool:
        """True if ``m`` is already in a sealed partition (each sealed row matches once)."""
        keys = self._streams.get(m.stream)
        if keys is None:
            files = []
            base = self.root / layout.stream_dir(m.stream)
            for path in base.glob(f"date=*/*{layout.PARTITION_SUFFIX}") if base.is_dir() else ():
                rng = layout.parse_partition_name(path.name)
                if rng is not None:
                    files.append((rng[0], rng[1], path))
            keys = self._streams[m.stream] = _StreamKeys(files)
        return keys.take((m.recv_ns, m.conn_id, m.seq))

    def gap_keys(self, from_ns: int) -> Counter[GapKey]:
        if self._gap_keys is None:
            self._gap_keys = Counter()
            base = self.root / layout.GAPS_DIR
            for path in base.glob(f"date=*/*{layout.PARTITION_SUFFIX}") if base.is_dir() else ():
                rng = layout.parse_partition_name(path.name)
                if rng is None or rng[1] < from_ns:
                    continue
                t = _read(path, ["stream", "start_ns", "end_ns", "kind"], GAP_SCHEMA)
                self._gap_keys.update(zip(*(t.column(i).to_pylist() for i in range(4)),
                                          strict=True))
        return self._gap_keys


def _read(path: Path, columns: list[str], schema: pa.Schema | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns, schema=schema)
    except (OSError, pa.ArrowException) as exc:
        raise archive_error(exc, "read sealed partition", path) from exc


def recover_segments(root: Path, segments: Iterable[tuple[int, Path]],
                     config: WriterConfig) -> RecoveryReport:
    """Write every journaled row of ``segments`` not yet sealed; delete the segments."""
    report = RecoveryReport()
    sealed = _Sealed(root)
    done: list[Path] = []
    with sealed_partitions(root, config, "recover journal into") as parts:
        for _, path in segments:
            _recover_one(path, sealed, parts, report)
            done.append(path)
    if done and report.last_recv_ns:
        # Remember where the journal ended before its segments go (a kill -9 right after
        # the deletion must not lose the start of the next recorder_down gap).
        directory = done[0].parent
        write_last_recv(directory, max(read_last_recv(directory) or 0, report.last_recv_ns))
    for path in done:
        try:
            path.unlink()
        except OSError as exc:
            raise archive_error(exc, "delete recovered journal segment", path) from exc
    if done:
        try:
            fsync_dir(done[0].parent)
        except OSError as exc:
            raise archive_error(exc, "sync journal directory", done[0].parent) from exc
    return report


def _recover_one(path: Path, sealed: _Sealed, parts: PartitionSet,
                 report: RecoveryReport) -> None:
    reader = SegmentReader(path)
    msgs: list[Message] = []
    gaps: list[Gap] = []
    report.segments += 1
    for rec in reader.records():
        if isinstance(rec, Message):
            msgs.append(rec)
            if len(msgs) >= _CHUNK:
                _write_chunk(msgs, sealed, parts, report)
                msgs = []
        else:
            gaps.append(rec)
    _write_chunk(msgs, sealed, parts, report)
    _write_gaps(gaps, sealed, parts, report)
    if reader.torn_bytes:
        report.torn_bytes += reader.torn_bytes
        report.dropped_records += reader.dropped_records
        report.damaged.append(f"{path.name}: {reader.error}, {reader.torn_bytes} bytes and "
                              f"at least {reader.dropped_records} record(s) dropped")
        truncate_segment(path, reader.valid_bytes)


def _write_chunk(msgs: list[Message], sealed: _Sealed, parts: PartitionSet,
                 report: RecoveryReport) -> None:
    if not msgs:
        return
    report.journaled_messages += len(msgs)
    fresh: list[Message] = []
    last = report.last_by_stream
    for m in msgs:
        if sealed.take(m):
            report.already_sealed += 1
        else:
            fresh.append(m)
        last[m.stream] = m
        if report.last_recv_ns is None or m.recv_ns > report.last_recv_ns:
            report.last_recv_ns = m.recv_ns
    parts.add(fresh, 0)
    report.written_messages += len(fresh)


def _write_gaps(gaps: list[Gap], sealed: _Sealed, parts: PartitionSet,
                report: RecoveryReport) -> None:
    if not gaps:
        return
    report.journaled_gaps += len(gaps)
    keys = sealed.gap_keys(min(g.start_ns for g in gaps))
    fresh: list[Gap] = []
    for g in gaps:
        if g.kind is GapKind.REJECTED and g.detail.startswith(QUEUE_FULL_DETAIL):
            # The dropped rows were journaled and are written by this very recovery.
            g = dataclasses.replace(g, recovered=True)
        key = (g.stream, g.start_ns, g.end_ns, g.kind.value)
        if keys[key] > 0:
            keys[key] -= 1
        else:
            fresh.append(g)
    parts.add_gaps(fresh, 0)
    report.written_gaps += len(fresh)


__all__ = ["QUEUE_FULL_DETAIL", "RecoveryReport", "recover_segments"]
