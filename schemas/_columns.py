"""Column builders: Python values pulled out of payloads -> typed Arrow arrays.

Payload values arrive as JSON types (BINANCE.md section 3: prices, quantities and rates are
strings; ids, millisecond times and counts are numbers; flags are booleans). Each column is
converted with one vectorised Arrow call when every value has the expected JSON type; a value
of any other type (or out of range) becomes null instead of failing the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_NONE = type(None)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
NS_PER_MS = 1_000_000
"""Binance times are epoch milliseconds; ticktape stores epoch nanoseconds."""

F64 = "f64"
"""float64 from a decimal string (or a JSON number)."""
NS = "ns"
"""int64 epoch ns from a JSON number of epoch ms."""
I64 = "i64"
I32 = "i32"
STR = "str"
BOOL = "bool"

_ARROW: dict[str, pa.DataType] = {
    F64: pa.float64(),
    NS: pa.int64(),
    I64: pa.int64(),
    I32: pa.int32(),
    STR: pa.string(),
    BOOL: pa.bool_(),
}


@dataclass(frozen=True, slots=True)
class Col:
    """One typed column: its name, scalar kind, JSON path and, for list columns, the item.

    ``path`` is a top-level key (``"p"``) or one nested key (``"k.o"``). When ``item`` is not
    ``None`` the value at ``path`` is a JSON array and the column is ``list<kind>`` holding
    ``element[item]`` of each element (an index for ``[["price","qty"],..]`` levels, a key for
    arrays of objects).
    """

    name: str
    kind: str
    path: str
    item: int | str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type of this column (for one payload, not wrapped for array streams)."""
        scalar = _ARROW[self.kind]
        return scalar if self.item is None else pa.list_(scalar)


def _safe_f64(v: Any) -> float | None:
    if v.__class__ is str:
        try:
            return float(v)
        except ValueError:
            return None
    if v.__class__ is float or v.__class__ is int:
        try:
            return float(v)
        except OverflowError:
            return None
    return None


def _safe_int(v: Any, lo: int = _INT64_MIN, hi: int = _INT64_MAX) -> int | None:
    if v.__class__ is int and lo <= v <= hi:
        return int(v)
    if v.__class__ is float and math.isfinite(v) and v.is_integer() and lo <= v <= hi:
        return int(v)
    if v.__class__ is str and v.isascii() and v.lstrip("-").isdigit():
        n = int(v)
        return n if lo <= n <= hi else None
    return None


def _safe_ns(v: Any) -> int | None:
    ms = _safe_int(v, _INT64_MIN // NS_PER_MS, _INT64_MAX // NS_PER_MS)
    return None if ms is None else ms * NS_PER_MS


def _safe_i32(v: Any) -> int | None:
    return _safe_int(v, -(2**31), 2**31 - 1)


def _safe_str(v: Any) -> str | None:
    return v if v.__class__ is str else None


def _safe_bool(v: Any) -> bool | None:
    return v if v.__class__ is bool else None


_SAFE: dict[str, Callable[[Any], Any]] = {
    F64: _safe_f64,
    NS: _safe_ns,
    I64: _safe_int,
    I32: _safe_i32,
    STR: _safe_str,
    BOOL: _safe_bool,
}
_NUMBERS = frozenset({int, float, _NONE})
_INTS = frozenset({int, _NONE})
_BOOLS = frozenset({bool, _NONE})


def _as_strings(values: Sequence[Any]) -> pa.Array[Any] | None:
    """``values`` as an Arrow string array if every value is a str or None (Arrow checks)."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowException, TypeError):
        return None


def scalar_array(kind: str, values: Sequence[Any]) -> pa.Array[Any]:
    """Convert JSON scalars to an Arrow array of ``kind``; bad values become null."""
    typ = _ARROW[kind]
    try:
        if kind in (F64, STR):
            # The common case (decimal strings, BINANCE.md section 3) needs no type scan:
            # Arrow rejects any non-str value itself.
            strings = _as_strings(values)
            if strings is not None:
                return strings if kind == STR else strings.cast(typ)
            if kind == F64 and set(map(type, values)) <= _NUMBERS:
                return pa.array(values, typ)
        else:
            # Arrow would truncate 1.5 or accept True for int64: scan the types first.
            classes = set(map(type, values))
            if kind == NS and classes <= _INTS:
                return pc.multiply_checked(pa.array(values, typ), NS_PER_MS)
            if kind in (I64, I32) and classes <= _INTS:
                return pa.array(values, typ)
            if kind == BOOL and classes <= _BOOLS:
                return pa.array(values, typ)
    except (pa.ArrowException, OverflowError, ValueError):
        pass
    return pa.array(list(map(_SAFE[kind], values)), typ)


def item_of(element: Any, item: int | str) -> Any:
    """``element[item]`` of a JSON array element, or ``None`` if it has no such item."""
    if item.__class__ is int:
        if element.__class__ is list and len(element) > item:
            return element[item]
        return None
    return element.get(item) if element.__class__ is dict else None


def list_array(kind: str, item: int | str, values: Sequence[Any]) -> pa.Array[Any]:
    """``list<kind>`` of ``element[item]`` for each JSON array in ``values`` (else null)."""
    getter: Callable[[Any], Any] = itemgetter(item)
    offsets = [0]
    flat: list[Any] = []
    mask: list[bool] = []
    total = 0
    for v in values:
        if v.__class__ is list:
            try:
                part = list(map(getter, v))
            except (TypeError, IndexError, KeyError):
                part = [item_of(e, item) for e in v]
            flat.extend(part)
            total += len(part)
            mask.append(False)
        else:
            mask.append(True)
        offsets.append(total)
    inner = scalar_array(kind, flat)
    if not any(mask):
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), inner)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), inner,
                                    mask=pa.array(mask, pa.bool_()))


def column_array(col: Col, values: Sequence[Any]) -> pa.Array[Any]:
    """The Arrow array of ``col`` for the raw JSON values extracted for it."""
    if col.item is None:
        return scalar_array(col.kind, values)
    return list_array(col.kind, col.item, values)


def wrap_lists(arr: pa.Array[Any], offsets: list[int], mask: list[bool]) -> pa.Array[Any]:
    """Group the flat per-item ``arr`` into one list per message (array streams)."""
    off = pa.array(offsets, pa.int32())
    if not any(mask):
        return pa.ListArray.from_arrays(off, arr)
    return pa.ListArray.from_arrays(off, arr, mask=pa.array(mask, pa.bool_()))


__all__ = ["BOOL", "F64", "I32", "I64", "NS", "NS_PER_MS", "STR", "Col", "column_array", "item_of",
           "list_array", "scalar_array", "wrap_lists"]
