"""Column-wise raw re-derivation of whole batches (the fast path of :mod:`schemas.formatters`).

Binance keeps the key order and decimal places of a stream fixed (BINANCE.md section 3), so a
batch needs only one or two ``raw_fmt`` codes: they are learnt from a few rows with the
per-row reference (:mod:`schemas._reference`), the batch is rendered once per code with Arrow
kernels (:mod:`schemas._render`) and compared with ``raw`` in one vectorised equality. A row's
``raw`` is dropped only when that rendering equals it; rows left over are re-encoded by the
reference (at most ``max_reference_rows`` of them when the caller bounds the work, the others
keep ``raw``). Restoring renders each row with its stored code and gives every row the fast
path cannot vouch for to the reference, which raises
:class:`~schemas.errors.CorruptDataError` for a row it cannot restore. Array streams
(``!...@arr``) carry one code per item: items take the code learnt for their symbol, are
rendered column-wise and joined per row, and the whole row text is compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as _compute

from schemas._reference import DP_BITS, Formatter, encode_row, restore_row, unpack
from schemas._render import Rendering, arange, render
from schemas.tables import RAW_FMT, Table

# The pyarrow stubs' overloads do not cover these kernel/argument combinations (scalars mixed
# with arrays, string joins, dictionary arrays); the kernels check their inputs at run time.
pc: Any = _compute
Arr: TypeAlias = "pa.Array[Any]"

MAX_CODES = 8
"""Codes tried column-wise per batch (a stream has one or two: e.g. trade placeholders with
``"p":"0"`` next to real prices); rows left after them are rendered one by one."""


def _row(batch: pa.RecordBatch, i: int) -> dict[str, Any]:
    row: dict[str, Any] = batch.slice(i, 1).to_pylist()[0]
    return row


def _render_code(fmt: Formatter, columns: dict[str, Arr], code: int) -> Rendering | None:
    variant, dps = unpack(code, len(fmt.slot_paths))
    if variant >= len(fmt.parts):
        return None
    n = len(next(iter(columns.values())))
    return render(fmt.parts[variant], columns, dps, n)


def _code_column(fmt: Formatter, code: int, rendering: Rendering, n: int) -> Arr:
    """``code`` per row with the places of slots that show no value set to 0, as the reference
    learns places only from the strings it sees."""
    _, dps = unpack(code, len(fmt.slot_paths))
    out: Arr = pa.array([code] * n, pa.int64())
    for slot, present in rendering.present.items():
        if dps[slot]:
            bits = pa.scalar(dps[slot] << (slot * DP_BITS), pa.int64())
            out = pc.subtract(out, pc.if_else(present, pa.scalar(0, pa.int64()), bits))
    return out


@dataclass
class _Found:
    """Rows given a code so far: positions and codes, in discovery order."""

    positions: list[Arr] = field(default_factory=list)
    codes: list[Arr] = field(default_factory=list)

    def add(self, positions: Arr, codes: Arr) -> None:
        if len(positions):
            self.positions.append(pc.cast(positions, pa.int64()))
            self.codes.append(codes)


def _learn_codes(table: Table, fmt: Formatter, batch: pa.RecordBatch,
                 max_reference_rows: int | None) -> _Found:
    """Codes for the rows of ``batch`` whose ``raw`` the typed columns give back exactly."""
    found = _Found()
    raw = batch.column("raw")
    todo = pc.indices_nonzero(pc.is_valid(raw))
    for _ in range(MAX_CODES):
        if not len(todo):
            return found
        first = todo[0].as_py()
        row = _row(batch, first)
        code = encode_row(table, fmt, row["raw"], row)
        if code is None or code.__class__ is not int:
            todo = todo[1:]  # keeps its raw
            continue
        sub = batch if len(todo) == batch.num_rows else batch.take(todo)
        rendering = _render_code(fmt, {name: sub.column(name) for name in sub.schema.names},
                                 code)
        assert rendering is not None
        match = pc.fill_null(pc.equal(rendering.text, sub.column("raw")), False)
        found.add(pc.filter(todo, match),
                  pc.filter(_code_column(fmt, code, rendering, len(todo)), match))
        if not match[0].as_py():  # the reference vouches for that row itself
            found.add(todo[:1], pa.array([code], pa.int64()))
            match = pc.or_(match, pa.array([True] + [False] * (len(todo) - 1)))
        todo = pc.filter(todo, pc.invert(match))
    if max_reference_rows is not None and len(todo) > max_reference_rows:
        return found  # bounded work: these keep their raw
    for i in todo.to_pylist():
        row = _row(batch, i)
        code = encode_row(table, fmt, row["raw"], row)
        if code is not None:
            found.add(pa.array([i], pa.int64()), pa.array([code], pa.int64()))
    return found


def _learn_array_codes(table: Table, fmt: Formatter, batch: pa.RecordBatch,
                       max_reference_rows: int | None) -> _Found:
    """:func:`_learn_codes` of an array stream: one code per item. Items of one symbol share
    a code (its precision), so each code learnt with the reference on one row is reused for
    that symbol's items in every row; a row is dropped when its whole text matches."""
    found = _Found()
    raw = batch.column("raw")
    todo = pc.indices_nonzero(pc.is_valid(raw))
    known: dict[str, int] = {}
    for _ in range(MAX_CODES):
        if not len(todo):
            return found
        first = todo[0].as_py()
        row = _row(batch, first)
        codes = encode_row(table, fmt, row["raw"], row)
        if codes is None or codes.__class__ is not list:
            todo = todo[1:]  # keeps its raw
            continue
        known.update(zip(row["symbol"], codes, strict=True))
        sub = batch if len(todo) == batch.num_rows else batch.take(todo)
        text, learnt = _render_items(table, fmt, sub, known)
        match = pc.fill_null(pc.equal(text, sub.column("raw")), False)
        found.add(pc.filter(todo, match), pc.filter(learnt, match))
        if not match[0].as_py():  # the reference vouches for that row itself
            found.add(todo[:1], pa.array([codes], pa.list_(pa.int64())))
            match = pc.or_(match, pa.array([True] + [False] * (len(todo) - 1)))
        todo = pc.filter(todo, pc.invert(match))
    if max_reference_rows is not None and len(todo) > max_reference_rows:
        return found  # bounded work: these keep their raw
    for i in todo.to_pylist():
        row = _row(batch, i)
        codes = encode_row(table, fmt, row["raw"], row)
        if codes is not None:
            found.add(pa.array([i], pa.int64()), pa.array([codes], pa.list_(pa.int64())))
    return found


