"""The stored tables: one Arrow schema and one payload parser per Binance event type.

Every stream partition starts with :data:`COMMON_FIELDS` (``recv_ns, conn_id, seq, source,
raw``) and continues with the typed columns of its table (DESIGN.md, partition layout). Typed
columns follow BINANCE.md sections 3 and 5: prices, quantities and rates are float64, times
are int64 epoch nanoseconds (Binance ms * 1_000_000), ids are int64, flags bool. Array streams
(``!markPrice@arr``, ``!ticker@arr``, ...) hold the same columns wrapped in ``list<...>``, one
element per array item. Unknown keys are ignored (``raw`` keeps them); a payload that does not
fit leaves its typed columns null; an unknown stream maps to the raw-only table ``unknown``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from schemas._columns import BOOL, F64, I32, I64, NS, STR, Col, column_array, wrap_lists
from schemas._user_events import USER_EVENT_COLUMNS, extract_user_event
from schemas._vector import Plan, make_plan, typed_columns
from schemas.errors import StreamNameError
from schemas.message import Message
from schemas.streams import StreamName, parse_stream

COMMON_FIELDS: list[pa.Field[Any]] = [
    pa.field("recv_ns", pa.int64(), nullable=False),
    pa.field("conn_id", pa.int32(), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("raw", pa.string(), nullable=True),
]
"""The columns every stream partition starts with (``source`` is ``'ws'`` or ``'rest'``)."""

RAW_FMT = "raw_fmt"
"""Last column of every table: null while ``raw`` is stored; otherwise the code with which
:func:`schemas.formatters.restore_raw` re-encodes the typed columns to the exact received text
(``list<int64>`` for array streams, one code per array item)."""

# Since the COIN-M/USD-M merger most payloads add `st` (1 = UM, 2 = CM) and `ps` (pair)
# (BINANCE.md section 3); kept as columns where present.
_ST_PS = (Col("st", I32, "st"), Col("ps", STR, "ps"))

_KLINE_BODY = (
    Col("open_time_ns", NS, "k.t"), Col("close_time_ns", NS, "k.T"),
    Col("interval", STR, "k.i"),
)
_KLINE_OHLCV = (
    Col("open", F64, "k.o"), Col("high", F64, "k.h"), Col("low", F64, "k.l"),
    Col("close", F64, "k.c"), Col("volume", F64, "k.v"), Col("trades", I64, "k.n"),
    Col("is_closed", BOOL, "k.x"), Col("quote_volume", F64, "k.q"),
    Col("taker_buy_volume", F64, "k.V"), Col("taker_buy_quote_volume", F64, "k.Q"),
)
_LEVELS = (
    Col("bid_prices", F64, "b", 0), Col("bid_qtys", F64, "b", 1),
    Col("ask_prices", F64, "a", 0), Col("ask_qtys", F64, "a", 1),
)

# Column specs per table, in stored order (BINANCE.md section 3 names the keys).
_SPECS: dict[str, tuple[str, tuple[Col, ...]]] = {
    "agg_trades": ("aggTrade", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "s"), Col("agg_trade_id", I64, "a"),
        Col("price", F64, "p"), Col("qty", F64, "q"), Col("non_rpi_qty", F64, "nq"),
        Col("first_trade_id", I64, "f"), Col("last_trade_id", I64, "l"),
        Col("trade_time_ns", NS, "T"), Col("is_buyer_maker", BOOL, "m"), *_ST_PS)),
    "trades": ("trade", (
        Col("event_time_ns", NS, "E"), Col("trade_time_ns", NS, "T"), Col("symbol", STR, "s"),
        Col("trade_id", I64, "t"), Col("price", F64, "p"), Col("qty", F64, "q"),
        Col("order_type", STR, "X"), Col("is_buyer_maker", BOOL, "m"), *_ST_PS)),
    "mark_prices": ("markPriceUpdate", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "s"), Col("mark_price", F64, "p"),
        Col("mark_price_avg", F64, "ap"), Col("estimated_settle_price", F64, "P"),
        Col("index_price", F64, "i"), Col("funding_rate", F64, "r"),
        Col("next_funding_time_ns", NS, "T"), *_ST_PS)),
    "klines": ("kline", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "s"), *_ST_PS, *_KLINE_BODY,
        Col("first_trade_id", I64, "k.f"), Col("last_trade_id", I64, "k.L"), *_KLINE_OHLCV)),
    # continuous_kline: `ps` is the pair (stored as `symbol`); k.f/k.L are update ids.
    "continuous_klines": ("continuous_kline", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "ps"),
        Col("contract_type", STR, "ct"), Col("st", I32, "st"), *_KLINE_BODY,
        Col("first_update_id", I64, "k.f"), Col("last_update_id", I64, "k.L"), *_KLINE_OHLCV)),
    "mini_tickers": ("24hrMiniTicker", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "s"), Col("close", F64, "c"),
        Col("open", F64, "o"), Col("high", F64, "h"), Col("low", F64, "l"),
        Col("volume", F64, "v"), Col("quote_volume", F64, "q"), *_ST_PS)),
    "tickers": ("24hrTicker", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "s"),
        Col("price_change", F64, "p"), Col("price_change_pct", F64, "P"),
        Col("weighted_avg_price", F64, "w"), Col("close", F64, "c"),
        Col("last_qty", F64, "Q"), Col("open", F64, "o"), Col("high", F64, "h"),
        Col("low", F64, "l"), Col("volume", F64, "v"), Col("quote_volume", F64, "q"),
        Col("open_time_ns", NS, "O"), Col("close_time_ns", NS, "C"),
        Col("first_trade_id", I64, "F"), Col("last_trade_id", I64, "L"),
        Col("trade_count", I64, "n"), *_ST_PS)),
    "book_tickers": ("bookTicker", (
        Col("event_time_ns", NS, "E"), Col("transaction_time_ns", NS, "T"),
        Col("symbol", STR, "s"), Col("update_id", I64, "u"), Col("bid_price", F64, "b"),
        Col("bid_qty", F64, "B"), Col("ask_price", F64, "a"), Col("ask_qty", F64, "A"),
        *_ST_PS)),
    # forceOrder: the order is nested in `o` (BINANCE.md section 3).
    "liquidations": ("forceOrder", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "o.s"), Col("side", STR, "o.S"),
        Col("order_type", STR, "o.o"), Col("time_in_force", STR, "o.f"),
        Col("qty", F64, "o.q"), Col("price", F64, "o.p"), Col("avg_price", F64, "o.ap"),
        Col("order_status", STR, "o.X"), Col("last_filled_qty", F64, "o.l"),
        Col("cum_filled_qty", F64, "o.z"), Col("trade_time_ns", NS, "o.T"),
        Col("st", I32, "o.st"), Col("ps", STR, "o.ps"))),
    "depth_updates": ("depthUpdate", (
        Col("event_time_ns", NS, "E"), Col("transaction_time_ns", NS, "T"),
        Col("symbol", STR, "s"), Col("first_update_id", I64, "U"),
        Col("final_update_id", I64, "u"), Col("prev_final_update_id", I64, "pu"),
        *_LEVELS, *_ST_PS)),
    # REST GET /fapi/v1/depth body (BINANCE.md section 4); the symbol comes from the stream.
    "depth_snapshots": ("depthSnapshot", (
        Col("event_time_ns", NS, "E"), Col("transaction_time_ns", NS, "T"),
        Col("symbol", STR, "s"), Col("last_update_id", I64, "lastUpdateId"),
        Col("bid_prices", F64, "bids", 0), Col("bid_qtys", F64, "bids", 1),
        Col("ask_prices", F64, "asks", 0), Col("ask_qtys", F64, "asks", 1))),
    "composite_index": ("compositeIndex", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "s"), Col("price", F64, "p"),
        Col("base_asset_type", STR, "C"), Col("component_base_assets", STR, "c", "b"),
        Col("component_quote_assets", STR, "c", "q"),
        Col("component_weights_qty", F64, "c", "w"),
        Col("component_weights_pct", F64, "c", "W"),
        Col("component_index_prices", F64, "c", "i"), *_ST_PS)),
    # contractInfo `bks` (bracket) values are JSON numbers and appear only on changes.
    "contract_info": ("contractInfo", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "s"), Col("pair", STR, "ps"),
        Col("contract_type", STR, "ct"), Col("delivery_time_ns", NS, "dt"),
        Col("onboard_time_ns", NS, "ot"), Col("contract_status", STR, "cs"),
        Col("bracket_ids", I64, "bks", "bs"),
        Col("bracket_notional_floors", F64, "bks", "bnf"),
        Col("bracket_notional_caps", F64, "bks", "bnc"),
        Col("bracket_maint_margin_ratios", F64, "bks", "mmr"),
        Col("bracket_cums", F64, "bks", "cf"),
        Col("bracket_min_leverages", I64, "bks", "mi"),
        Col("bracket_max_leverages", I64, "bks", "ma"), Col("st", I32, "st"))),
    "asset_index": ("assetIndexUpdate", (
        Col("event_time_ns", NS, "E"), Col("symbol", STR, "s"), Col("index_price", F64, "i"),
        Col("bid_buffer", F64, "b"), Col("ask_buffer", F64, "a"), Col("bid_rate", F64, "B"),
        Col("ask_rate", F64, "A"), Col("auto_exchange_bid_buffer", F64, "l"),
        Col("auto_exchange_bid_rate", F64, "L"), Col("auto_exchange_ask_buffer", F64, "q"),
        Col("auto_exchange_ask_rate", F64, "Q"), *_ST_PS)),
    "user_events": ("userData", USER_EVENT_COLUMNS),
    "unknown": ("", ()),
}

Extractor = Callable[[Any], tuple[Any, ...]]
_EMPTY: dict[str, Any] = {}


def _make_extractor(cols: tuple[Col, ...]) -> tuple[Extractor, tuple[Col, ...]]:
    """A tight ``payload -> tuple`` function and the column order it produces.

    The function is generated from the column spec (keys are constants of this module) as one
    expression of ``dict.get`` calls: about twice as fast as ``tuple(map(d.get, keys))``, and
    a missing key gives ``None``. A payload that is not a JSON object raises AttributeError.
    Top-level keys come first, then the keys of each nested object.
    """
    top = tuple(c for c in cols if "." not in c.path)
    groups: dict[str, list[Col]] = {}
    for c in cols:
        if "." in c.path:
            groups.setdefault(c.path.split(".", 1)[0], []).append(c)
    order = top + tuple(c for g in groups.values() for c in g)
    lines = ["def extract(d):", "    g = d.get"]
    items = [f"g({c.path!r})" for c in top]
    for n, (key, group) in enumerate(groups.items()):
        lines.append(f"    n{n} = g({key!r})")
        lines.append(f"    g{n} = (n{n} if n{n}.__class__ is dict else _EMPTY).get")
        items += [f"g{n}({c.path.split('.', 1)[1]!r})" for c in group]
    lines.append(f"    return ({', '.join(items)},)")
    namespace: dict[str, Any] = {"_EMPTY": _EMPTY}
    exec("\n".join(lines), namespace)  # source built from the constant specs above
    extract: Extractor = namespace["extract"]
    return extract, order


@dataclass(frozen=True)
class Table:
    """A stored table: its name, event type, full schema and the typed part of it.

    ``schema`` is :data:`COMMON_FIELDS`, then ``typed_fields``, then :data:`RAW_FMT`.
    ``is_array`` tables belong to ``!...@arr`` streams: each typed column is ``list<...>``.
    """

    name: str
    event_type: str
    schema: pa.Schema
    typed_fields: tuple[pa.Field[Any], ...]
    is_array: bool = False
    columns: tuple[Col, ...] = field(default=(), repr=False, compare=False)
    extract: Extractor | None = field(default=None, repr=False, compare=False)
    plan: Plan | None = field(default=None, repr=False, compare=False)


def _make_table(name: str, is_array: bool) -> Table:
    event_type, cols = _SPECS[name]
    if name == "user_events":
        extract: Extractor | None = extract_user_event
        order = cols
    elif cols:
        extract, order = _make_extractor(cols)
    else:
        extract, order = None, ()
    fields = tuple(
        pa.field(c.name, pa.list_(c.arrow_type) if is_array else c.arrow_type) for c in order
    )
    fmt = pa.field(RAW_FMT, pa.list_(pa.int64()) if is_array else pa.int64())
    plan = make_plan(order, is_array) if name != "user_events" else None
    return Table(name, event_type, pa.schema([*COMMON_FIELDS, *fields, fmt]), fields,
                 is_array, order, extract, plan)


TABLES: dict[tuple[str, bool], Table] = {
    (name, is_array): _make_table(name, is_array) for name in _SPECS for is_array in (False, True)
}
"""Every table, keyed by ``(name, is_array)``."""
UNKNOWN = TABLES[("unknown", False)]


def _stream(stream: str | StreamName) -> StreamName | None:
    if isinstance(stream, StreamName):
        return stream
    try:
        return parse_stream(stream)
    except StreamNameError:
        return None


def table_for(stream: str | StreamName) -> Table:
    """The table a stream's payloads are stored in; ``unknown`` for an unparseable stream."""
    s = _stream(stream)
    if s is None:
        return UNKNOWN
    return TABLES.get((s.table, s.is_array), UNKNOWN)


