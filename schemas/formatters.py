"""Re-encode typed rows to the exact text Binance sent, so ``raw`` need not be stored twice.

DESIGN.md (storage budget): ``raw`` is nullable and is dropped only for rows whose typed columns,
re-encoded by the stream's formatter, give back the received bytes exactly. Binance writes
compact JSON in a fixed key order per event type, and every decimal string of a field with a
fixed number of decimal places per symbol (price and quantity precision; BINANCE.md section 3:
prices, quantities and rates are strings). The number of places cannot be recovered from a
float64, so it is learnt from the received strings and stored in the row's ``raw_fmt`` code:
5 bits of decimal places per float column (in template order) and the template variant in
bits 60-62. Any row the formatter cannot reproduce byte for byte keeps its ``raw``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from schemas._columns import BOOL, F64, I32, I64, NS, NS_PER_MS, STR, Col, item_of
from schemas.errors import CorruptDataError
from schemas.streams import StreamName
from schemas.tables import RAW_FMT, TABLES, Table, table_for

_DP_BITS = 5
_MAX_DP = (1 << _DP_BITS) - 1
_VARIANT_SHIFT = 60
_DECIMAL_RE = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")

# Key order of each event type: live captures in tests/data, BINANCE.md section 3 examples.
# `$col` is a typed column, `$bids&qtys` a [["price","qty"],..] level list, `<?..?>` a group
# written only when all its columns are non-null (keys Binance added later: nq, st, ps).
_ST = '<?,"st":$st?>'
_ST_PS = _ST + '<?,"ps":$ps?>'
_KLINE_K = ('"i":$interval,"f":$F,"L":$L,"o":$open,"c":$close,"h":$high,"l":$low,'
            '"v":$volume,"n":$trades,"x":$is_closed,"q":$quote_volume,"V":$taker_buy_volume,'
            '"Q":$taker_buy_quote_volume,"B":"0"}')
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "agg_trades": (
        '{"e":"aggTrade","E":$event_time_ns,"a":$agg_trade_id,"s":$symbol,"p":$price,'
        '"q":$qty<?,"nq":$non_rpi_qty?>,"f":$first_trade_id,"l":$last_trade_id,'
        '"T":$trade_time_ns,"m":$is_buyer_maker' + _ST_PS + "}",
        # REST GET /fapi/v1/aggTrades rows (BINANCE.md section 6): no e/E/s.
        '{"a":$agg_trade_id,"p":$price,"q":$qty<?,"nq":$non_rpi_qty?>,"f":$first_trade_id,'
        '"l":$last_trade_id,"T":$trade_time_ns,"m":$is_buyer_maker}',
    ),
    "trades": (
        '{"e":"trade","E":$event_time_ns,"T":$trade_time_ns,"s":$symbol,"t":$trade_id,'
        '"p":$price,"q":$qty,"X":$order_type,"m":$is_buyer_maker' + _ST_PS + "}",
    ),
    "mark_prices": (
        '{"e":"markPriceUpdate","E":$event_time_ns,"s":$symbol,"p":$mark_price'
        '<?,"ap":$mark_price_avg?>,"P":$estimated_settle_price,"i":$index_price,'
        '"r":$funding_rate,"T":$next_funding_time_ns' + _ST_PS + "}",
        '{"e":"markPriceUpdate","E":$event_time_ns,"s":$symbol,"p":$mark_price,'
        '"i":$index_price,"P":$estimated_settle_price,"r":$funding_rate,'
        '"T":$next_funding_time_ns' + _ST_PS + "}",
    ),
    "klines": (
        '{"e":"kline","E":$event_time_ns,"s":$symbol,"k":{"t":$open_time_ns,'
        '"T":$close_time_ns,"s":$symbol,'
        + _KLINE_K.replace("$F", "$first_trade_id").replace("$L", "$last_trade_id")
        + _ST_PS + "}",
    ),
    "continuous_klines": (
        '{"e":"continuous_kline","E":$event_time_ns,"ps":$symbol,"ct":$contract_type,'
        '"k":{"t":$open_time_ns,"T":$close_time_ns,'
        + _KLINE_K.replace("$F", "$first_update_id").replace("$L", "$last_update_id")
        + _ST + "}",
    ),
    "mini_tickers": (
        '{"e":"24hrMiniTicker","E":$event_time_ns,"s":$symbol,"c":$close,"o":$open,'
        '"h":$high,"l":$low,"v":$volume,"q":$quote_volume' + _ST_PS + "}",
    ),
    "tickers": (
        '{"e":"24hrTicker","E":$event_time_ns,"s":$symbol,"p":$price_change,'
        '"P":$price_change_pct,"w":$weighted_avg_price,"c":$close,"Q":$last_qty,"o":$open,'
        '"h":$high,"l":$low,"v":$volume,"q":$quote_volume,"O":$open_time_ns,'
        '"C":$close_time_ns,"F":$first_trade_id,"L":$last_trade_id,"n":$trade_count'
        + _ST_PS + "}",
    ),
    "book_tickers": (
        '{"e":"bookTicker","u":$update_id,"s":$symbol,"b":$bid_price,"B":$bid_qty,'
        '"a":$ask_price,"A":$ask_qty,"T":$transaction_time_ns,"E":$event_time_ns'
        + _ST_PS + "}",
    ),
    "liquidations": (
        '{"e":"forceOrder","E":$event_time_ns,"o":{"s":$symbol,"S":$side,"o":$order_type,'
        '"f":$time_in_force,"q":$qty,"p":$price,"ap":$avg_price,"X":$order_status,'
        '"l":$last_filled_qty,"z":$cum_filled_qty,"T":$trade_time_ns<?,"ps":$ps?>'
        + _ST + "}}",
    ),
    "depth_updates": (
        '{"e":"depthUpdate","E":$event_time_ns,"T":$transaction_time_ns,"s":$symbol,'
        '"U":$first_update_id,"u":$final_update_id,"pu":$prev_final_update_id,'
        '"b":$bid_prices&bid_qtys,"a":$ask_prices&ask_qtys' + _ST_PS + "}",
    ),
    "depth_snapshots": (
        '{"lastUpdateId":$last_update_id,"E":$event_time_ns,"T":$transaction_time_ns,'
        '"bids":$bid_prices&bid_qtys,"asks":$ask_prices&ask_qtys}',
    ),
}

_TOKEN_RE = re.compile(r"<\?|\?>|\$[a-z_0-9]+(?:&[a-z_0-9]+)?")


@dataclass(frozen=True, slots=True)
class _Field:
    cols: tuple[Col, ...]  # one column, or (prices, qtys) for a level list
    slots: tuple[int, ...]  # decimal-place slot of each F64 column, else -1


Part = str | _Field | list[Any]


def _compile(template: str, cols: dict[str, Col], slots: dict[str, int]) -> list[Part]:
    stack: list[list[Part]] = [[]]
    pos = 0
    for m in _TOKEN_RE.finditer(template):
        if m.start() > pos:
            stack[-1].append(template[pos:m.start()])
        token = m.group()
        if token == "<?":
            stack.append([])
        elif token == "?>":
            group = stack.pop()
            stack[-1].append(group)
        else:
            names = token[1:].split("&")
            for n in names:
                if cols[n].kind == F64:
                    slots.setdefault(n, len(slots))
            stack[-1].append(_Field(tuple(cols[n] for n in names),
                                    tuple(slots.get(n, -1) for n in names)))
        pos = m.end()
    stack[-1].append(template[pos:])
    assert len(stack) == 1, template
    return stack[0]


@dataclass(frozen=True)
class _Formatter:
    variants: tuple[list[Part], ...]
    slot_cols: tuple[Col, ...]  # F64 column of each decimal-place slot


def _make_formatter(table: Table) -> _Formatter:
    cols = {c.name: c for c in table.columns}
    slots: dict[str, int] = {}
    variants = tuple(_compile(t, cols, slots) for t in _TEMPLATES[table.name])
    assert len(slots) * _DP_BITS <= _VARIANT_SHIFT, table.name
    return _Formatter(variants, tuple(cols[n] for n in slots))


_FORMATTERS = {name: _make_formatter(TABLES[(name, False)]) for name in _TEMPLATES}


def _scalar(col: Col, v: Any, dps: Sequence[int], slot: int) -> str | None:
    kind = col.kind
    if kind == F64:
        text = f"{v:.{dps[slot]}f}"
        return f'"{text}"'
    if kind == NS:
        ms, rest = divmod(v, NS_PER_MS)
        return None if rest else str(ms)
    if kind in (I64, I32):
        return str(v)
    if kind == BOOL:
        return "true" if v else "false"
    if kind == STR:
        return orjson.dumps(v).decode()
    return None  # pragma: no cover - every kind is handled above


def _render(parts: Sequence[Part], row: dict[str, Any], dps: Sequence[int],
            out: list[str]) -> bool:
    """Append the text of ``parts`` for ``row`` to ``out``; False if a required value is null."""
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, list):
            mark = len(out)
            if not _render(part, row, dps, out):
                del out[mark:]
        elif len(part.cols) == 1:
            v = row.get(part.cols[0].name)
            text = None if v is None else _scalar(part.cols[0], v, dps, part.slots[0])
            if text is None:
                return False
            out.append(text)
        else:
            prices, qtys = row.get(part.cols[0].name), row.get(part.cols[1].name)
            if (prices is None or qtys is None or len(prices) != len(qtys)
                    or None in prices or None in qtys):
                return False
            p_dp, q_dp = dps[part.slots[0]], dps[part.slots[1]]
            out.append("[" + ",".join(
                f'["{p:.{p_dp}f}","{q:.{q_dp}f}"]' for p, q in zip(prices, qtys, strict=True)
            ) + "]")
    return True


def _path_values(d: Any, col: Col) -> list[Any]:
    key, _, sub = col.path.partition(".")
    v = d.get(key) if d.__class__ is dict else None
    if sub:
        v = v.get(sub) if v.__class__ is dict else None
    if col.item is None:
        return [v]
    if v.__class__ is not list:
        return []
    return [item_of(e, col.item) for e in v]


def _learn_dps(fmt: _Formatter, d: Any) -> list[int] | None:
    """Decimal places of each slot's strings in the decoded payload (all equal), or None."""
    dps: list[int] = []
    for col in fmt.slot_cols:
        found: set[int] = set()
        for s in _path_values(d, col):
            if s is None:
                continue
            m = _DECIMAL_RE.fullmatch(s) if s.__class__ is str else None
            if m is None:
                return None
            found.add(len(m.group(1) or ""))
        if len(found) > 1 or (found and max(found) > _MAX_DP):
            return None
        dps.append(found.pop() if found else 0)
    return dps


