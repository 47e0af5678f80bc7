"""``compact``: merge a day's small partitions of a stream into one file, provably unchanged.

For each stream and UTC day, consecutive sealed partitions are merged (in ``recv_ns`` order,
groups capped at ``max_bytes`` of input) into one file named ``<first>-<last>.parquet`` whose
range covers every merged file. Partitions that end in the current (open) UTC hour are left
alone, so compact is safe beside a running recorder.

Crash safety (``kill -9`` at any instant), step by step:

1. the merged file is written to ``<archive>/.compact/<...>.parquet.tmp`` (outside every
   partition directory, so no reader sees it), its checksums are computed while writing;
2. it is fsynced, closed, read back from disk and its checksums recomputed; they must equal
   those of the input rows as received (both the recorder's ``recv_ns``/``raw`` SHA-256 and
   the all-column content checksum of :mod:`replay._checksum`), else nothing is published;
3. it is renamed onto its final name in the day directory and the directory fsynced;
4. only then are the merged small files deleted.

A crash before 3 leaves a staged file that readers never look at; a crash between 3 and 4
leaves small files whose ranges lie inside the merged file's range and whose names the merged
file lists in its metadata: by the supersede rule (:mod:`replay._partitions`) every reader
ignores them, so no row is counted twice, and the next ``compact`` deletes them (and the
staged leftovers) before doing anything else.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from replay._checksum import (
    RAW_CHECKSUM_ALGO,
    ContentHasher,
    logical_batch,
    logical_schema,
    update_raw_checksum,
)
from replay._partitions import COMPACTED_INPUTS_KEY, Partition, list_archive
from replay._verify import CHECKSUM_KEY, RAW_CHECKSUM_KEY, STAGING_DIR
from schemas.errors import ArchiveError, CorruptDataError
from schemas.layout import SCHEMA_VERSION, partition_name
from schemas.storage import parquet_options, prepare_for_storage, row_group_rows
from schemas.tables import table_for

DEFAULT_MAX_BYTES = 512 << 20
HOUR_NS = 3_600 * 1_000_000_000
BATCH_ROWS = 65_536


@dataclass(frozen=True, slots=True)
class Merge:
    """One merged file: which stream-day, how many inputs, the proof of equality."""

    stream: str
    date: str
    inputs: int
    rows: int
    bytes_before: int
    bytes_after: int
    path: str
    checksum: str
    """The all-column content checksum, equal before and after."""


@dataclass(slots=True)
class CompactReport:
    """What ``compact`` did."""

    merges: list[Merge] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    """Superseded files and staged leftovers of an earlier interrupted run, now deleted."""
    skipped: list[str] = field(default_factory=list)
    """Groups not merged, with the reason (corrupt input, open hour...)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"merges": [_merge_dict(m) for m in self.merges],
                "cleaned": self.cleaned, "skipped": self.skipped}


def _merge_dict(m: Merge) -> dict[str, Any]:
    return {"stream": m.stream, "date": m.date, "inputs": m.inputs, "rows": m.rows,
            "bytes_before": m.bytes_before, "bytes_after": m.bytes_after, "path": m.path,
            "checksum": m.checksum}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


COMPACTED_FROM_KEY = b"ticktape.compacted_from"
"""Footer key set on every file ``compact`` wrote (the number of files merged into it)."""


def _groups(parts: list[Partition], max_bytes: int) -> list[list[Partition]]:
    """Consecutive runs of partitions whose summed size stays within ``max_bytes``."""
    groups: list[list[Partition]] = []
    cur: list[Partition] = []
    size = 0
    for p in parts:
        if cur and size + p.size > max_bytes:
            groups.append(cur)
            cur, size = [], 0
        cur.append(p)
        size += p.size
    if cur:
        groups.append(cur)
    # A lone file is rewritten too until it carries the compacted storage plan (raw dropped
    # where derivable, compacted encodings); after that it is left alone.
    return [g for g in groups if len(g) > 1 or not _is_compacted(g[0].path)]


def _is_compacted(path: Path) -> bool:
    try:
        meta = pq.read_metadata(path).metadata or {}
    except (OSError, pa.ArrowException):
        return True  # unreadable: leave it to `ticktape verify`, never rewrite it here
    return COMPACTED_FROM_KEY in meta