def _decode(payload: Any) -> Any:
    if isinstance(payload, (str, bytes, bytearray, memoryview)):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
    return payload


def _typed_columns(
    table: Table, symbol: str | None, payloads: Sequence[Any]
) -> list[pa.Array[Any]]:
    """Typed column arrays for decoded payloads (one row per payload)."""
    extract = table.extract
    cols = table.columns
    if extract is None:
        return []
    null_row = (None,) * len(cols)
    rows: list[tuple[Any, ...]] = []
    offsets = [0]
    mask: list[bool] = []
    if not table.is_array:
        try:  # every payload an object (the common case): no per-row Python loop
            rows = list(map(extract, payloads))
            payloads = ()
        except (AttributeError, TypeError):
            rows = []
    for d in payloads:
        items = d if table.is_array else (d,)
        if table.is_array:
            if d.__class__ is not list:
                mask.append(True)
                offsets.append(len(rows))
                continue
            mask.append(False)
        for item in items:
            try:
                rows.append(extract(item))
            except (AttributeError, TypeError):
                rows.append(null_row)
        if table.is_array:
            offsets.append(len(rows))
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(cols)
    out: list[pa.Array[Any]] = []
    for col, values in zip(cols, columns, strict=True):
        if col.name == "symbol" and symbol is not None:
            # REST bodies (depth snapshot, aggTrades backfill) carry no symbol: use the stream's.
            values = tuple(v if v.__class__ is str else symbol for v in values)
        arr = column_array(col, values)
        out.append(wrap_lists(arr, offsets, mask) if table.is_array else arr)
    return out