def _render_items(table: Table, fmt: Formatter, batch: pa.RecordBatch, known: dict[str, int]
                  ) -> tuple[Arr, Arr]:
    """Rows of an array stream rendered with each item's symbol's code: ``(text, codes)``,
    null where an item has no known code, the lists do not line up, or unsure."""
    lengths = pc.list_value_length(batch.column("symbol"))
    aligned = pc.is_valid(lengths)
    for f in table.typed_fields:
        aligned = pc.and_(aligned, pc.fill_null(
            pc.equal(pc.list_value_length(batch.column(f.name)), lengths), False))
    columns = {f.name: pc.if_else(aligned, batch.column(f.name), pa.scalar(None, f.type))
               for f in table.typed_fields}
    items = {name: pc.list_flatten(col) for name, col in columns.items()}
    symbols = pa.array(list(known), pa.string())
    item_codes = pc.take(pa.array(list(known.values()), pa.int64()),
                         pc.index_in(items["symbol"], value_set=symbols))
    item_text, item_learnt = _render_each(fmt, items, item_codes, MAX_ITEM_CODES)
    counts = pc.fill_null(pc.list_value_length(columns["symbol"]), 0)
    offsets = pa.concat_arrays([pa.array([0], pa.int32()),
                                pc.cast(pc.cumulative_sum(counts), pa.int32())])
    not_aligned = pc.invert(aligned)
    texts = pa.ListArray.from_arrays(offsets, item_text, mask=not_aligned)
    text = pc.binary_join_element_wise("[", pc.binary_join(texts, ","), "]", "",
                                       null_handling="emit_null")
    learnt = pa.ListArray.from_arrays(offsets, item_learnt, mask=not_aligned)
    return text, learnt


