"""Parsers round-trip real Binance captures: every typed value equals its JSON value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pytest

from schemas.message import Message
from schemas.tables import COMMON_FIELDS, build_batch, parse_payload, table_for
from tests.schemas_support import MS, cryptofeed_messages, hftbacktest_messages


def _levels(levels: list[list[str]]) -> dict[str, list[float]]:
    return {"prices": [float(p) for p, _ in levels], "qtys": [float(q) for _, q in levels]}


def _depth_levels(bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    b, a = _levels(bids), _levels(asks)
    return {"bid_prices": b["prices"], "bid_qtys": b["qtys"],
            "ask_prices": a["prices"], "ask_qtys": a["qtys"]}


# Independent oracles: the expected typed row, written from BINANCE.md section 3 field lists.
def _book_ticker(d: dict[str, Any]) -> dict[str, Any]:
    return {"event_time_ns": d["E"] * MS, "transaction_time_ns": d["T"] * MS,
            "symbol": d["s"], "update_id": d["u"], "bid_price": float(d["b"]),
            "bid_qty": float(d["B"]), "ask_price": float(d["a"]), "ask_qty": float(d["A"])}


def _trade(d: dict[str, Any]) -> dict[str, Any]:
    return {"event_time_ns": d["E"] * MS, "trade_time_ns": d["T"] * MS, "symbol": d["s"],
            "trade_id": d["t"], "price": float(d["p"]), "qty": float(d["q"]),
            "order_type": d["X"], "is_buyer_maker": d["m"]}


def _depth(d: dict[str, Any]) -> dict[str, Any]:
    return {"event_time_ns": d["E"] * MS, "transaction_time_ns": d["T"] * MS,
            "symbol": d["s"], "first_update_id": d["U"], "final_update_id": d["u"],
            "prev_final_update_id": d["pu"], **_depth_levels(d["b"], d["a"])}


def _agg_trade(d: dict[str, Any]) -> dict[str, Any]:
    return {"event_time_ns": d["E"] * MS, "symbol": d["s"], "agg_trade_id": d["a"],
            "price": float(d["p"]), "qty": float(d["q"]), "first_trade_id": d["f"],
            "last_trade_id": d["l"], "trade_time_ns": d["T"] * MS, "is_buyer_maker": d["m"]}


def _kline(d: dict[str, Any]) -> dict[str, Any]:
    k = d["k"]
    return {"event_time_ns": d["E"] * MS, "symbol": d["s"], "open_time_ns": k["t"] * MS,
            "close_time_ns": k["T"] * MS, "interval": k["i"], "first_trade_id": k["f"],
            "last_trade_id": k["L"], "open": float(k["o"]), "high": float(k["h"]),
            "low": float(k["l"]), "close": float(k["c"]), "volume": float(k["v"]),
            "trades": k["n"], "is_closed": k["x"], "quote_volume": float(k["q"]),
            "taker_buy_volume": float(k["V"]), "taker_buy_quote_volume": float(k["Q"])}


def _snapshot(symbol: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def oracle(d: dict[str, Any]) -> dict[str, Any]:
        return {"event_time_ns": d["E"] * MS, "transaction_time_ns": d["T"] * MS,
                "symbol": symbol, "last_update_id": d["lastUpdateId"],
                **_depth_levels(d["bids"], d["asks"])}
    return oracle


def _oracle(stream: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if stream.endswith("@depthSnapshot"):
        return _snapshot(stream.split("@")[0].upper())
    channel = stream.split("@", 1)[1]
    if channel.startswith("kline_"):
        return _kline
    if channel.startswith("depth"):
        return _depth
    return {"bookTicker": _book_ticker, "trade": _trade, "aggTrade": _agg_trade}[channel]


def _all_streams() -> list[tuple[str, list[Message]]]:
    merged = {**hftbacktest_messages(), **cryptofeed_messages()}
    return sorted(merged.items())


STREAMS = _all_streams()


def test_fixtures_cover_every_captured_event_type() -> None:
    tables = {table_for(stream).name for stream, _ in STREAMS}
    assert tables == {"book_tickers", "trades", "depth_updates", "depth_snapshots",
                      "agg_trades", "klines"}
    assert sum(len(m) for _, m in STREAMS) == 2500 + 1535 + 4


@pytest.mark.parametrize(("stream", "messages"), STREAMS, ids=[s for s, _ in STREAMS])
def test_batch_matches_json_values(stream: str, messages: list[Message]) -> None:
    batch = build_batch(stream, messages)
    table = table_for(stream)
    assert batch.schema == table.schema
    assert batch.num_rows == len(messages)
    assert batch.column("raw").to_pylist() == [m.raw for m in messages]
    assert batch.column("recv_ns").to_pylist() == [m.recv_ns for m in messages]
    assert batch.column("seq").to_pylist() == [m.seq for m in messages]
    assert batch.column("source").to_pylist() == [m.source.value for m in messages]
    oracle = _oracle(stream)
    rows = batch.select([f.name for f in table.typed_fields]).to_pylist()
    for msg, row in zip(messages, rows, strict=True):
        expected = oracle(orjson.loads(msg.raw))
        # Keys absent from these 2021/2024 captures (st, ps, nq) must be null, not invented.
        assert row == {name: expected.get(name) for name in row}, msg.raw[:200]


@pytest.mark.parametrize(("stream", "messages"), STREAMS[:3], ids=[s for s, _ in STREAMS[:3]])
def test_parse_payload_agrees_with_batch(stream: str, messages: list[Message]) -> None:
    sample = messages[:20]
    batch = build_batch(stream, sample)
    rows = batch.select([f.name for f in table_for(stream).typed_fields]).to_pylist()
    for msg, row in zip(sample, rows, strict=True):
        assert parse_payload(stream, msg.raw) == row
        assert parse_payload(stream, orjson.loads(msg.raw)) == row


def test_common_columns_are_not_null() -> None:
    stream, messages = STREAMS[0]
    batch = build_batch(stream, messages)
    for field in COMMON_FIELDS:
        if not field.nullable:
            assert batch.column(field.name).null_count == 0
    assert pa.types.is_int64(batch.schema.field("recv_ns").type)