def parse_payload(stream: str | StreamName, payload: Any) -> dict[str, Any]:
    """The typed values of one payload (text or decoded JSON), keyed by column name.

    Never raises: a value that does not fit its column is ``None``; an unknown stream gives
    ``{}``. For array streams every value is a list with one element per array item.
    """
    s = _stream(stream)
    table = table_for(s) if s is not None else UNKNOWN
    arrays = _typed_columns(table, s.symbol if s else None, [_decode(payload)])
    return {f.name: a[0].as_py() for f, a in zip(table.typed_fields, arrays, strict=True)}


def _data(msg: Message) -> Any:
    try:
        return msg.data
    except (ValueError, TypeError):
        return None


def build_batch(stream: str | StreamName, messages: Sequence[Message]) -> pa.RecordBatch:
    """One row per message: :data:`COMMON_FIELDS`, the stream's typed columns, null ``raw_fmt``.

    Never raises on bad or unknown payloads: typed columns stay null and ``raw`` is kept.
    Tables of flat objects are parsed in one vectorised pass over the ``raw`` texts
    (:mod:`schemas._vector`); a batch that pass cannot take exactly is parsed message by
    message, with the same result.
    """
    s = _stream(stream)
    table = table_for(s) if s is not None else UNKNOWN
    raws = [m.raw for m in messages]
    raw = pa.array(raws, pa.string())
    common: list[pa.Array[Any]] = [
        pa.array([m.recv_ns for m in messages], pa.int64()),
        pa.array([m.conn_id for m in messages], pa.int32()),
        pa.array([m.seq for m in messages], pa.int64()),
        pa.array([m.source for m in messages], pa.string()),
        raw,
    ]
    fmt = pa.nulls(len(messages), table.schema.field(RAW_FMT).type)
    if table.extract is None:
        return pa.RecordBatch.from_arrays([*common, fmt], schema=table.schema)
    symbol = s.symbol if s else None
    typed = None
    # A batch already decoded (the gap detector decodes aggTrade and depth payloads) is
    # quicker to take from the dicts; both paths give the same columns.
    if table.plan is not None and (not messages or messages[0]._data is None):
        typed = typed_columns(table.plan, raw, raws, symbol)
    if typed is None:
        typed = _decoded_columns(table, symbol, messages)
    return pa.RecordBatch.from_arrays([*common, *typed, fmt], schema=table.schema)


