"""One Parquet partition being written: rows in, row groups out, sealed by an atomic rename.

A partition collects the messages of one stream inside one rotation window (never across a
UTC day). Rows are buffered until a row group is worth writing; the first row group opens a
``pyarrow.parquet.ParquetWriter`` on ``<first_ns>-open.parquet.tmp`` in the partition's date
directory, so memory per stream stays bounded by one row group. :meth:`OpenPartition.seal`
writes the rest, adds the key-value metadata, fsyncs and renames the file onto
``<first_ns>-<last_ns>.parquet``. A crash leaves at most a ``*.parquet.tmp``, which
:func:`recorder._fs.sweep_tmp` deletes on the next start (the rows are still in the journal).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recorder._fs import ensure_dir, publish, remove_quietly
from recorder._rows import messages_batch
from schemas import layout
from schemas.checksum import RAW_CHECKSUM_ALGO, hash_arrays, hash_rows
from schemas.message import Gap, Message
from schemas.storage import parquet_options, prepare_for_storage
from schemas.tables import Table, build_batch, build_batch_columns, table_for
from schemas.version import __version__

CHECKSUM_ALGO = RAW_CHECKSUM_ALGO
"""How ``ticktape.content_sha256`` is computed (``verify``/``compact`` recompute it)."""

META_PREFIX = "ticktape."
_GAP_FIELDS: list[pa.Field[Any]] = [
    pa.field("stream", pa.string(), nullable=False),
    pa.field("start_ns", pa.int64(), nullable=False),
    pa.field("end_ns", pa.int64(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("detail", pa.string(), nullable=False),
    pa.field("recovered", pa.bool_(), nullable=False),
]
GAP_SCHEMA = pa.schema(_GAP_FIELDS)
"""Columns of the ``gaps`` table (DESIGN.md)."""

ROW_OVERHEAD = 200
"""Bytes counted per buffered row on top of its ``raw`` (Message object, strings)."""
COMPACT_CHUNKS = 16
"""Column batches a partition buffers before it merges them (:meth:`OpenPartition._compact`)."""


def recorder_version() -> str:
    """The ticktape version written into every file's metadata."""
    return __version__


def _writer(path: Path, table: Table, level: int) -> pq.ParquetWriter:
    # Column encodings per schemas.storage (live: raw kept, zstd at the configured level).
    options = parquet_options(table, compacted=False)
    options["compression_level"] = level
    return pq.ParquetWriter(path, table.schema, **options)


