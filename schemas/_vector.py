"""Vectorised typed columns: one Arrow JSON parse of a whole batch of payload texts.

The per-message path (``orjson.loads`` + a generated extractor + one Arrow conversion per
column, see :mod:`schemas.tables`) costs a few microseconds a row. For the high-volume tables
(aggTrade, trade, bookTicker, depthUpdate, markPriceUpdate, ...) this module parses the payload
texts joined by newlines with ``pyarrow.json.read_json`` and an explicit schema, so keys,
numbers and strings are handled in C++. It is only an accelerator: it returns ``None``
whenever the batch holds anything on which its result could differ from the per-message path
(invalid JSON, a value of an unexpected JSON type, NaN/Infinity literals that only Arrow
accepts, nesting that orjson refuses, levels that are not ``[price, qty]`` pairs, ...), and
the caller then parses the batch message by message. The per-column conversions
(:func:`schemas._columns.scalar_array`) are the same as on that path, so a batch has the same
values whichever path built it.

Binance sends prices and quantities as decimal strings and ids/times as JSON integers
(BINANCE.md section 3); Arrow's JSON reader refuses a value of another JSON type for a column
of the explicit schema, so every accepted value has exactly the type the column expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from schemas._columns import BOOL, F64, I32, I64, NS, NS_PER_MS, STR, Col, scalar_array

# The JSON type each column kind is read as: prices stay strings so that the float64 values
# come from the same string -> float64 cast as on the per-message path.
_JSON_TYPE: dict[str, pa.DataType] = {
    F64: pa.string(),
    STR: pa.string(),
    NS: pa.int64(),
    I64: pa.int64(),
    I32: pa.int64(),
    BOOL: pa.bool_(),
}
_LEVELS_TYPE = pa.list_(pa.list_(pa.string()))

# orjson refuses nesting deeper than 1024 levels, Arrow does not: a payload with fewer than
# this many '[' plus '{' cannot reach that depth.
_MAX_BRACKETS = 1000
# Literals that Arrow's parser accepts outside strings and orjson (strict RFC 8259) refuses.
_NON_JSON = (b"NaN", b"Infinity")


@dataclass(frozen=True, slots=True)
class Plan:
    """How to read one table's typed columns from a joined batch of payload texts."""

    parse_options: pj.ParseOptions
    columns: tuple[Col, ...]


def make_plan(columns: tuple[Col, ...], is_array: bool) -> Plan | None:
    """A plan for a table whose columns are all top-level keys or ``[price, qty]`` levels.

    ``None`` for array streams (one JSON array per payload), nested paths (``k.o``), lists
    of objects and keys that two columns read as different JSON types.
    """
    if is_array or not columns:
        return None
    types: dict[str, pa.DataType] = {}
    for col in columns:
        if "." in col.path or not (col.item is None or col.item in (0, 1)):
            return None
        typ = _JSON_TYPE[col.kind] if col.item is None else _LEVELS_TYPE
        if col.item is not None and col.kind != F64:
            return None
        if types.setdefault(col.path, typ) != typ:
            return None
    schema = pa.schema([pa.field(key, typ) for key, typ in types.items()])
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    return Plan(options, columns)


def _whole(column: pa.ChunkedArray[Any]) -> pa.Array[Any]:
    chunks = column.chunks
    return chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)