class _Digest:
    """Both checksums of a row sequence, over the rows as received (raw restored)."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.content = ContentHasher(logical_schema(stream))
        self.raw = hashlib.sha256()

    def update(self, batch: pa.RecordBatch) -> None:
        logical = logical_batch(self.stream, batch)
        self.content.update(logical)
        update_raw_checksum(self.raw, logical)

    def pair(self) -> tuple[str, str]:
        return self.content.hexdigest(), self.raw.hexdigest()


def _read_input(p: Partition, schema: pa.Schema, digest: _Digest,
                sink: Callable[[pa.RecordBatch], None]) -> None:
    """Stream one input file into ``sink``, checking its stored checksum and its range."""
    own = _Digest(p.stream)
    first = last = None
    try:
        with pq.ParquetFile(p.path, page_checksum_verification=True) as pf:
            stored = (pf.metadata.metadata or {}).get(RAW_CHECKSUM_KEY)
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                own.update(batch)
                digest.update(batch)
                if batch.num_rows:
                    first = batch.column("recv_ns")[0].as_py() if first is None else first
                    last = batch.column("recv_ns")[-1].as_py()
                sink(batch)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise CorruptDataError(f"{p.path}: {' '.join(str(exc).split())}") from exc
    if stored is not None and stored.decode(errors="replace") != own.raw.hexdigest():
        raise CorruptDataError(f"{p.path}: checksum differs from the stored one")
    if (first, last) != (p.first_ns, p.last_ns):
        raise CorruptDataError(f"{p.path}: rows span {first}-{last}, not its name's range")


def _digest_file(path: Path, stream: str, schema: pa.Schema) -> tuple[str, str]:
    digest = _Digest(stream)
    with pq.ParquetFile(path, page_checksum_verification=True) as pf:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
            digest.update(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
    return digest.pair()


def _metadata(group: list[Partition], rows: int, content: str, raw: str) -> dict[str, str]:
    stream = group[0].stream
    return {
        "ticktape.schema_version": str(SCHEMA_VERSION),
        "ticktape.stream": stream,
        "ticktape.table": table_for(stream).name,
        "ticktape.first_recv_ns": str(group[0].first_ns),
        "ticktape.last_recv_ns": str(group[-1].last_ns),
        "ticktape.rows": str(rows),
        RAW_CHECKSUM_KEY.decode(): raw,
        "ticktape.checksum_algo": RAW_CHECKSUM_ALGO,
        CHECKSUM_KEY.decode(): content,
        COMPACTED_FROM_KEY.decode(): str(len(group)),
        COMPACTED_INPUTS_KEY.decode(): "\n".join(p.path.name for p in group),
    }


def merge_group(root: Path, group: list[Partition]) -> Merge:
    """Merge ``group`` (consecutive partitions of one stream-day) as in the module docstring.

    The merged file is written with the compacted storage plan (:mod:`schemas.storage`:
    encodings, zstd level, row groups) and ``raw`` nulled where the typed columns re-render it
    exactly; the checksums compare the rows as received, so they prove nothing was lost.
    """
    stream, date = group[0].stream, group[0].date
    table = table_for(stream)
    schema = table.schema
    group_rows = row_group_rows(table, compacted=True)
    for a, b in itertools.pairwise(group):
        if b.first_ns < a.last_ns:
            raise CorruptDataError(f"{b.path}: overlaps {a.path.name}; run `ticktape verify`")
    staging = root / STAGING_DIR
    staging.mkdir(exist_ok=True)
    name = partition_name(group[0].first_ns, group[-1].last_ns)
    final = group[0].path.parent / name
    tmp = staging / f"{stream}.{date}.{name}.tmp"
    digest = _Digest(stream)
    pending: list[pa.RecordBatch] = []
    options = parquet_options(table, compacted=True)
    try:
        with pq.ParquetWriter(tmp, schema, write_page_checksum=True, **options) as writer:
            def flush() -> None:
                writer.write_table(pa.Table.from_batches(pending, schema),
                                   row_group_size=group_rows)
                pending.clear()

            def sink(batch: pa.RecordBatch) -> None:
                pending.append(prepare_for_storage(stream, batch, compacted=True))
                if sum(b.num_rows for b in pending) >= group_rows:
                    flush()

            for p in group:
                _read_input(p, schema, digest, sink)
            if pending:
                flush()
            before = digest.pair()
            writer.add_key_value_metadata(_metadata(group, digest.content.rows, *before))
        _fsync_file(tmp)
        after = _digest_file(tmp, stream, schema)
        if after != before:
            raise CorruptDataError(f"{final}: merged file reads back different content")
        in_place = len(group) == 1  # same name: the rename atomically replaces the input
        if final.exists() and not in_place:
            raise ArchiveError(f"{final}: already exists")
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        _fsync_dir(staging)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for p in group:
        if p.path != final:
            p.path.unlink(missing_ok=True)
    _fsync_dir(final.parent)
    return Merge(stream, date, len(group), digest.content.rows, sum(p.size for p in group),
                 final.stat().st_size, str(final.relative_to(root)), before[0])


def _cleanup(root: Path, report: CompactReport) -> None:
    """Finish an interrupted run: drop staged outputs and superseded inputs."""
    staging = root / STAGING_DIR
    if staging.is_dir():
        for leftover in sorted(staging.iterdir()):
            leftover.unlink()
            report.cleaned.append(str(leftover.relative_to(root)))
    listing = list_archive(root)
    dirs = set()
    for old in listing.superseded:
        old.path.unlink(missing_ok=True)
        dirs.add(old.path.parent)
        report.cleaned.append(str(old.path.relative_to(root)))
    for d in dirs:
        _fsync_dir(d)


def compact(archive: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
            now_ns: int | None = None, streams: list[str] | None = None,
            date: str | None = None) -> CompactReport:
    """Compact every stream-day of ``archive`` (module docstring); return what was done.

    ``streams`` / ``date`` restrict the work; ``now_ns`` (default: the clock) sets the open
    hour that is left alone. A group whose input fails its checks is skipped and reported.
    """
    root = Path(archive)
    if not root.is_dir():
        raise ArchiveError(f"archive {os.fspath(archive)!r} is not a directory")
    report = CompactReport()
    _cleanup(root, report)
    now = time.time_ns() if now_ns is None else now_ns
    open_hour = now - now % HOUR_NS
    listing = list_archive(root)
    for (stream, day), parts in sorted(listing.live.items()):
        if (streams is not None and stream not in streams) or (date and day != date):
            continue
        closed = [p for p in parts if p.last_ns < open_hour]
        if len(closed) < len(parts) and len(parts) > 1:
            report.skipped.append(f"{stream} {day}: {len(parts) - len(closed)} file(s) in the "
                                  "open hour left alone")
        for group in _groups(closed, max_bytes):
            try:
                report.merges.append(merge_group(root, group))
            except CorruptDataError as exc:
                report.skipped.append(f"{stream} {day}: not merged: {exc}")
    return report


__all__ = ["DEFAULT_MAX_BYTES", "CompactReport", "Merge", "compact", "merge_group"]
