"""Arrow schemas and parsers for every BINANCE.md payload (sections 3, 4 and 5)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from schemas.message import Message, Source
from schemas.streams import parse_stream
from schemas.tables import (
    COMMON_FIELDS,
    RAW_FMT,
    TABLES,
    UNKNOWN,
    build_batch,
    parse_payload,
    table_for,
)
from tests.schemas_support import (
    AGG_TRADE,
    ASSET_INDEX,
    BOOK_TICKER,
    CASES,
    DEPTH,
    FORCE_ORDER,
    MARK_PRICE,
    MINI_TICKER,
    MS,
    TICKER,
)


@pytest.mark.parametrize(("stream", "payload", "expected"), CASES, ids=[c[0] for c in CASES])
def test_documented_payload(stream: str, payload: str, expected: dict[str, Any]) -> None:
    assert parse_payload(stream, payload) == expected
    batch = build_batch(stream, [Message(stream, 7, payload, 3, 9)])
    assert batch.schema == table_for(stream).schema
    row = batch.to_pylist()[0]
    assert row == {"recv_ns": 7, "conn_id": 3, "seq": 9, "source": "ws", "raw": payload,
                   **expected, "raw_fmt": None}


def test_partial_depth_has_the_diff_shape() -> None:
    partial = parse_payload("btcusdt@depth20@100ms", DEPTH)
    assert table_for("btcusdt@depth20@100ms") is table_for("btcusdt@depth")
    assert partial == parse_payload("btcusdt@depth", DEPTH)


def test_single_object_global_streams() -> None:
    # !bookTicker and !forceOrder@arr send single objects (BINANCE.md section 3).
    assert parse_payload("!bookTicker", BOOK_TICKER) == parse_payload("btcusdt@bookTicker",
                                                                      BOOK_TICKER)
    assert parse_payload("!forceOrder@arr", FORCE_ORDER)["avg_price"] == 83598.5
    assert not table_for("!forceOrder@arr").is_array


@pytest.mark.parametrize(("stream", "single_stream", "payload"), [
    ("!markPrice@arr", "btcusdt@markPrice", MARK_PRICE),
    ("!markPrice@arr@1s", "btcusdt@markPrice", MARK_PRICE),
    ("!ticker@arr", "btcusdt@ticker", TICKER),
    ("!miniTicker@arr", "btcusdt@miniTicker", MINI_TICKER),
    ("!assetIndex@arr", "adxusd@assetIndex", ASSET_INDEX),
])
def test_array_streams_wrap_every_column_in_lists(
    stream: str, single_stream: str, payload: str
) -> None:
    table, single = table_for(stream), table_for(single_stream)
    assert table.is_array and table.name == single.name
    for f, g in zip(table.typed_fields, single.typed_fields, strict=True):
        assert f.name == g.name and f.type == pa.list_(g.type)
    one = parse_payload(single_stream, payload)
    got = parse_payload(stream, f"[{payload},{payload}]")
    assert got == {k: [v, v] for k, v in one.items()}
    msgs = [Message(stream, 1, f"[{payload}]"), Message(stream, 2, "[]"),
            Message(stream, 3, "{}"), Message(stream, 4, f"[{payload},{payload},{payload}]")]
    batch = build_batch(stream, msgs)
    col = batch.column(table.typed_fields[0].name).to_pylist()
    value = one[table.typed_fields[0].name]
    assert col == [[value], [], None, [value] * 3]


USER_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ('{"e":"listenKeyExpired","E":1736996475556,"listenKey":"k"}',
     {"event_type": "listenKeyExpired", "event_time_ns": 1736996475556 * MS}),
    ('{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER","B":[{"a":'
     '"USDT","wb":"1226.1","cw":"100.1","bc":"50.1"}],"P":[{"s":"BTCUSDT","pa":"20","ep":'
     '"6563.6","bep":"6563.6","cr":"0","up":"285.2","mt":"isolated","iw":"1320.7","ps":"LONG"}]}}',
     {"event_type": "ACCOUNT_UPDATE", "event_time_ns": 1564745798939 * MS,
      "transaction_time_ns": 1564745798938 * MS, "reason": "ORDER",
      "balance_assets": ["USDT"], "balance_wallet": [1226.1], "balance_cross_wallet": [100.1],
      "balance_change": [50.1], "position_symbols": ["BTCUSDT"], "position_sides": ["LONG"],
      "position_amounts": [20.0], "position_entry_prices": [6563.6],
      "position_unrealized_pnl": [285.2], "position_margin_types": ["isolated"]}),
    ('{"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465650,"o":{"s":"BTCUSDT","c":'
     '"TEST","S":"SELL","o":"LIMIT","f":"GTC","q":"0.001","p":"9000","x":"NEW","X":"NEW","i":'
     '8886774,"l":"0","z":"0","T":1568879465650,"m":false,"R":false,"ps":"BOTH"}}',
     {"event_type": "ORDER_TRADE_UPDATE", "event_time_ns": 1568879465651 * MS,
      "transaction_time_ns": 1568879465650 * MS, "symbol": "BTCUSDT",
      "client_order_id": "TEST", "side": "SELL", "order_type": "LIMIT",
      "time_in_force": "GTC", "orig_qty": 0.001, "price": 9000.0, "execution_type": "NEW",
      "order_status": "NEW", "order_id": 8886774, "last_filled_qty": 0.0,
      "cum_filled_qty": 0.0, "order_trade_time_ns": 1568879465650 * MS, "is_maker": False,
      "is_reduce_only": False, "position_side": "BOTH"}),
    ('{"e":"TRADE_LITE","E":1721895408092,"T":1721895408214,"s":"BTCUSDT","q":"0.001","p":"0",'
     '"m":false,"c":"z8hc","S":"BUY","L":"64089.20","l":"0.040","t":109100866,"i":8886774}',
     {"event_type": "TRADE_LITE", "event_time_ns": 1721895408092 * MS,
      "transaction_time_ns": 1721895408214 * MS, "symbol": "BTCUSDT", "orig_qty": 0.001,
      "price": 0.0, "is_maker": False, "client_order_id": "z8hc", "side": "BUY",
      "last_filled_price": 64089.2, "last_filled_qty": 0.04, "trade_id": 109100866,
      "order_id": 8886774}),
    ('{"e":"MARGIN_CALL","E":1587727187525,"cw":"3.16","p":[{"s":"ETHUSDT","ps":"LONG","pa":'
     '"1.327","mt":"CROSSED","iw":"0","mp":"187.17","up":"-1.16","mm":"1.61"}]}',
     {"event_type": "MARGIN_CALL", "event_time_ns": 1587727187525 * MS,
      "cross_wallet_balance": 3.16, "position_symbols": ["ETHUSDT"],
      "position_sides": ["LONG"], "position_amounts": [1.327],
      "position_unrealized_pnl": [-1.16], "position_margin_types": ["CROSSED"]}),
    ('{"e":"ACCOUNT_CONFIG_UPDATE","E":1611646737479,"T":1611646737476,"ac":{"s":"BTCUSDT",'
     '"l":25}}',
     {"event_type": "ACCOUNT_CONFIG_UPDATE", "event_time_ns": 1611646737479 * MS,
      "transaction_time_ns": 1611646737476 * MS, "symbol": "BTCUSDT", "leverage": 25}),
    ('{"e":"ACCOUNT_CONFIG_UPDATE","E":1611646737479,"T":1611646737476,"ai":{"j":true}}',
     {"event_type": "ACCOUNT_CONFIG_UPDATE", "event_time_ns": 1611646737479 * MS,
      "transaction_time_ns": 1611646737476 * MS, "multi_assets_mode": True}),
    ('{"e":"GRID_UPDATE","E":1,"T":2,"gu":{"si":1}}',
     {"event_type": "GRID_UPDATE", "event_time_ns": MS, "transaction_time_ns": 2 * MS}),
]


@pytest.mark.parametrize(("payload", "expected"), USER_EVENTS,
                         ids=[p.split('"')[3] for p, _ in USER_EVENTS])
def test_user_events(payload: str, expected: dict[str, Any]) -> None:
    got = parse_payload("userData", payload)
    assert {k: v for k, v in got.items() if v is not None} == expected
    assert set(got) == {f.name for f in table_for("userData@main").typed_fields}


def test_listen_key_is_not_a_column() -> None:
    names = {f.name for f in table_for("userData").schema}
    assert not any("listen" in n.lower() for n in names)


def test_every_table_starts_with_the_common_columns() -> None:
    for table in TABLES.values():
        assert list(table.schema)[: len(COMMON_FIELDS)] == COMMON_FIELDS
        assert list(table.schema)[len(COMMON_FIELDS):-1] == list(table.typed_fields)
        assert table.schema.names[-1] == RAW_FMT
        names = [f.name for f in table.schema]
        assert len(names) == len(set(names)), table.name
        for f in table.typed_fields:
            scalar = f.type.value_type if table.is_array else f.type
            base = scalar.value_type if pa.types.is_list(scalar) else scalar
            if f.name.endswith("_ns"):
                assert base == pa.int64(), f.name
            if f.name in ("price", "qty", "open", "close", "funding_rate", "mark_price"):
                assert base == pa.float64(), f.name
            assert f.name == f.name.lower() and " " not in f.name


@pytest.mark.parametrize(("stream", "name"), [
    ("btcusdt@aggTrade", "agg_trades"), ("btcusdt@trade", "trades"),
    ("btcusdt@markPrice", "mark_prices"), ("!markPrice@arr", "mark_prices"),
    ("btcusdt@kline_1h", "klines"), ("btcusdt_next_quarter@continuousKline_1s",
                                      "continuous_klines"),
    ("btcusdt@miniTicker", "mini_tickers"), ("!ticker@arr", "tickers"),
    ("BTCUSDT@bookTicker", "book_tickers"), ("!bookTicker", "book_tickers"),
    ("!forceOrder@arr", "liquidations"), ("btcusdt@depth5", "depth_updates"),
    ("btcusdt@rpiDepth@500ms", "depth_updates"), ("btcusdt@depthSnapshot", "depth_snapshots"),
    ("btcusdt@compositeIndex", "composite_index"), ("!contractInfo", "contract_info"),
    ("!assetIndex@arr", "asset_index"), ("userData@acct-1", "user_events"),
    ("btcusdt@nope", "unknown"), ("../x", "unknown"), ("", "unknown"),
])
def test_table_for(stream: str, name: str) -> None:
    assert table_for(stream).name == name
    if name != "unknown":
        assert table_for(parse_stream(stream)) is table_for(stream)


def test_unknown_stream_keeps_raw_only() -> None:
    assert UNKNOWN.typed_fields == ()
    batch = build_batch("btcusdt@nope", [Message("btcusdt@nope", 1, '{"x":1}', 0, 0,
                                                 Source.REST)])
    assert batch.schema.names == [*(f.name for f in COMMON_FIELDS), RAW_FMT]
    assert batch.to_pylist() == [{"recv_ns": 1, "conn_id": 0, "seq": 0, "source": "rest",
                                  "raw": '{"x":1}', "raw_fmt": None}]
    assert parse_payload("btcusdt@nope", '{"x":1}') == {}


def test_bad_values_become_null_without_losing_the_row() -> None:
    bad = ('{"e":"aggTrade","E":"soon","a":1.5,"s":7,"p":"abc","q":2,"f":99999999999999999999,'
           '"l":"12","T":true,"m":"yes","st":300000000000}')
    row = parse_payload("btcusdt@aggTrade", bad)
    # the symbol falls back to the stream's; an integral JSON number is a valid quantity
    assert row["symbol"] == "BTCUSDT" and row["qty"] == 2.0 and row["last_trade_id"] == 12
    assert [k for k, v in row.items() if v is None] == [
        "event_time_ns", "agg_trade_id", "price", "non_rpi_qty", "first_trade_id",
        "trade_time_ns", "is_buyer_maker", "st", "ps"]
    msgs = [Message("btcusdt@aggTrade", 1, bad), Message("btcusdt@aggTrade", 2, AGG_TRADE),
            Message("btcusdt@aggTrade", 3, "not json"), Message("btcusdt@aggTrade", 4, "[1]")]
    batch = build_batch("btcusdt@aggTrade", msgs)
    assert batch.column("raw").to_pylist() == [m.raw for m in msgs]
    assert batch.column("agg_trade_id").to_pylist() == [None, 3141966230, None, None]
    assert batch.column("price").to_pylist() == [None, 68005.0, None, None]


def test_bad_levels_become_null() -> None:
    payload = '{"e":"depthUpdate","b":[["1","2"],["x"],7,{"a":1}],"a":"none"}'
    row = parse_payload("btcusdt@depth", payload)
    assert row["bid_prices"] == [1.0, None, None, None]
    assert row["bid_qtys"] == [2.0, None, None, None]
    assert row["ask_prices"] is None


def test_empty_batch() -> None:
    for stream in ("btcusdt@aggTrade", "!markPrice@arr", "userData", "x"):
        batch = build_batch(stream, [])
        assert batch.num_rows == 0 and batch.schema == table_for(stream).schema
