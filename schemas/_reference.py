"""Per-row reference of the raw re-derivation: template -> generated Python renderer.

DESIGN.md (storage budget): ``raw`` is nullable and is dropped only for rows whose typed columns,
re-encoded by the stream's formatter, give back the received bytes exactly. Binance writes
compact JSON in a fixed key order per event type, and every decimal string of a field with a
fixed number of decimal places per symbol (price and quantity precision; BINANCE.md section 3:
prices, quantities and rates are strings). The number of places cannot be recovered from a
float64, so it is learnt from the received strings and stored in the row's ``raw_fmt`` code:
5 bits of decimal places per float column (in template order) and the template variant in
bits 60-62. This module is the reference: :mod:`schemas._render` renders whole batches
column-wise and must agree with it on every row it vouches for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from schemas._columns import BOOL, F64, I32, I64, NS, NS_PER_MS, STR, item_of
from schemas._templates import TEMPLATES, Part, compile_template
from schemas.errors import CorruptDataError
from schemas.tables import RAW_FMT, TABLES, Table

DP_BITS = 5
MAX_DP = (1 << DP_BITS) - 1
_VARIANT_SHIFT = 60
_DECIMAL_RE = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")

Renderer = Callable[[Callable[[str], Any], Sequence[int]], str | None]
_F64_FORMATS = tuple(f".{dp}f" for dp in range(MAX_DP + 1))


def _json_str(v: str) -> str:
    return orjson.dumps(v).decode()


def _levels(prices: Any, qtys: Any, p_dp: int, q_dp: int) -> str | None:
    """A Binance level list ``[["price","qty"],..]`` (BINANCE.md section 3, depthUpdate)."""
    if prices is None or qtys is None or len(prices) != len(qtys) or None in prices \
            or None in qtys:
        return None
    fp, fq = _F64_FORMATS[p_dp], _F64_FORMATS[q_dp]
    return "[" + ",".join(['["' + format(p, fp) + '","' + format(q, fq) + '"]'
                           for p, q in zip(prices, qtys, strict=True)]) + "]"


def _gen_function(name: str, parts: Sequence[Part], helpers: list[str]) -> str:
    """Python source of ``name(g, dps) -> str | None`` rendering ``parts`` (g = row.get)."""
    body = ["    out = []", "    a = out.append"]
    for part in parts:
        if isinstance(part, str):
            body.append(f"    a({part!r})")
        elif isinstance(part, list):
            helper = f"_group{len(helpers)}"
            helpers.append(_gen_function(helper, part, helpers))
            body += [f"    s = {helper}(g, dps)", "    if s is not None:", "        a(s)"]
        elif len(part.cols) == 2:
            prices, qtys = part.cols
            body += [f"    s = _levels(g({prices.name!r}), g({qtys.name!r}), "
                     f"dps[{part.slots[0]}], dps[{part.slots[1]}])",
                     "    if s is None:", "        return None", "    a(s)"]
        else:
            col = part.cols[0]
            body += [f"    v = g({col.name!r})", "    if v is None:", "        return None"]
            if col.kind == F64:
                body.append(f"    a('\"' + format(v, _F64_FORMATS[dps[{part.slots[0]}]]) + '\"')")
            elif col.kind == NS:
                body += [f"    q, r = divmod(v, {NS_PER_MS})", "    if r:", "        return None",
                         "    a(str(q))"]
            elif col.kind in (I64, I32):
                body.append("    a(str(v))")
            elif col.kind == BOOL:
                body.append("    a('true' if v else 'false')")
            else:
                assert col.kind == STR, col
                body.append("    a(_json_str(v))")
    body.append("    return ''.join(out)")
    return f"def {name}(g, dps):\n" + "\n".join(body) + "\n"


def _make_renderer(parts: Sequence[Part]) -> Renderer:
    """Compile one template to a function: one generated line per key, no interpretation."""
    helpers: list[str] = []
    main = _gen_function("render", parts, helpers)
    namespace: dict[str, Any] = {"_levels": _levels, "_json_str": _json_str,
                                 "_F64_FORMATS": _F64_FORMATS}
    exec("\n".join([*helpers, main]), namespace)  # source built from the constant templates
    render: Renderer = namespace["render"]
    return render


@dataclass(frozen=True)
class Formatter:
    """A table's template variants: compiled parts and their generated renderers."""

    variants: tuple[Renderer, ...]
    slot_paths: tuple[tuple[str, str, int | str | None], ...]  # (key, sub key, item) per slot
    parts: tuple[list[Part], ...] = ()  # the compiled template of each variant
    slot_columns: tuple[tuple[str, bool], ...] = ()  # (column name, is a list) per slot


def _make_formatter(table: Table) -> Formatter:
    cols = {c.name: c for c in table.columns}
    slots: dict[str, int] = {}
    parts = tuple(compile_template(t, cols, slots) for t in TEMPLATES[table.name])
    variants = tuple(_make_renderer(p) for p in parts)
    assert len(slots) * DP_BITS <= _VARIANT_SHIFT, table.name
    paths = []
    for name in slots:
        key, _, sub = cols[name].path.partition(".")
        paths.append((key, sub, cols[name].item))
    columns = tuple((name, cols[name].item is not None) for name in slots)
    return Formatter(variants, tuple(paths), parts, columns)


_FORMATTERS = {name: _make_formatter(TABLES[(name, False)]) for name in TEMPLATES}


def _slot_strings(d: Any, key: str, sub: str, item: int | str | None) -> list[Any]:
    v = d.get(key) if d.__class__ is dict else None
    if sub:
        v = v.get(sub) if v.__class__ is dict else None
    if item is None:
        return [v]
    if v.__class__ is not list:
        return []
    return [item_of(e, item) for e in v]


