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

import sys
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
_BOOL_TEXT = pa.array(["false", "true"], pa.string())
"""JSON booleans, indexed by ``int8(value)``."""

# The pyarrow stubs' overloads do not cover these kernel/argument combinations (scalars mixed
# with arrays, string joins, dictionary arrays); the kernels check their inputs at run time.
pc: Any = _compute
Arr: TypeAlias = "pa.Array[Any]"


@dataclass(frozen=True, slots=True)
class Taken:
    """Text picked per row from a few distinct strings: ``take(values, indices)``.

    The element-wise join of a row's pieces costs about the same per piece whether it is an
    array or a literal, so :func:`_join` glues the literals next to a ``Taken`` onto its few
    ``values`` first (one short join) and the row join gets fewer pieces.
    """

    values: Arr
    indices: Arr

    def text(self) -> Arr:
        """The strings per row (null where the index or the picked value is null)."""
        out: Arr = pc.take(self.values, self.indices)
        return out

    def wrap(self, before: str, after: str) -> Taken:
        """``before + text + after`` per row, joined on the distinct values only."""
        values: Arr = pc.binary_join_element_wise(before, self.values, after, "",
                                                  null_handling="emit_null")
        return Taken(values, self.indices)


Piece: TypeAlias = "pa.Array[Any] | str | Taken"


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


def _merge(pieces: Sequence[Piece]) -> list[Piece]:
    """``pieces`` with adjacent literals concatenated, empty ones dropped and the literals
    next to each :class:`Taken` glued onto it."""
    merged: list[Piece] = []
    for p in pieces:
        if isinstance(p, str):
            if not p:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] += p
                continue
            if merged and isinstance(merged[-1], Taken):
                merged[-1] = merged[-1].wrap("", p)
                continue
        elif isinstance(p, Taken) and merged and isinstance(merged[-1], str):
            p = p.wrap(str(merged.pop()), "")
        merged.append(p)
    return merged


def _array(piece: Piece, n: int) -> Arr:
    if isinstance(piece, Taken):
        return piece.text()
    if isinstance(piece, str):
        return pa.array([piece] * n, pa.string())
    return piece


def _join(pieces: Sequence[Piece], n: int) -> Arr:
    """Concatenate pieces element-wise; null where any piece is null."""
    merged = _merge(pieces)
    if not merged:
        return _array("", n)
    if len(merged) == 1:
        return _array(merged[0], n)
    args = [p.text() if isinstance(p, Taken) else p for p in merged]
    out: Arr = pc.binary_join_element_wise(*args, "", null_handling="emit_null")
    return out


def _may_be_null(piece: Piece) -> bool:
    if isinstance(piece, str):
        return False
    if isinstance(piece, Taken):
        return bool(piece.indices.null_count or piece.values.null_count)
    return bool(piece.null_count)


