"""Re-encode typed rows to the exact text Binance sent, so ``raw`` need not be stored twice.

DESIGN.md (storage budget): ``raw`` is nullable and is dropped only for rows whose typed columns,
re-encoded by the stream's formatter, give back the received bytes exactly; one reader
function returns the exact text of any row. The row-at-a-time reference lives in
:mod:`schemas._reference` (templates from :mod:`schemas._templates`, decimal places in the
``raw_fmt`` code); batches take the column-wise path of :mod:`schemas._columnwise` (Arrow
kernels, :mod:`schemas._render`), which drops a row's ``raw`` only where its rendering equals
it and is proven equal to the reference's, and hands every other row to the reference.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import pyarrow as pa

from schemas._columnwise import MAX_CODES, drop_columnwise, restore_columnwise
from schemas._reference import drop_rows, encode_row, formatter_for, restore_row, restore_rows
from schemas.streams import StreamName
from schemas.tables import table_for

_ARROW_LIMITS = (pa.ArrowInvalid, pa.ArrowCapacityError, OverflowError)
"""Kernel limits (32-bit string offsets, ...) the column-wise path may hit on huge batches;
keeping ``raw`` (or the per-row reference) is then the answer, never an error."""
SMALL_BATCH_ROWS = 16
"""Below this many rows the per-row reference is quicker than a column-wise pass."""
Arr: TypeAlias = "pa.Array[Any]"


def raw_fmt(stream: str | StreamName, payload_text: str, row: dict[str, Any]
            ) -> int | list[int] | None:
    """The ``raw_fmt`` code that re-encodes ``row`` to exactly ``payload_text``, else ``None``.

    ``row`` holds the typed columns of ``payload_text`` (a ``build_batch`` row). For array
    streams the code is a list with one element per array item.
    """
    table = table_for(stream)
    fmt = formatter_for(table)
    return None if fmt is None else encode_row(table, fmt, payload_text, row)


def raw_is_derivable(stream: str | StreamName, payload_text: str, row: dict[str, Any]) -> bool:
    """True if the typed columns of ``row`` re-encode to exactly ``payload_text``."""
    return raw_fmt(stream, payload_text, row) is not None


def restore_raw(stream: str | StreamName, row: dict[str, Any]) -> str:
    """The exact received text of a stored row: ``raw`` if kept, else re-encoded.

    ``row`` needs ``raw``, ``raw_fmt`` and the typed columns. Raises
    :class:`~schemas.errors.CorruptDataError` if the row has neither a ``raw`` text nor a
    ``raw_fmt`` code that renders it.
    """
    table = table_for(stream)
    return restore_row(table, formatter_for(table), row)


def drop_derivable_raw(stream: str | StreamName, batch: pa.RecordBatch, *,
                       max_reference_rows: int | None = None) -> pa.RecordBatch:
    """``batch`` with ``raw`` set to null (and ``raw_fmt`` set) wherever it is re-derivable.

    With ``max_reference_rows`` (the live writer's bound on per-row work), rows the column-wise
    pass leaves over are checked one by one only if there are at most that many; otherwise
    they keep ``raw``. ``None`` checks every row (same result as the per-row reference).
    """
    table = table_for(stream)
    fmt = formatter_for(table)
    if fmt is None or batch.num_rows == 0 or batch.column("raw").null_count == batch.num_rows:
        return batch
    if batch.num_rows < SMALL_BATCH_ROWS or (table.is_array and "symbol" not in batch.schema.names):
        return drop_rows(table, fmt, batch)
    try:
        return drop_columnwise(table, fmt, batch, max_reference_rows)
    except _ARROW_LIMITS:  # e.g. over 2 GiB of text in one batch: never lose a row over it
        return batch if max_reference_rows is not None else drop_rows(table, fmt, batch)


def restore_raw_column(stream: str | StreamName, batch: pa.RecordBatch) -> Arr:
    """The exact received text of every row of ``batch`` (see :func:`restore_raw`).

    ``batch`` must carry the typed columns and ``raw_fmt`` wherever ``raw`` is null. Raises
    :class:`~schemas.errors.CorruptDataError` for a row it cannot restore.
    """
    raw = batch.column("raw")
    if raw.null_count == 0:
        return raw
    table = table_for(stream)
    fmt = formatter_for(table)
    if fmt is None or batch.num_rows < SMALL_BATCH_ROWS:
        return restore_rows(table, fmt, batch)
    try:
        return restore_columnwise(table, fmt, batch)
    except _ARROW_LIMITS:
        return restore_rows(table, fmt, batch)


__all__ = ["MAX_CODES", "SMALL_BATCH_ROWS", "drop_derivable_raw", "raw_fmt", "raw_is_derivable",
           "restore_raw", "restore_raw_column"]