def _pack(variant: int, dps: Sequence[int]) -> int:
    code = variant << _VARIANT_SHIFT
    for i, dp in enumerate(dps):
        code |= dp << (i * _DP_BITS)
    return code


def _unpack(code: int, n: int) -> tuple[int, list[int]]:
    return code >> _VARIANT_SHIFT, [(code >> (i * _DP_BITS)) & _MAX_DP for i in range(n)]


def _encode_item(fmt: _Formatter, target: str, d: Any, row: dict[str, Any]) -> int | None:
    """The code whose rendering of ``row`` is exactly ``target`` (``d`` = decoded target)."""
    dps = _learn_dps(fmt, d)
    if dps is None:
        return None
    for variant, parts in enumerate(fmt.variants):
        out: list[str] = []
        if _render(parts, row, dps, out) and "".join(out) == target:
            return _pack(variant, dps)
    return None


def _decode_item(fmt: _Formatter, code: int, row: dict[str, Any]) -> str | None:
    variant, dps = _unpack(code, len(fmt.slot_cols))
    if variant >= len(fmt.variants):
        return None
    out: list[str] = []
    return "".join(out) if _render(fmt.variants[variant], row, dps, out) else None


def _formatter(table: Table) -> _Formatter | None:
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


def raw_fmt(stream: str | StreamName, payload_text: str, row: dict[str, Any]
            ) -> int | list[int] | None:
    """The ``raw_fmt`` code that re-encodes ``row`` to exactly ``payload_text``, else ``None``.

    ``row`` holds the typed columns of ``payload_text`` (a ``build_batch`` row). For array
    streams the code is a list with one element per array item.
    """
    table = table_for(stream)
    fmt = _formatter(table)
    if fmt is None:
        return None
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
    return codes if _restore(table, fmt, codes, row) == payload_text else None


