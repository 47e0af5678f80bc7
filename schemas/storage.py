"""Parquet write settings for stream partitions: which encoding and codec each column gets.

DESIGN.md (storage budget) asks for archive bytes per message <= 0.75x Tardis-style gzip -6
NDJSON as written live and <= 0.5x after ``compact``, with the exact raw bytes recoverable.
Everything here is plain Parquet that DuckDB and pyarrow read back to the same logical
columns and values (no type changes, no row reordering); only the physical layout differs:

* monotone or slowly moving int64 (``recv_ns``, ``seq``, ``*_time_ns``, update and trade ids)
  use ``DELTA_BINARY_PACKED``: 5-20x smaller than dictionary and 1.2-4x smaller than plain
  under zstd on the real capture (``seq`` 0.16 B/msg vs 3.3 dictionary);
* float64 prices and quantities use dictionary encoding (pyarrow falls back to plain on its
  own when a dictionary page outgrows its limit). ``BYTE_STREAM_SPLIT`` was measured and is
  2-3x *larger* for decimal-derived doubles (quantities like ``0.057`` have noisy low
  mantissa bytes that zstd only matches as whole 8-byte values). Under zstd-19 (compacted)
  ``PLAIN`` beats dictionary on some columns and loses on others: on ``data/sample`` the best
  per-column choice saves 5.6% (bookTicker quantities -30%), on the synthetic mix plain for
  every scalar float costs +2.3%, so the choice would have to be made per column from the
  data (not done). Depth levels (the bulk of ``data/sample``: 191 of 206 B a row) gain at
  most 2-3% from any encoding, page size or codec (brotli-11 -3%); even storing them as
  integer ticks with in-list price deltas (a column type change, measured only) gives -11%;
* strings, int32 (``conn_id``, ``st``) and ``raw_fmt`` (near constant codes) use dictionary
  encoding (~0 B/msg); booleans keep Parquet's bit-packed default;
* ``raw`` is never dictionary encoded (every text is unique); ``DELTA_LENGTH_BYTE_ARRAY`` is
  the smallest and fastest of the byte-array encodings for it;
* zstd level :data:`LIVE_LEVEL` live (CPU bound writer thread), :data:`COMPACT_LEVEL` in
  ``compact`` (offline; ~5-8% smaller files for ~8x the CPU);
* no ``sorting_columns``: live rows are in arrival order and ``recv_ns`` is a wall clock that
  can step back, so a "sorted by recv_ns" claim could be false.

Measured (``python -m benchmarks --quick --only storage``): live 0.57x the gzip NDJSON on the
synthetic mix and 0.70x on ``data/sample`` with ``raw`` dropped live (1.27x and 1.52x when it
was kept), compacted 0.43x and 0.63x.

``raw`` dominates the bytes when kept (it alone is ~1x the gzip NDJSON), so the budget is met
only where :func:`prepare_for_storage` nulls the derivable ``raw`` texts via
:func:`schemas.formatters.drop_derivable_raw`, live (:func:`drops_raw_live`) and in
``compact``; :func:`schemas.formatters.restore_raw_column` gives the exact texts back. The
price is paid by readers of the raw text: restoring costs ~1-1.4 us a bookTicker/aggTrade
row, ~3 us a depth@100ms row and ~11 us a 60-level depth@0ms row (quick replay at speed 0:
483k msgs/s on such files vs 628k with ``raw`` kept).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from schemas._reference import formatter_for
from schemas.formatters import drop_derivable_raw
from schemas.streams import StreamName
from schemas.tables import RAW_FMT, Table, table_for

LIVE_LEVEL = 3
"""zstd level of live partitions (level 1 writes up to 1.4x faster, 1-2% larger)."""
COMPACT_LEVEL = 19
"""zstd level of compacted partitions (levels 20-22 give the same bytes here, slower)."""
DATA_PAGE_SIZE = 1 << 20
"""Data page target in bytes: larger pages (8-64 MiB) measured no smaller under zstd and
would coarsen the page index readers prune with."""

LIVE_ROW_GROUP_ROWS = 65_536
"""Rows per row group live: 5,000-row groups cost ~+7% bytes, 20,000-row groups ~+2%."""
COMPACT_ROW_GROUP_ROWS = 262_144
"""Rows per row group after ``compact`` (one group per partition at this capture's rates)."""
LIST_ROW_GROUP_DIVISOR = 8
"""Tables with list columns (depth levels, ``@arr`` streams) carry ~30-70 values a row, so
their row groups hold this many times fewer rows to bound the writer's memory."""

_DICTIONARY_INT_COLUMNS = frozenset({RAW_FMT})
"""int64 columns that are near constant rather than monotone (one code per symbol/format)."""


def _leaf(field: pa.Field[Any]) -> tuple[str, pa.DataType]:
    """The Parquet leaf path of a (possibly nested list) field and its value type.

    Paths follow the compliant nested layout (``name.list.element``) that
    :func:`parquet_options` switches on with ``use_compliant_nested_type``.
    """
    path, t = field.name, field.type
    while pa.types.is_list(t) or pa.types.is_large_list(t):
        path += ".list.element"
        t = t.value_type
    return path, t


def _is_list(field: pa.Field[Any]) -> bool:
    return pa.types.is_list(field.type) or pa.types.is_large_list(field.type)


def parquet_options(table: Table, *, compacted: bool) -> dict[str, Any]:
    """Keyword arguments for ``pyarrow.parquet.ParquetWriter`` (or ``write_table``).

    ``ParquetWriter(path, table.schema, **parquet_options(table, compacted=False))``.
    Row group size is a ``write_table``/``write_batch`` argument, not a writer one: see
    :func:`row_group_rows`. The file stays ordinary Parquet with ``table.schema``'s columns.
    """
    dictionary: list[str] = []
    encoding: dict[str, str] = {}
    statistics: list[str] = []
    for field in table.schema:
        path, leaf = _leaf(field)
        if field.name == "raw":
            encoding[path] = "DELTA_LENGTH_BYTE_ARRAY"
            continue  # min/max of whole JSON texts prune nothing
        if not _is_list(field):
            statistics.append(path)
        if pa.types.is_int64(leaf) and field.name not in _DICTIONARY_INT_COLUMNS:
            encoding[path] = "DELTA_BINARY_PACKED"
        elif not pa.types.is_boolean(leaf):
            dictionary.append(path)
    return {
        "compression": "zstd",
        "compression_level": COMPACT_LEVEL if compacted else LIVE_LEVEL,
        "use_dictionary": dictionary,
        "column_encoding": encoding,
        "use_compliant_nested_type": True,
        "write_statistics": statistics,
        "data_page_size": DATA_PAGE_SIZE,
    }


def row_group_rows(table: Table, *, compacted: bool) -> int:
    """Rows per row group to pass as ``row_group_size`` (a batch of more rows is split)."""
    rows = COMPACT_ROW_GROUP_ROWS if compacted else LIVE_ROW_GROUP_ROWS
    if table.is_array or any(_is_list(f) for f in table.typed_fields):
        rows //= LIST_ROW_GROUP_DIVISOR
    return rows


LIVE_MAX_REFERENCE_ROWS = 64
"""Rows of one batch the live writer may re-encode one at a time (~20-300 us each) after the
column-wise pass; when more are left (a new key order or precision the first rows did not
show), they keep ``raw`` and ``compact`` checks them again. Bounds the writer's work."""


def drops_raw_live(table: Table) -> bool:
    """Whether the live writer drops derivable ``raw`` texts of ``table`` by default.

    Every table with a formatter (array streams need their ``symbol`` column: item codes are
    learnt per symbol). The column-wise check costs ~0.6-1 us a bookTicker/aggTrade row and
    ~1.3-5 us a depth row (20-60 levels) on top of the writer's ~3-40 us, partly paid back by
    the Parquet writer no longer compressing ``raw`` (``benchmarks/_rawderive.py``).
    """
    if formatter_for(table) is None:
        return False
    return not table.is_array or any(f.name == "symbol" for f in table.typed_fields)


def prepare_for_storage(stream: str | StreamName, batch: pa.RecordBatch, *, compacted: bool,
                        drop_raw: bool | None = None) -> pa.RecordBatch:
    """``batch`` (a ``build_batch`` batch, or one read back from a partition) ready to write.

    With ``drop_raw`` every ``raw`` text that the row's typed columns re-encode to exactly is
    set to null and its ``raw_fmt`` code set (:func:`schemas.formatters.drop_derivable_raw`);
    other rows keep ``raw``. Rows whose ``raw`` is already null keep their code. ``drop_raw``
    defaults to true when ``compacted`` (every row checked) and, live, to
    :func:`drops_raw_live` of the stream's table (at most :data:`LIVE_MAX_REFERENCE_ROWS`
    rows a batch re-encoded one by one). Values are otherwise untouched.
    """
    table = table_for(stream)
    if drop_raw is None:
        drop_raw = compacted or drops_raw_live(table)
    if not drop_raw or batch.num_rows == 0 or batch.column("raw").null_count == batch.num_rows:
        return batch
    return drop_derivable_raw(stream, batch,
                              max_reference_rows=None if compacted else LIVE_MAX_REFERENCE_ROWS)


def storage_plan(stream: str | StreamName, *, compacted: bool) -> tuple[dict[str, Any], int]:
    """``(parquet_options, row_group_rows)`` for a stream's table (a convenience pair)."""
    table = table_for(stream)
    return parquet_options(table, compacted=compacted), row_group_rows(table, compacted=compacted)


__all__ = [
    "COMPACT_LEVEL",
    "COMPACT_ROW_GROUP_ROWS",
    "DATA_PAGE_SIZE",
    "LIVE_LEVEL",
    "LIVE_MAX_REFERENCE_ROWS",
    "LIVE_ROW_GROUP_ROWS",
    "drops_raw_live",
    "parquet_options",
    "prepare_for_storage",
    "row_group_rows",
    "storage_plan",
]