def _joined_texts(raw: pa.Array[Any], texts: Sequence[str] | None) -> bytes | None:
    """The payloads joined by newlines (UTF-8 bytes), ``None`` if the parse may differ.

    One payload per line: no newline inside a payload, every payload opens an object (so no
    blank line), and exactly one row per line (checked after the parse).
    """
    n = len(raw)
    if texts is not None:
        try:
            joined = "\n".join(texts).encode()
        except (TypeError, UnicodeEncodeError):  # a lone surrogate: orjson refuses it too
            return None
        longest = max(map(len, texts))
    else:
        if raw.null_count:
            return None
        lists = pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), raw)
        joined = cast(Any, pc.binary_join(lists, "\n"))[0].as_buffer().to_pybytes()
        # UTF-8 bytes >= characters: only texts this long in bytes can be as long in text.
        lengths: Any = pc.binary_length(cast(Any, raw))
        longest = pc.max(lengths).as_py()
    if joined.count(b"\n") != n - 1 or any(lit in joined for lit in _NON_JSON):
        return None
    if not pc.all(pc.starts_with(raw, "{")).as_py():
        return None
    if longest >= _MAX_BRACKETS:
        # Only a payload this long can hold that many brackets: count them in those.
        long: Sequence[Any] = texts if texts is not None else raw.filter(
            cast(Any, pc.greater_equal)(lengths, _MAX_BRACKETS)).to_pylist()
        for text in long:
            if len(text) >= _MAX_BRACKETS and text.count("[") + text.count("{") >= _MAX_BRACKETS:
                return None
    return joined


def _parse(plan: Plan, raw: pa.Array[Any], texts: Sequence[str] | None) -> pa.Table | None:
    """The Arrow JSON parse of ``raw`` (one row each), or ``None`` if it may differ."""
    joined = _joined_texts(raw, texts)
    if joined is None:
        return None
    read = pj.ReadOptions(use_threads=False, block_size=max(len(joined) + 1, 1 << 16))
    try:
        source: Any = pa.BufferReader(joined)
        table = pj.read_json(source, read_options=read,
                             parse_options=plan.parse_options)
    except (pa.ArrowException, ValueError):
        return None
    return table if table.num_rows == len(raw) else None


def _scalar(col: Col, values: pa.Array[Any]) -> pa.Array[Any]:
    """``values`` (as parsed by Arrow) converted exactly as :func:`scalar_array` would."""
    try:
        if col.kind == F64:
            return values.cast(pa.float64())
        if col.kind == NS:
            return pc.multiply_checked(values, NS_PER_MS)
        if col.kind == I32:
            return values.cast(pa.int32())
        return values
    except (pa.ArrowException, OverflowError, ValueError):
        # An unparseable decimal or an out-of-range integer: the per-value rules decide.
        return scalar_array(col.kind, values.to_pylist())


def _levels(col: Col, values: pa.Array[Any]) -> pa.Array[Any] | None:
    """``list<float64>`` of item ``col.item`` of each ``[price, qty]`` level list."""
    if not isinstance(values, pa.ListArray):
        return None
    # The raw child and offsets (validity aside) index each other consistently.
    pairs = values.values
    if not isinstance(pairs, pa.ListArray) or pairs.null_count:
        return None
    if len(pairs) and pc.min(pc.list_value_length(pairs)).as_py() < 2:
        return None  # a level that is not a pair: the per-message path nulls that item
    assert isinstance(col.item, int)
    flat = _scalar(col, pc.list_element(pairs, col.item))
    mask = values.is_null() if values.null_count else None
    return pa.ListArray.from_arrays(values.offsets, flat, mask=mask)


def typed_columns(
    plan: Plan, raw: pa.Array[Any], texts: Sequence[str] | None, symbol: str | None
) -> list[pa.Array[Any]] | None:
    """The typed column arrays of ``texts`` in ``plan`` order, or ``None`` to fall back.

    ``raw`` is ``texts`` as an Arrow string array; with ``texts=None`` the payloads are
    taken from ``raw`` alone (same result, no Python strings). ``symbol`` (the stream's)
    replaces a missing ``symbol`` value, as REST bodies carry none.
    """
    if not len(raw):
        return None
    table = _parse(plan, raw, texts)
    if table is None:
        return None
    out: list[pa.Array[Any]] = []
    for col in plan.columns:
        values = _whole(table.column(col.path))
        arr = _scalar(col, values) if col.item is None else _levels(col, values)
        if arr is None:
            return None
        if col.name == "symbol" and symbol is not None and arr.null_count:
            arr = cast("pa.Array[Any]", pc.fill_null(cast(Any, arr), symbol))
        out.append(arr)
    return out


__all__ = ["Plan", "make_plan", "typed_columns"]