def build_batch_columns(
    stream: str | StreamName,
    recv_ns: pa.Array[Any],
    conn_id: pa.Array[Any],
    seq: pa.Array[Any],
    source: pa.Array[Any],
    raw: pa.Array[Any],
) -> pa.RecordBatch:
    """:func:`build_batch` of rows given as Arrow columns: the same batch, value for value.

    ``recv_ns``/``seq`` are integer arrays (cast to int64), ``conn_id`` integers cast to
    int32 (an out-of-range id raises like :func:`build_batch`), ``source`` and ``raw``
    string arrays (``raw`` without nulls). The typed columns come from the vectorised pass
    over ``raw`` without building Python strings; a batch that pass cannot take exactly is
    parsed text by text, as :func:`build_batch` would.
    """
    s = _stream(stream)
    table = table_for(s) if s is not None else UNKNOWN
    common: list[pa.Array[Any]] = [
        recv_ns.cast(pa.int64()), conn_id.cast(pa.int32()), seq.cast(pa.int64()),
        source.cast(pa.string()), raw.cast(pa.string()),
    ]
    n = len(raw)
    fmt = pa.nulls(n, table.schema.field(RAW_FMT).type)
    if table.extract is None:
        return pa.RecordBatch.from_arrays([*common, fmt], schema=table.schema)
    symbol = s.symbol if s else None
    typed = None
    if table.plan is not None:
        typed = typed_columns(table.plan, common[4], None, symbol)
    if typed is None:
        typed = _typed_columns(table, symbol, [_decode(t) for t in common[4].to_pylist()])
    return pa.RecordBatch.from_arrays([*common, *typed, fmt], schema=table.schema)


def _decoded_columns(
    table: Table, symbol: str | None, messages: Sequence[Message]
) -> list[pa.Array[Any]]:
    """The typed columns, parsed message by message (``Message.data``)."""
    try:
        payloads = [m.data for m in messages]
    except (ValueError, TypeError):  # a malformed frame: decode one by one
        payloads = [_data(m) for m in messages]
    return _typed_columns(table, symbol, payloads)


__all__ = [
    "COMMON_FIELDS",
    "RAW_FMT",
    "TABLES",
    "UNKNOWN",
    "Table",
    "build_batch",
    "build_batch_columns",
    "parse_payload",
    "table_for",
]