def raw_is_derivable(stream: str | StreamName, payload_text: str, row: dict[str, Any]) -> bool:
    """True if the typed columns of ``row`` re-encode to exactly ``payload_text``."""
    return raw_fmt(stream, payload_text, row) is not None


def _restore(table: Table, fmt: _Formatter, code: Any, row: dict[str, Any]) -> str | None:
    if not table.is_array:
        return _decode_item(fmt, code, row) if code.__class__ is int else None
    items = _items(table, row)
    if items is None or code.__class__ is not list or len(code) != len(items):
        return None
    texts = [_decode_item(fmt, c, r) for c, r in zip(code, items, strict=True)]
    return None if None in texts else "[" + ",".join(texts) + "]"  # type: ignore[arg-type]


def restore_raw(stream: str | StreamName, row: dict[str, Any]) -> str:
    """The exact received text of a stored row: ``raw`` if kept, else re-encoded.

    Raises :class:`~schemas.errors.CorruptDataError` if the row has neither a usable
    ``raw`` nor a ``raw_fmt`` code that renders it.
    """
    raw = row.get("raw")
    if raw is not None:
        return str(raw)
    table = table_for(stream)
    fmt = _formatter(table)
    code = row.get(RAW_FMT)
    text = None if fmt is None or code is None else _restore(table, fmt, code, row)
    if text is None:
        raise CorruptDataError(f"stream {table_for(stream).name} row has no raw text and no "
                               "usable raw_fmt code")
    return text


