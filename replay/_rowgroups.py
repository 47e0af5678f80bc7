"""Which row groups of a partition to read, and with which columns.

DESIGN.md storage budget: ``raw`` is null where the typed columns re-encode to the received
text (the live layout), and only then are the typed columns needed to restore it. Row-group
statistics prune the groups outside a ``[start, end)`` window and tell which groups store
``raw`` on every row; those are read with just the asked columns.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def row_groups_in(meta: pq.FileMetaData, start: int | None, end: int | None) -> list[int]:
    """Row groups that may hold ``recv_ns`` in ``[start, end)`` (by column statistics)."""
    groups = list(range(meta.num_row_groups))
    if start is None and end is None:
        return groups
    try:
        col = meta.schema.to_arrow_schema().get_field_index("recv_ns")
    except (pa.ArrowException, KeyError):
        return groups
    if col < 0:
        return groups
    kept = []
    for g in groups:
        stats = meta.row_group(g).column(col).statistics
        if stats is None or not stats.has_min_max:
            kept.append(g)
            continue
        lo, hi = stats.min, stats.max
        if not isinstance(lo, int) or not isinstance(hi, int):
            kept.append(g)
            continue
        if (end is None or lo < end) and (start is None or hi >= start):
            kept.append(g)
    return kept


def batches_of(
    pfile: pq.ParquetFile,
    groups: list[int],
    columns: list[str],
    batch_rows: int,
    restoring: bool,
) -> Iterator[pa.RecordBatch]:
    """Batches of ``columns`` of ``groups``; with ``restoring``, every column where ``raw``
    may be null.

    DESIGN.md storage budget: ``raw`` is null where the typed columns re-encode to the
    received text, and only then are those columns needed. Row groups whose statistics prove
    ``raw`` on every row are read with just the asked columns, those with a null count with
    every column, and so are groups whose ``raw`` chunk is too small to hold text; the others
    adaptively (:func:`_adaptive_batches`).
    """
    if not restoring:
        yield from _iter(pfile, groups, columns, batch_rows)
        return
    every = pfile.schema_arrow.names
    for run, stored in _runs_by_raw(pfile.metadata, groups):
        if stored is None:
            yield from _adaptive_batches(pfile, run, columns, batch_rows)
        else:
            yield from _iter(pfile, run, columns if stored else every, batch_rows)


def _iter(pfile: pq.ParquetFile, groups: list[int], columns: list[str],
          batch_rows: int) -> Iterator[pa.RecordBatch]:
    return pfile.iter_batches(batch_size=batch_rows, row_groups=groups, columns=columns,
                              use_threads=False)  # one reader thread is enough


def _adaptive_batches(pfile: pq.ParquetFile, groups: list[int], columns: list[str],
                      batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Just ``columns`` until a batch has a null ``raw``, then every column from there on.

    Reading only the asked columns until then keeps a file that stores ``raw`` on every row
    as cheap to read as before (when its footer has no statistics to tell).
    """
    done = 0
    for batch in _iter(pfile, groups, columns, batch_rows):
        if batch.column("raw").null_count:
            break
        done += batch.num_rows
        yield batch
    else:
        return
    for batch in _iter(pfile, groups, pfile.schema_arrow.names, batch_rows):
        if done >= batch.num_rows:
            done -= batch.num_rows
            continue
        if done:
            batch, done = batch.slice(done), 0
        yield batch


def _raw_index(meta: pq.FileMetaData) -> int | None:
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    return names.index("raw") if "raw" in names else None


_TEXT_BYTES_PER_ROW = 8
_CHUNK_BYTES = 256
"""A ``raw`` column chunk under ``_TEXT_BYTES_PER_ROW`` bytes a row (plus ``_CHUNK_BYTES``)
holds (almost) no text: a Binance message is tens of bytes at least."""


def _raw_stored(meta: pq.FileMetaData, group: int, col: int) -> bool | None:
    """True if the statistics prove ``raw`` on every row of ``group``; False if they show a
    null, or (the live writer keeps no statistics on ``raw``) if its column chunk is too small
    to hold text; None when it cannot tell.

    This only picks the columns to read first: :func:`_adaptive_batches` and the restore
    behind ``False`` are both right whatever the rows hold.
    """
    rg = meta.row_group(group)
    chunk = rg.column(col)
    stats = chunk.statistics
    if stats is not None and getattr(stats, "has_null_count", True):
        return not stats.null_count
    if chunk.total_uncompressed_size < _TEXT_BYTES_PER_ROW * rg.num_rows + _CHUNK_BYTES:
        return False
    return None


def _runs_by_raw(meta: pq.FileMetaData, groups: list[int]
                 ) -> list[tuple[list[int], bool | None]]:
    """``groups`` cut into runs of consecutive groups with one :func:`_raw_stored` answer."""
    col = _raw_index(meta)
    runs: list[tuple[list[int], bool | None]] = []
    for g in groups:
        stored = None if col is None else _raw_stored(meta, g, col)
        if runs and runs[-1][1] is stored:
            runs[-1][0].append(g)
        else:
            runs.append(([g], stored))
    return runs


def may_lack_raw(meta: pq.FileMetaData, groups: list[int]) -> bool:
    """True unless the statistics prove ``raw`` has no null in ``groups``."""
    col = _raw_index(meta)
    if col is None:
        return False
    return not all(_raw_stored(meta, g, col) for g in groups)


def clip(batch: pa.RecordBatch, start: int | None, end: int | None) -> pa.RecordBatch:
    """The rows of ``batch`` with ``recv_ns`` in ``[start, end)`` (``batch`` itself if all)."""
    if start is None and end is None:
        return batch
    recv = batch.column("recv_ns")
    mask = None
    if start is not None:
        mask = pc.greater_equal(recv, pa.scalar(start, pa.int64()))
    if end is not None:
        below = pc.less(recv, pa.scalar(end, pa.int64()))
        mask = below if mask is None else pc.and_(mask, below)
    if mask is None or pc.all(mask).as_py():
        return batch
    return batch.filter(mask)


__all__ = ["batches_of", "clip", "may_lack_raw", "row_groups_in"]