def _scatter(batch: pa.RecordBatch, found: _Found) -> pa.RecordBatch:
    """``batch`` with ``raw`` nulled and ``raw_fmt`` set at the found positions."""
    if not found.positions:
        return batch
    i_raw = batch.schema.get_field_index("raw")
    i_fmt = batch.schema.get_field_index(RAW_FMT)
    n = batch.num_rows
    codes = pa.concat_arrays(found.codes)
    positions = pa.concat_arrays(found.positions)
    if len(found.codes) > 1:
        order = pc.sort_indices(positions)
        codes, positions = pc.take(codes, order), pc.take(positions, order)
    if len(codes) == n:  # every row (the common case): positions are 0..n-1
        raw: Arr = pa.nulls(n, pa.string())
        fmt_col = codes
    else:
        mask = pc.is_in(arange(n), value_set=positions)
        raw = pc.if_else(mask, pa.scalar(None, pa.string()), batch.column(i_raw))
        # Row i takes the old code, or the k-th found code (found rows are in row order).
        pick = pc.replace_with_mask(arange(n), mask, pc.add(arange(len(codes)), n))
        fmt_col = pc.take(pa.concat_arrays([batch.column(i_fmt), codes]), pick)
    batch = batch.set_column(i_raw, batch.schema.field(i_raw), raw)
    return batch.set_column(i_fmt, batch.schema.field(i_fmt), fmt_col)


def drop_columnwise(table: Table, fmt: Formatter, batch: pa.RecordBatch,
                     max_reference_rows: int | None) -> pa.RecordBatch:
    """:func:`drop_derivable_raw` column-wise whatever the size."""
    if table.is_array:
        return _scatter(batch, _learn_array_codes(table, fmt, batch, max_reference_rows))
    return _scatter(batch, _learn_codes(table, fmt, batch, max_reference_rows))


def _restore_rows(table: Table, fmt: Formatter | None, batch: pa.RecordBatch,
                  positions: list[int]) -> list[str]:
    return [restore_row(table, fmt, _row(batch, i)) for i in positions]


def _render_codes(fmt: Formatter, columns: dict[str, Arr], codes: Arr, max_codes: int) -> Arr:
    """Each row of ``columns`` rendered with its own code; null where the column-wise path
    cannot vouch for the text (or the code is null, or there are over ``max_codes`` codes)."""
    return _render_each(fmt, columns, codes, max_codes, learn=False)[0]


def _render_each(fmt: Formatter, columns: dict[str, Arr], codes: Arr, max_codes: int,
                 learn: bool = True) -> tuple[Arr, Arr]:
    """:func:`_render_codes`, and each row's code as the reference would learn it from the
    text (:func:`_code_column`) when ``learn``."""
    n = len(codes)
    distinct = pc.drop_null(pc.unique(codes))
    if len(distinct) > max_codes:
        return pa.nulls(n, pa.string()), pa.nulls(n, pa.int64())
    if len(distinct) == 1 and not codes.null_count:
        # One code for the whole batch (a stream's usual case): the rendering is the column.
        code = distinct[0].as_py()
        rendering = _render_code(fmt, columns, code)
        if rendering is None:
            return pa.nulls(n, pa.string()), pa.nulls(n, pa.int64())
        return rendering.text, (_code_column(fmt, code, rendering, n) if learn else codes)
    if not learn:
        codes = _merge_codes(fmt, columns, codes, distinct)
        distinct = pc.drop_null(pc.unique(codes))
        if len(distinct) == 1 and not codes.null_count:
            rendering = _render_code(fmt, columns, distinct[0].as_py())
            if rendering is not None:
                return rendering.text, codes
    positions: list[Arr] = [pc.indices_nonzero(pc.is_null(codes))]
    texts: list[Arr] = [pa.nulls(len(positions[0]), pa.string())]
    learnt: list[Arr] = [pa.nulls(len(positions[0]), pa.int64())]
    for code in distinct.to_pylist():
        selected = pc.indices_nonzero(pc.fill_null(pc.equal(codes, code), False))
        rendering = _render_code(fmt, {k: pc.take(v, selected) for k, v in columns.items()},
                                 code)
        positions.append(selected)
        k = len(selected)
        texts.append(pa.nulls(k, pa.string()) if rendering is None else rendering.text)
        learnt.append(pa.nulls(k, pa.int64()) if rendering is None
                      else _code_column(fmt, code, rendering, k))
    order = pc.sort_indices(pa.concat_arrays([pc.cast(p, pa.uint64()) for p in positions]))
    return (pc.take(pa.concat_arrays(texts), order),
            pc.take(pa.concat_arrays(learnt), order))


