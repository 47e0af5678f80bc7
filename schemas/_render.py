"""Column-wise rendering of the formatter templates with ``pyarrow.compute``.

:mod:`schemas.formatters` renders one row at a time in Python (the reference). This module
renders a whole batch with one fixed ``raw_fmt`` code in a few dozen Arrow kernels, for the
same text: a value is rendered here only where the result is *proven* equal to the reference
(``format(v, ".{dp}f")``, ``str(int)``, ``orjson.dumps(str)``); every other row is flagged
``unsure`` and the caller renders it with the reference. The proof for decimals: with
``r = v * 10**dp`` (10**dp exact for dp <= 22) and ``n = round(r)``, when ``|n| < 10**15`` the
float product is within 0.12 of the exact one, so ``|r - n| < 0.25`` puts the exact value within
0.5 of ``n``; Python's correctly rounded ``format`` then gives the digits of ``n`` too. The
sign comes from the float's sign bit, as ``format(-0.0, ".2f") == "-0.00"``.

Binance writes prices and quantities as decimal strings with a fixed number of places per
symbol (BINANCE.md section 3), so a whole batch of a stream renders with one or two codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import orjson
import pyarrow as pa
import pyarrow.compute as _compute

from schemas._columns import BOOL, F64, I32, I64, NS, NS_PER_MS, STR
from schemas._templates import Field, Part

_MAX_EXACT_DP = 22
"""10**dp is an exact float64 up to here (5**22 < 2**53)."""
_MAX_DIGITS = 1e15
"""Largest |v * 10**dp| rendered here: the float product then errs by at most 0.12."""
_SLACK = 0.25
"""Largest |r - round(r)| accepted: with the product error, still < 0.5 exactly."""
_DICTIONARY_MIN_ROWS = 64
_DICTIONARY_MIN_REPEAT = 3
"""A float column is formatted per distinct value when its values repeat this often."""
# orjson escapes '"', '\\' and the C0 controls and writes every other character as UTF-8.
_NEEDS_ESCAPE = '["\\\\\\x00-\\x1f]'

# The pyarrow stubs' overloads do not cover these kernel/argument combinations (scalars mixed
# with arrays, string joins, dictionary arrays); the kernels check their inputs at run time.
pc: Any = _compute
Arr: TypeAlias = "pa.Array[Any]"
Piece: TypeAlias = "pa.Array[Any] | str"


@dataclass
class Rendering:
    """The texts of a batch under one code.

    ``text`` is null where the reference returns ``None`` too (a required value missing, a
    time not in whole ms, level lists of different lengths) and where ``unsure``; ``unsure``
    marks rows this module cannot vouch for (the reference must render them). ``present``
    maps each F64 slot to the rows where that slot's values appear in the text (the reference
    learns a decimal-place count only from values it sees; absent slots get 0).
    """

    text: Arr
    unsure: Arr | None
    present: dict[int, Arr] = field(default_factory=dict)


def _join(pieces: Sequence[Piece], n: int) -> Arr:
    """Concatenate pieces element-wise; null where any piece is null."""
    merged: list[Piece] = []
    for p in pieces:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        elif not (isinstance(p, str) and not p):
            merged.append(p)
    if all(isinstance(p, str) for p in merged):
        return pa.array(["".join(str(p) for p in merged)] * n, pa.string())
    if len(merged) == 1:
        return merged[0]  # type: ignore[return-value]
    out: Arr = pc.binary_join_element_wise(*merged, "", null_handling="emit_null")
    return out


def _or(a: Arr | None, b: Arr | None) -> Arr | None:
    if a is None:
        return b
    if b is None:
        return a
    out: Arr = pc.or_(a, b)
    return out


def _any(mask: Arr | None) -> bool:
    return mask is not None and bool(pc.any(mask).as_py())


def fixed_pieces(values: Arr, dp: int) -> tuple[list[Piece], Arr | None]:
    """``format(v, f".{dp}f")`` of float64 ``values`` as pieces to join, where provably exact;
    and ``unsure``. Null values give null pieces and are not unsure; unsure values give null.

    Prices and quantities repeat a lot within a batch (a book moves by ticks), so a column with
    few distinct values is formatted once per value (Arrow hashes floats by their bits, so
    ``-0.0`` and ``0.0`` stay apart) and taken back by index.
    """
    if len(values) >= _DICTIONARY_MIN_ROWS:
        encoded = pc.dictionary_encode(values)
        distinct = encoded.dictionary
        if len(distinct) == 1 and not values.null_count:  # the reference's own text
            return [format(distinct[0].as_py(), f".{dp}f")], None
        if len(distinct) * _DICTIONARY_MIN_REPEAT <= len(values):
            pieces, unsure = _digits(distinct, dp)
            text = pc.take(_join(pieces, len(distinct)), encoded.indices)
            if unsure is not None:
                unsure = pc.fill_null(pc.take(unsure, encoded.indices), False)
                if not _any(unsure):
                    unsure = None
            return [text], unsure
    return _digits(values, dp)


def _digits(values: Arr, dp: int) -> tuple[list[Piece], Arr | None]:
    """:func:`fixed_pieces` computed value by value: sign and integer part, then ``"."`` and
    the zero-padded fraction."""
    if dp > _MAX_EXACT_DP:
        return [pa.nulls(len(values), pa.string())], pc.is_valid(values)
    r = pc.multiply(values, 10.0 ** dp) if dp else values
    n = pc.round(r)
    ok = pc.and_(pc.less(pc.abs(pc.subtract(r, n)), _SLACK), pc.less(pc.abs(n), _MAX_DIGITS))
    ok = pc.fill_null(ok, True)  # null values: null text, nothing to vouch for
    unsure: Arr | None = pc.invert(ok)
    if not _any(unsure):
        unsure = None
    else:
        n = pc.if_else(ok, n, 0.0)
    digits = pc.abs(pc.cast(n, pa.int64()))
    # |n| < 10**15: from 15 places on the integer part is 0 (and 10**dp may not fit int64).
    whole = digits if not dp else pc.divide(digits, 10 ** dp) if dp < 15 else pc.multiply(digits, 0)
    head = pc.cast(whole, pa.string())
    negative = pc.less(values.view(pa.int64()), 0)  # the sign bit: -0.0 renders "-0.00"
    if pc.any(negative).as_py():
        head = pc.if_else(negative, pc.binary_join_element_wise("-", head, ""), head)
    if unsure is not None:
        head = pc.if_else(unsure, pa.scalar(None, pa.string()), head)
    if not dp:
        return [head], unsure
    frac = pc.subtract(digits, pc.multiply(whole, 10 ** dp)) if dp < 15 else digits
    return [head, ".", pc.ascii_lpad(pc.cast(frac, pa.string()), width=dp, padding="0")], unsure


def fixed(values: Arr, dp: int) -> tuple[Arr, Arr | None]:
    """``format(v, f".{dp}f")`` of float64 ``values`` where provably exact; ``(text, unsure)``.

    Null values give null text and are not unsure; unsure values give null text.
    """
    pieces, unsure = fixed_pieces(values, dp)
    return _join(pieces, len(values)), unsure


def _literal(value: str | int | bool) -> str:
    """The reference's text of one JSON string, integer or boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return orjson.dumps(value).decode()