def _all_null(piece: Piece, n: int) -> bool:
    if isinstance(piece, Taken):
        return piece.indices.null_count == n or piece.values.null_count == len(piece.values)
    return not isinstance(piece, str) and piece.null_count == n


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
    ``-0.0`` and ``0.0`` stay apart) and taken back by index (a :class:`Taken` piece).
    """
    if len(values) >= _DICTIONARY_MIN_ROWS:
        encoded = pc.dictionary_encode(values)
        distinct = encoded.dictionary
        if len(distinct) == 1 and not values.null_count:  # the reference's own text
            return [format(distinct[0].as_py(), f".{dp}f")], None
        if len(distinct) * _DICTIONARY_MIN_REPEAT <= len(values):
            pieces, unsure = _digits(distinct, dp)
            if unsure is not None:
                unsure = pc.fill_null(pc.take(unsure, encoded.indices), False)
                if not _any(unsure):
                    unsure = None
            return [Taken(_join(pieces, len(distinct)), encoded.indices)], unsure
    return _digits(values, dp)


def _digits(values: Arr, dp: int) -> tuple[list[Piece], Arr | None]:
    """:func:`fixed_pieces` computed value by value: the digits of ``|round(v * 10**dp)|``
    zero-padded to ``dp + 1`` of them, ``"."`` inserted ``dp`` digits from the end, and the
    sign."""
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
    text = pc.cast(pc.abs(pc.cast(n, pa.int64())), pa.string())
    if dp:  # |n| < 10**15 digits: "12345" -> "123.45", "5" -> "0.05" (dp 2)
        text = pc.binary_replace_slice(pc.ascii_lpad(text, width=dp + 1, padding="0"),
                                       start=-dp, stop=-dp, replacement=".")
    negative = pc.less(values.view(pa.int64()), 0)  # the sign bit: -0.0 renders "-0.00"
    if pc.any(negative).as_py():
        text = pc.if_else(negative, pc.binary_join_element_wise("-", text, ""), text)
    if unsure is not None:
        text = pc.if_else(unsure, pa.scalar(None, pa.string()), text)
    return [text], unsure


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
    out: Arr = pc.cast(ms, pa.string())
    if pc.all(whole).as_py():  # the usual case (nulls are null text either way)
        return out
    out = pc.if_else(whole, out, pa.scalar(None, pa.string()))
    return out


def _constant(values: Arr, kind: str) -> str | None:
    """The text of a column without nulls whose rows all hold one value (a symbol, ``st``,
    the next funding time, ...), or None."""
    if kind in (I64, I32, NS):
        low, high = (v.as_py() for v in pc.min_max(values).values())
        if low != high:
            return None
        value: int = low
        if kind != NS:
            return str(value)
        ms, rest = divmod(value, NS_PER_MS)  # as the reference: whole ms, else no text
        return None if rest else str(ms)
    if kind in (STR, BOOL):
        first = values[0]
        if pc.all(pc.equal(values, first)).as_py():
            return _literal(first.as_py())
    return None


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
    out: Arr = pc.is_in(arange(n), value_set=pc.cast(parents, pa.int64()))
    return out


class _Renderer:
    """One rendering pass: the batch columns, the code's decimal places, accumulated flags."""

    def __init__(self, columns: Mapping[str, Arr], dps: Sequence[int], n: int) -> None:
        self.columns = columns
        self.dps = dps
        self.n = n
        self.unsure: Arr | None = None

    def parts(self, parts: Sequence[Part]) -> tuple[list[Piece], list[tuple[int, Arr]]]:
        """The pieces of a sequence of parts, and the rows where each F64 slot has values."""
        pieces: list[Piece] = []
        slots: list[tuple[int, Arr]] = []
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, list):
                inner, inner_slots = self.parts(part)
                # Reference: a group is written only when all its values are non-null.
                if any(_all_null(p, self.n) for p in inner):  # a key never sent: no text
                    never = pa.repeat(pa.scalar(False), self.n)
                    slots += [(s, never) for s, _ in inner_slots]
                elif not any(_may_be_null(p) for p in inner):  # always sent: its own pieces
                    pieces += inner
                    slots += inner_slots
                else:
                    group = _join(inner, self.n)
                    written = pc.is_valid(group)
                    slots += [(s, pc.and_(mask, written)) for s, mask in inner_slots]
                    pieces.append(pc.fill_null(group, ""))
            elif len(part.cols) == 2:
                text, nonempty = self._levels(part)
                pieces += text
                slots += [(s, nonempty) for s in part.slots]
            else:
                pieces += self._scalar(part)
                if part.slots[0] >= 0:
                    slots.append((part.slots[0], pc.is_valid(self.columns[part.cols[0].name])))
        return pieces, slots

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
        if self.n >= _DICTIONARY_MIN_ROWS and not values.null_count:
            constant = _constant(values, col.kind)
            if constant is not None:
                return [constant]
        if col.kind == NS:
            return [_ns(values)]
        if col.kind in (I64, I32):
            return [pc.cast(values, pa.string())]
        if col.kind == BOOL:
            return [Taken(_BOOL_TEXT, pc.cast(values, pa.int8()))]
        assert col.kind == STR, col
        text, unsure = _json_string(values)
        self._flag(unsure)
        return [text]

    def _levels(self, part: Field) -> tuple[list[Piece], Arr]:
        """``[["price","qty"],..]`` per row as pieces (BINANCE.md section 3, depthUpdate
        levels), and the rows with at least one level."""
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
        level_text = pc.take(strings, picks)
        if up is not None or uq is not None:
            flat_unsure = _or(_pick(up, prices_flat.indices), _pick(uq, qtys_flat.indices))
            self._flag(_rows_with(flat_unsure, prices, self.n))  # type: ignore[arg-type]
        nonempty = pc.fill_null(pc.greater(pc.list_value_length(prices), 0), False)
        # Null for a null list or a null level, as the reference; "" (so "[]") for no level.
        joined = pc.utf8_slice_codeunits(_concat_rows(level_text, offsets, mask), 0, -1)
        return ["[", joined, "]"], nonempty