class OpenPartition:
    """The partition of ``stream`` for ``[window_start, window_end)``, being written."""

    def __init__(self, root: Path, stream: str, window: tuple[int, int], segment: int,
                 level: int) -> None:
        self.root = root
        self.stream = stream
        self.window_start, self.window_end = window
        self.min_segment = segment
        self.level = level
        self.first_ns = window[1]
        self.last_ns = -1
        self.rows = 0
        self.total_bytes = 0
        self._chunks: list[list[Message] | pa.RecordBatch] = []
        """Buffered rows in arrival order: runs of messages and column batches
        (:data:`recorder._rows.COMMON_SCHEMA`, from the writer process's pipe)."""
        self.pending_rows = 0
        self.pending_bytes = 0
        self._loose = 0
        self._hash = hashlib.sha256()
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None

    @property
    def has_file(self) -> bool:
        """True once a row group has been written to the ``.tmp`` file."""
        return self._writer is not None

    def add(self, m: Message) -> None:
        """Buffer one row (the caller has checked it belongs to this window)."""
        self._run().append(m)
        self.pending_rows += 1
        n = len(m.raw) + ROW_OVERHEAD  # rough in-memory size: Message object, raw, stream
        self.pending_bytes += n
        self.total_bytes += n
        t = m.recv_ns
        if t > self.last_ns:
            self.last_ns = t
        if t < self.first_ns:
            self.first_ns = t

    def extend(self, msgs: Sequence[Message], first_ns: int, last_ns: int, size: int) -> None:
        """Buffer rows whose times span ``[first_ns, last_ns]`` and weigh ``size`` (as in
        :meth:`add`, summed); the caller has checked they belong to this window."""
        self._run().extend(msgs)
        self.pending_rows += len(msgs)
        self._spanned(first_ns, last_ns, size)

    def extend_columns(self, batch: pa.RecordBatch, first_ns: int, last_ns: int,
                       size: int) -> None:
        """Buffer rows given as :data:`recorder._rows.COMMON_SCHEMA` columns, otherwise as
        :meth:`extend`."""
        self._chunks.append(batch)
        self.pending_rows += batch.num_rows
        self._spanned(first_ns, last_ns, size)
        self._loose += 1
        if self._loose >= COMPACT_CHUNKS:
            self._compact()

    def _compact(self) -> None:
        """Merge the trailing column batches into one with buffers of its own: the batches
        of one payload share buffers across streams, so a slowly filling partition would
        otherwise keep every payload it holds rows of in memory."""
        chunks = self._chunks
        i = len(chunks)
        while i > 0 and not isinstance(chunks[i - 1], list):
            i -= 1
        tail = [c for c in chunks[i:] if not isinstance(c, list)]
        if len(tail) > 1:
            merged = pa.Table.from_batches(tail).combine_chunks().to_batches()
            chunks[i:] = merged
        self._loose = 0

    def _run(self) -> list[Message]:
        chunks = self._chunks
        if chunks and isinstance(chunks[-1], list):
            return chunks[-1]
        run: list[Message] = []
        chunks.append(run)
        return run

    def _spanned(self, first_ns: int, last_ns: int, size: int) -> None:
        self.pending_bytes += size
        self.total_bytes += size
        if last_ns > self.last_ns:
            self.last_ns = last_ns
        if first_ns < self.first_ns:
            self.first_ns = first_ns

    def flush_rows(self) -> None:
        """Write the buffered rows as one row group."""
        if not self.pending_rows:
            self._chunks = []
            return
        chunks, self._chunks = self._chunks, []
        self._loose = 0
        count = self.pending_rows
        self.pending_rows = 0
        self.pending_bytes = 0
        if self._writer is None:
            directory = self.root / layout.partition_dir(self.stream,
                                                         layout.date_of_ns(self.first_ns))
            ensure_dir(directory, self.root)
            self._tmp = directory / f"{self.first_ns}-open{layout.PARTITION_SUFFIX}.tmp"
            self._writer = _writer(self._tmp, table_for(self.stream), self.level)
        # schemas.storage decides what the live file keeps (e.g. raw only where the parsed
        # columns cannot re-derive it byte-exactly); the checksum covers the original raw.
        batch = prepare_for_storage(self.stream, self._built(chunks), compacted=False)
        self._writer.write_batch(batch)
        self.rows += count

    def _built(self, chunks: list[list[Message] | pa.RecordBatch]) -> pa.RecordBatch:
        """The stored batch of the buffered rows; their content is hashed on the way."""
        first = chunks[0]
        if len(chunks) == 1 and isinstance(first, list) and first[0]._data is not None:
            # Payloads the gap detector already decoded (thread writer): build_batch takes
            # the typed values from the dicts; the column path would parse them again.
            rows = first
            hash_rows(self._hash, zip([m.recv_ns for m in rows], [m.raw for m in rows],
                                      strict=True))
            return build_batch(self.stream, rows)
        batches = [messages_batch(c) if isinstance(c, list) else c for c in chunks]
        cols = pa.Table.from_batches(batches).combine_chunks().to_batches()[0].columns
        hash_arrays(self._hash, cols[0], cols[4])
        return build_batch_columns(self.stream, *cols)

    def seal(self) -> Path | None:
        """Write what is left, add metadata, publish atomically; ``None`` if empty."""
        self.flush_rows()
        if self._writer is None or self._tmp is None:
            return None
        writer, tmp = self._writer, self._tmp
        self._writer = None
        try:
            writer.add_key_value_metadata(self._metadata())
        finally:
            writer.close()
        final = self.root / layout.partition_path(self.stream, self.first_ns, self.last_ns)
        publish(tmp, final)
        self._tmp = None
        return final

    def abort(self) -> None:
        """Drop the ``.tmp`` file (error path; the rows stay in the journal)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                writer.close()
        if self._tmp is not None:
            remove_quietly(self._tmp)
            self._tmp = None
        self._chunks = []
        self._loose = 0
        self.pending_rows = 0

    def _metadata(self) -> dict[str, str]:
        return {
            f"{META_PREFIX}version": recorder_version(),
            f"{META_PREFIX}schema_version": str(layout.SCHEMA_VERSION),
            f"{META_PREFIX}stream": self.stream,
            f"{META_PREFIX}table": table_for(self.stream).name,
            f"{META_PREFIX}first_recv_ns": str(self.first_ns),
            f"{META_PREFIX}last_recv_ns": str(self.last_ns),
            f"{META_PREFIX}rows": str(self.rows),
            f"{META_PREFIX}content_sha256": self._hash.hexdigest(),
            f"{META_PREFIX}checksum_algo": CHECKSUM_ALGO,
        }


def day_window(recv_ns: int, rotate_ns: int) -> tuple[int, int]:
    """The rotation window ``[start, end)`` holding ``recv_ns``, clipped to its UTC day."""
    day = 86_400 * 1_000_000_000
    day_start = recv_ns - recv_ns % day
    aligned = recv_ns - recv_ns % rotate_ns
    return max(aligned, day_start), min(aligned + rotate_ns, day_start + day)


def write_gaps_file(root: Path, gaps: Sequence[Gap], level: int = 3) -> Path:
    """Write ``gaps`` (all of one UTC date of ``start_ns``) as one sealed gaps partition.

    If a gaps file of the same name exists (same first and last start), its rows are merged
    in and the result replaces it; gaps are a set, so nothing is lost.
    """
    rows = sorted(gaps, key=lambda g: (g.start_ns, g.end_ns, g.stream, g.kind.value))
    final = root / layout.gaps_path(rows[0].start_ns, rows[-1].start_ns)
    ensure_dir(final.parent, root)
    table = gaps_table(rows)
    replace = final.exists()
    if replace:
        old = pq.read_table(final, schema=GAP_SCHEMA)
        table = pa.concat_tables([old, table]).sort_by([("start_ns", "ascending")])
    tmp = final.with_name(final.name + layout.TMP_SUFFIX)
    meta = {
        f"{META_PREFIX}version": recorder_version(),
        f"{META_PREFIX}schema_version": str(layout.SCHEMA_VERSION),
        f"{META_PREFIX}table": "gaps",
        f"{META_PREFIX}rows": str(table.num_rows),
    }
    try:
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd",
                       compression_level=level)
        publish(tmp, final, overwrite=replace)
    except BaseException:
        remove_quietly(tmp)
        raise
    return final


def gaps_table(gaps: Sequence[Gap]) -> pa.Table:
    """The gaps rows as an Arrow table of :data:`GAP_SCHEMA`."""
    return pa.table({
        "stream": [g.stream for g in gaps],
        "start_ns": [g.start_ns for g in gaps],
        "end_ns": [g.end_ns for g in gaps],
        "kind": [g.kind.value for g in gaps],
        "detail": [g.detail for g in gaps],
        "recovered": [g.recovered for g in gaps],
    }, schema=GAP_SCHEMA)


__all__ = [
    "CHECKSUM_ALGO",
    "GAP_SCHEMA",
    "ROW_OVERHEAD",
    "OpenPartition",
    "day_window",
    "gaps_table",
    "recorder_version",
    "write_gaps_file",
]