def _merge_codes(fmt: Formatter, columns: dict[str, Arr], codes: Arr, distinct: Arr) -> Arr:
    """``codes`` with each row's code replaced by the batch's most common one where the two
    differ only in the places of slots that have no value in that row (an empty level list,
    an absent key): places only shape values, so both render the same text."""
    if len(distinct) < 2:
        return codes
    common: int = pc.mode(codes)[0]["mode"].as_py()
    variant, dps = unpack(common, len(fmt.slot_paths))
    for code in distinct.to_pylist():
        if code is None or code == common:
            continue
        other_variant, other_dps = unpack(code, len(fmt.slot_paths))
        if other_variant != variant:
            continue
        empty: Arr = pc.fill_null(pc.equal(codes, code), False)
        for slot, (a, b) in enumerate(zip(dps, other_dps, strict=True)):
            if a != b:
                name, is_list = fmt.slot_columns[slot]
                values = columns[name]
                absent = (pc.fill_null(pc.equal(pc.list_value_length(values), 0), True)
                          if is_list else pc.is_null(values))
                empty = pc.and_(empty, absent)
        codes = pc.if_else(empty, pa.scalar(common, pa.int64()), codes)
    return codes


def restore_columnwise(table: Table, fmt: Formatter, batch: pa.RecordBatch) -> Arr:
    """:func:`restore_raw_column` column-wise whatever the size; rows the fast path cannot
    vouch for are rendered by the reference (which raises for a row it cannot restore)."""
    raw = batch.column("raw")
    if raw.null_count == 0:
        return raw
    every = raw.null_count == batch.num_rows  # the live layout: no row keeps its raw
    missing = None if every else pc.indices_nonzero(pc.is_null(raw))
    sub = batch if missing is None else batch.take(missing)
    if table.is_array:
        text = _render_arrays(table, fmt, sub)
    else:
        columns = {f.name: sub.column(f.name) for f in table.typed_fields}
        text = _render_codes(fmt, columns, sub.column(RAW_FMT), MAX_CODES)
    if text.null_count:  # the reference renders these (or raises CorruptDataError)
        slow = pc.indices_nonzero(pc.is_null(text))
        rows = slow if missing is None else pc.take(missing, slow)
        redone = pa.array(_restore_rows(table, fmt, batch, rows.to_pylist()), pa.string())
        text = pc.replace_with_mask(text, pc.is_null(text), redone)
    if missing is None:
        return text
    out: Arr = pc.replace_with_mask(raw, pc.is_null(raw), text)
    return out


MAX_ITEM_CODES = 64
"""Codes rendered column-wise per batch of an array stream (one per symbol precision)."""


def _render_arrays(table: Table, fmt: Formatter, batch: pa.RecordBatch) -> Arr:
    """Array-stream rows (``[item,..]``, one ``raw_fmt`` code per item) rendered item-wise;
    null where a row's lists do not line up with its codes or an item is not vouched for."""
    codes = batch.column(RAW_FMT)
    lengths = pc.list_value_length(codes)
    aligned = pc.is_valid(lengths)
    for f in table.typed_fields:
        aligned = pc.and_(aligned, pc.fill_null(
            pc.equal(pc.list_value_length(batch.column(f.name)), lengths), False))
    if not pc.all(aligned).as_py():  # such rows go to the reference: keep them out of the items
        no_list = pa.scalar(None, codes.type)
        codes = pc.if_else(aligned, codes, no_list)
        columns = {f.name: pc.if_else(aligned, batch.column(f.name), pa.scalar(None, f.type))
                   for f in table.typed_fields}
    else:
        columns = {f.name: batch.column(f.name) for f in table.typed_fields}
    items = {name: pc.list_flatten(col) for name, col in columns.items()}
    item_text = _render_codes(fmt, items, pc.list_flatten(codes), MAX_ITEM_CODES)
    counts = pc.fill_null(pc.list_value_length(codes), 0)
    offsets = pa.concat_arrays([pa.array([0], pa.int32()),
                                pc.cast(pc.cumulative_sum(counts), pa.int32())])
    rows = pa.ListArray.from_arrays(offsets, item_text, mask=pc.invert(aligned))
    out: Arr = pc.binary_join_element_wise("[", pc.binary_join(rows, ","), "]", "",
                                           null_handling="emit_null")
    return out


__all__ = ["MAX_CODES", "MAX_ITEM_CODES", "drop_columnwise", "restore_columnwise"]