def drop_derivable_raw(stream: str | StreamName, batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with ``raw`` set to null (and ``raw_fmt`` set) wherever it is re-derivable."""
    table = table_for(stream)
    if _formatter(table) is None or batch.num_rows == 0:
        return batch
    rows = batch.to_pylist()
    raws: list[str | None] = []
    codes: list[Any] = []
    for row in rows:
        raw = row["raw"]
        code = None if raw is None else raw_fmt(stream, raw, row)
        raws.append(None if code is not None else raw)
        codes.append(code if code is not None else row[RAW_FMT])
    i_raw = batch.schema.get_field_index("raw")
    i_fmt = batch.schema.get_field_index(RAW_FMT)
    batch = batch.set_column(i_raw, batch.schema.field(i_raw), pa.array(raws, pa.string()))
    return batch.set_column(i_fmt, batch.schema.field(i_fmt),
                            pa.array(codes, batch.schema.field(i_fmt).type))


def restore_raw_column(stream: str | StreamName, batch: pa.RecordBatch) -> pa.Array[Any]:
    """The exact received text of every row of ``batch`` (see :func:`restore_raw`)."""
    raw = batch.column("raw")
    if raw.null_count == 0:
        return raw
    return pa.array([restore_raw(stream, row) for row in batch.to_pylist()], pa.string())


__all__ = ["drop_derivable_raw", "raw_fmt", "raw_is_derivable", "restore_raw",
           "restore_raw_column"]