def _ns(values: Arr) -> Arr:
    """Epoch ns as the Binance epoch ms integer; null unless a whole number of ms."""
    ms = pc.divide(values, NS_PER_MS)
    whole = pc.equal(pc.multiply(ms, NS_PER_MS), values)
    out: Arr = pc.if_else(whole, pc.cast(ms, pa.string()), pa.scalar(None, pa.string()))
    return out


def _json_string(values: Arr) -> tuple[Arr, Arr | None]:
    """``orjson.dumps(v)`` where no character needs escaping; others are unsure."""
    unsure = pc.fill_null(pc.match_substring_regex(values, _NEEDS_ESCAPE), False)
    text = pc.binary_join_element_wise('"', values, '"', "", null_handling="emit_null")
    if not _any(unsure):
        return text, None
    return pc.if_else(unsure, pa.scalar(None, pa.string()), text), unsure


def _rows_with(flat_mask: Arr, lists: Arr, n: int) -> Arr:
    """Rows of ``lists`` holding at least one element where ``flat_mask`` (flattened) is true."""
    parents = pc.filter(pc.list_parent_indices(lists), flat_mask)
    out: Arr = pc.is_in(pa.array(range(n), pa.int64()), value_set=pc.cast(parents, pa.int64()))
    return out


class _Renderer:
    """One rendering pass: the batch columns, the code's decimal places, accumulated flags."""

    def __init__(self, columns: Mapping[str, Arr], dps: Sequence[int], n: int) -> None:
        self.columns = columns
        self.dps = dps
        self.n = n
        self.unsure: Arr | None = None

    def parts(self, parts: Sequence[Part]) -> tuple[Arr, list[tuple[int, Arr]]]:
        """The text of a sequence of parts, and the rows where each F64 slot has values."""
        pieces: list[Piece] = []
        slots: list[tuple[int, Arr]] = []
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, list):
                group, inner = self.parts(part)
                # Reference: a group is written only when all its values are non-null.
                written = pc.is_valid(group)
                slots += [(s, pc.and_(mask, written)) for s, mask in inner]
                pieces.append(pc.fill_null(group, ""))
            elif len(part.cols) == 2:
                text, nonempty = self._levels(part)
                pieces.append(text)
                slots += [(s, nonempty) for s in part.slots]
            else:
                pieces += self._scalar(part)
                if part.slots[0] >= 0:
                    slots.append((part.slots[0], pc.is_valid(self.columns[part.cols[0].name])))
        return _join(pieces, self.n), slots

    def _flag(self, unsure: Arr | None) -> None:
        self.unsure = _or(self.unsure, unsure)

    def _scalar(self, part: Field) -> list[Piece]:
        col = part.cols[0]
        values = self.columns[col.name]
        if values.null_count == len(values):  # a key this stream never sends (``ps``)
            return [pa.nulls(len(values), pa.string())]
        if col.kind == F64:
            pieces, unsure = fixed_pieces(values, self.dps[part.slots[0]])
            self._flag(unsure)
            return ['"', *pieces, '"']  # BINANCE.md section 3: decimal strings
        if col.kind in (STR, I32, BOOL) and self.n >= _DICTIONARY_MIN_ROWS \
                and not values.null_count and pc.count_distinct(values).as_py() == 1:
            return [_literal(values[0].as_py())]  # symbol, st, ...: one value per stream
        if col.kind == NS:
            return [_ns(values)]
        if col.kind in (I64, I32):
            return [pc.cast(values, pa.string())]
        if col.kind == BOOL:
            return [pc.if_else(values, "true", "false")]
        assert col.kind == STR, col
        text, unsure = _json_string(values)
        self._flag(unsure)
        return [text]

    def _levels(self, part: Field) -> tuple[Arr, Arr]:
        """``[["price","qty"],..]`` per row (BINANCE.md section 3, depthUpdate levels)."""
        prices = self.columns[part.cols[0].name]
        qtys = self.columns[part.cols[1].name]
        same = pc.equal(pc.list_value_length(prices), pc.list_value_length(qtys))
        if not pc.all(pc.fill_null(same, True)).as_py():  # reference: None for such a row
            prices = pc.if_else(same, prices, pa.scalar(None, prices.type))
            qtys = pc.if_else(same, qtys, pa.scalar(None, qtys.type))
        # Each level becomes two strings, '["<price>","' and '<qty>"],', formatted once per
        # distinct value and picked by index: the row text is then one join without separator.
        prices_flat = pc.dictionary_encode(pc.list_flatten(prices))
        qtys_flat = pc.dictionary_encode(pc.list_flatten(qtys))
        pp, up = _digits(prices_flat.dictionary, self.dps[part.slots[0]])
        qp, uq = _digits(qtys_flat.dictionary, self.dps[part.slots[1]])
        n_prices = len(prices_flat.dictionary)
        strings = pa.concat_arrays([_join(['["', *pp, '","'], n_prices),
                                    _join([*qp, '"],'], len(qtys_flat.dictionary))])
        picks = _interleave(pc.cast(prices_flat.indices, pa.int64()),
                            pc.add(pc.cast(qtys_flat.indices, pa.int64()), n_prices))
        lengths = pc.fill_null(pc.list_value_length(prices), 0)
        offsets = pa.concat_arrays([pa.array([0], pa.int32()),
                                    pc.cast(pc.cumulative_sum(pc.multiply(lengths, 2)),
                                            pa.int32())])
        mask = pc.is_null(prices) if prices.null_count else None
        rows = pa.ListArray.from_arrays(offsets, pc.take(strings, picks), mask=mask)
        if up is not None or uq is not None:
            flat_unsure = _or(_pick(up, prices_flat.indices), _pick(uq, qtys_flat.indices))
            self._flag(_rows_with(flat_unsure, prices, self.n))  # type: ignore[arg-type]
        nonempty = pc.greater(pc.list_value_length(prices), 0)  # null for a null list
        joined = pc.binary_join(rows, "")  # null if a value is null, as the reference
        inner = _join(["[", pc.utf8_slice_codeunits(joined, 0, -1), "]"], self.n)
        text = pc.if_else(nonempty, inner, "[]")
        return text, pc.fill_null(nonempty, False)


def _pick(unsure: Arr | None, indices: Arr) -> Arr | None:
    """Per-value ``unsure`` flags of dictionary-encoded values (nulls are not unsure)."""
    return None if unsure is None else pc.fill_null(pc.take(unsure, indices), False)


def _interleave(a: Arr, b: Arr) -> Arr:
    """``[a0, b0, a1, b1, ...]`` for two int64 arrays of one length."""
    n = len(a)
    position = pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), 2 * n)), 1)
    odd = pc.bit_wise_and(position, 1)
    source = pc.add(pc.shift_right(position, 1), pc.multiply(odd, n))
    out: Arr = pc.take(pa.concat_arrays([a, b]), source)
    return out


def render(parts: Sequence[Part], columns: Mapping[str, Arr], dps: Sequence[int],
           n: int) -> Rendering:
    """Render ``n`` rows of ``columns`` (by column name) with one variant's parts and dps."""
    r = _Renderer(columns, dps, n)
    text, slots = r.parts(parts)
    if r.unsure is not None:
        text = pc.if_else(r.unsure, pa.scalar(None, pa.string()), text)
    return Rendering(text, r.unsure, dict(slots))


__all__ = ["Rendering", "fixed", "fixed_pieces", "render"]