def _learn_dps(fmt: Formatter, d: Any) -> list[int] | None:
    """Decimal places of each slot's strings in the decoded payload (all equal), or None."""
    dps: list[int] = []
    match = _DECIMAL_RE.fullmatch
    for key, sub, item in fmt.slot_paths:
        found: set[int] = set()
        for s in _slot_strings(d, key, sub, item):
            if s is None:
                continue
            m = match(s) if s.__class__ is str else None
            if m is None:
                return None
            frac = m.group(1)
            found.add(len(frac) if frac else 0)
        if len(found) > 1 or (found and max(found) > MAX_DP):
            return None
        dps.append(found.pop() if found else 0)
    return dps


def pack(variant: int, dps: Sequence[int]) -> int:
    """The ``raw_fmt`` code of a template variant and its slots' decimal places."""
    code = variant << _VARIANT_SHIFT
    for i, dp in enumerate(dps):
        code |= dp << (i * DP_BITS)
    return code


def unpack(code: int, n: int) -> tuple[int, list[int]]:
    """``(variant, decimal places of the n slots)`` of a ``raw_fmt`` code."""
    return code >> _VARIANT_SHIFT, [(code >> (i * DP_BITS)) & MAX_DP for i in range(n)]


def _encode_item(fmt: Formatter, target: str, d: Any, row: dict[str, Any]) -> int | None:
    """The code whose rendering of ``row`` is exactly ``target`` (``d`` = decoded target)."""
    dps = _learn_dps(fmt, d)
    if dps is None:
        return None
    g = row.get
    for variant, render in enumerate(fmt.variants):
        if render(g, dps) == target:
            return pack(variant, dps)
    return None


def _decode_item(fmt: Formatter, code: int, row: dict[str, Any]) -> str | None:
    variant, dps = unpack(code, len(fmt.slot_paths))
    if variant >= len(fmt.variants):
        return None
    return fmt.variants[variant](row.get, dps)


def formatter_for(table: Table) -> Formatter | None:
    """The formatter of ``table``, or ``None`` for tables stored with their raw text."""
    return _FORMATTERS.get(table.name)


def _items(table: Table, row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Split an array-stream row (dict of lists) into one dict per array item."""
    names = [f.name for f in table.typed_fields]
    columns = [row.get(n) for n in names]
    if any(c.__class__ is not list for c in columns):
        return None
    lengths = {len(c) for c in columns}  # type: ignore[arg-type]
    if len(lengths) != 1:
        return None
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def encode_row(table: Table, fmt: Formatter, payload_text: str, row: dict[str, Any]
               ) -> int | list[int] | None:
    """The code that renders ``row`` to exactly ``payload_text`` (a list for array tables)."""
    try:
        d = orjson.loads(payload_text)
    except orjson.JSONDecodeError:
        return None
    if not table.is_array:
        return _encode_item(fmt, payload_text, d, row)
    items = _items(table, row)
    if d.__class__ is not list or items is None or len(items) != len(d):
        return None
    codes: list[int] = []
    for item_d, item_row in zip(d, items, strict=True):
        code = _encode_item(fmt, orjson.dumps(item_d).decode(), item_d, item_row)
        if code is None:
            return None
        codes.append(code)
    # Binance's compact item text equals orjson's; the whole text is checked once more.
    return codes if restore_code(table, fmt, codes, row) == payload_text else None


def restore_code(table: Table, fmt: Formatter, code: Any, row: dict[str, Any]) -> str | None:
    """``row`` rendered with ``code``, or ``None`` where the code does not fit the row."""
    if not table.is_array:
        return _decode_item(fmt, code, row) if code.__class__ is int else None
    items = _items(table, row)
    if items is None or code.__class__ is not list or len(code) != len(items):
        return None
    texts = [_decode_item(fmt, c, r) for c, r in zip(code, items, strict=True)]
    return None if None in texts else "[" + ",".join(texts) + "]"  # type: ignore[arg-type]


def restore_row(table: Table, fmt: Formatter | None, row: dict[str, Any]) -> str:
    """``raw`` if kept, else the rendering of ``raw_fmt``; CorruptDataError if neither."""
    raw = row.get("raw")
    if raw is not None:
        return str(raw)
    code = row.get(RAW_FMT)
    text = None if fmt is None or code is None else restore_code(table, fmt, code, row)
    if text is None:
        raise CorruptDataError(f"a {table.name} row has no raw text and no usable raw_fmt code")
    return text


def drop_rows(table: Table, fmt: Formatter, batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with ``raw`` nulled and ``raw_fmt`` set on every derivable row, row by row."""
    raws: list[str | None] = []
    codes: list[Any] = []
    for row in batch.to_pylist():
        raw = row["raw"]
        code = None if raw is None else encode_row(table, fmt, raw, row)
        raws.append(None if code is not None else raw)
        codes.append(code if code is not None else row[RAW_FMT])
    i_raw = batch.schema.get_field_index("raw")
    i_fmt = batch.schema.get_field_index(RAW_FMT)
    batch = batch.set_column(i_raw, batch.schema.field(i_raw), pa.array(raws, pa.string()))
    return batch.set_column(i_fmt, batch.schema.field(i_fmt),
                            pa.array(codes, batch.schema.field(i_fmt).type))


def restore_rows(table: Table, fmt: Formatter | None, batch: pa.RecordBatch
                 ) -> pa.Array[Any]:
    """The exact text of every row of ``batch``, row by row (see :func:`restore_row`)."""
    return pa.array([restore_row(table, fmt, row) for row in batch.to_pylist()], pa.string())


__all__ = ["DP_BITS", "MAX_DP", "Formatter", "drop_rows", "encode_row", "formatter_for", "pack",
           "restore_code", "restore_row", "restore_rows", "unpack"]