def _concat_rows(strings: Arr, offsets: Arr, mask: Arr | None) -> Arr:
    """Row ``i``: ``strings[offsets[i]:offsets[i + 1]]`` concatenated (null where ``mask``
    or where one of them is null, as ``binary_join``).

    The strings of a row lie next to each other in the data buffer of ``strings``, so their
    concatenation is that byte range: the row's offsets are taken from the strings' own.
    """
    if strings.null_count or not len(strings):
        rows = pa.ListArray.from_arrays(offsets, strings, mask=mask)  # type: ignore[call-overload]
        joined: Arr = pc.binary_join(rows, "")
        return joined
    _, value_offsets, data = strings.buffers()
    starts: Arr = pa.Array.from_buffers(pa.int32(), len(strings) + 1, [None, value_offsets],
                                        offset=strings.offset)
    row_offsets = pc.take(starts, offsets)
    validity = None if mask is None else pc.invert(mask).buffers()[1]
    out: Arr = pa.Array.from_buffers(pa.string(), len(offsets) - 1,
                                     [validity, row_offsets.buffers()[1], data])
    return out


def _pick(unsure: Arr | None, indices: Arr) -> Arr | None:
    """Per-value ``unsure`` flags of dictionary-encoded values (nulls are not unsure)."""
    return None if unsure is None else pc.fill_null(pc.take(unsure, indices), False)


_ARANGE: list[Arr] = [pa.array([], pa.int64())]
"""``[0, 1, ..]`` as int64, grown on demand and sliced (one slot: replaced, never mutated)."""


def arange(n: int) -> Arr:
    """``[0, 1, .., n-1]`` as int64 (a slice of a cached array: no work per call)."""
    cached = _ARANGE[0]
    if len(cached) < n:
        size = max(n, 2 * len(cached), 1024)
        cached = pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), size)), 1)
        _ARANGE[0] = cached
    return cached.slice(0, n)


def _interleave(a: Arr, b: Arr) -> Arr:
    """``[a0, b0, a1, b1, ...]`` for two int64 arrays of one length, values in [0, 2**31)."""
    n = len(a)
    if sys.byteorder == "little" and not a.null_count and not b.null_count:
        # b * 2**32 + a, read back as two int32 per value, is a then b: no per-element pass
        # over the 2n results.
        packed = pc.add(pc.multiply(b, 1 << 32), a)
        pairs: Arr = pa.Array.from_buffers(pa.int32(), 2 * n, [None, packed.buffers()[1]],
                                           offset=2 * packed.offset)
        return pairs
    position = arange(2 * n)
    odd = pc.bit_wise_and(position, 1)
    source = pc.add(pc.shift_right(position, 1), pc.multiply(odd, n))
    out: Arr = pc.take(pa.concat_arrays([a, b]), source)
    return out


def render(parts: Sequence[Part], columns: Mapping[str, Arr], dps: Sequence[int],
           n: int) -> Rendering:
    """Render ``n`` rows of ``columns`` (by column name) with one variant's parts and dps."""
    r = _Renderer(columns, dps, n)
    pieces, slots = r.parts(parts)
    text = _join(pieces, n)
    if r.unsure is not None:
        text = pc.if_else(r.unsure, pa.scalar(None, pa.string()), text)
    return Rendering(text, r.unsure, dict(slots))


__all__ = ["Rendering", "Taken", "arange", "fixed", "fixed_pieces", "render"]
