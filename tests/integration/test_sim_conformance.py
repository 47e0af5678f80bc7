"""Sim conformance over real sockets: id contiguity, pu chain, snapshot/diff book sync."""

from __future__ import annotations

import itertools
import json
from typing import Any

import websockets

from tests.sim_support import collect, recv_json, rest_get, running_sim


async def test_agg_trade_ids_contiguous_per_symbol() -> None:
    async with running_sim() as sim, websockets.connect(
            sim.ws_url + "/market/ws/btcusdt@aggTrade/ethusdt@aggTrade") as ws:
        frames = await collect(ws, 60)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        ids = [f["a"] for f in frames if f["s"] == symbol]
        assert len(ids) > 5
        assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_diff_depth_pu_chain_in_combined_mode() -> None:
    async with running_sim() as sim, websockets.connect(
            sim.ws_url + "/public/stream?streams=btcusdt@depth@100ms/ethusdt@depth") as ws:
        frames = await collect(ws, 18)
    for name in ("btcusdt@depth@100ms", "ethusdt@depth"):
        events = [f["data"] for f in frames if f["stream"] == name]
        assert len(events) > 3
        for prev, cur in itertools.pairwise(events):
            assert cur["pu"] == prev["u"] and cur["U"] > prev["u"]


def _apply(book: dict[str, dict[str, str]], event: dict[str, Any]) -> None:
    for side, key in (("bids", "b"), ("asks", "a")):
        for price, qty in event[key]:
            if float(qty) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = qty


def _top(book: dict[str, dict[str, str]], n: int) -> tuple[list[list[str]], list[list[str]]]:
    bids = sorted(book["bids"].items(), key=lambda kv: -float(kv[0]))[:n]
    asks = sorted(book["asks"].items(), key=lambda kv: float(kv[0]))[:n]
    return [list(b) for b in bids], [list(a) for a in asks]


def _book(snapshot: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {"bids": dict(map(tuple, snapshot["bids"])),
            "asks": dict(map(tuple, snapshot["asks"]))}


async def test_local_book_sync_matches_partials_and_book_ticker() -> None:
    """BINANCE.md section 4 step by step; then check depth20 and bookTicker against it."""
    streams = "btcusdt@depth@100ms/btcusdt@depth20@100ms/btcusdt@bookTicker"
    async with running_sim() as sim, websockets.connect(
            f"{sim.ws_url}/public/stream?streams={streams}") as ws:
        buffered = await collect(ws, 5)  # step 1: buffer events
        status, snap, _ = await rest_get(sim, "/fapi/v1/depth", symbol="BTCUSDT", limit=1000)
        assert status == 200
        book, last_u = _book(snap), None
        partials = tickers = 0
        pending = buffered
        ticker: dict[str, Any] = {}
        for _ in range(20_000):
            if partials >= 8 and tickers >= 3:
                break
            if not pending:
                pending = [await recv_json(ws)]
            frame = pending.pop(0)
            event = frame["data"]
            if frame["stream"] == "btcusdt@depth@100ms":
                if event["u"] < snap["lastUpdateId"]:
                    continue  # step 3
                if last_u is None:
                    assert event["U"] <= snap["lastUpdateId"] <= event["u"]  # step 4
                else:
                    assert event["pu"] == last_u  # step 5
                _apply(book, event)
                last_u = event["u"]
                if ticker.get("u") == last_u:  # the bookTicker of this very update id
                    (bid,), (ask,) = _top(book, 1)
                    assert [ticker["b"], ticker["B"], ticker["a"], ticker["A"]] == bid + ask
                    tickers += 1
            elif frame["stream"] == "btcusdt@bookTicker":
                ticker = event
            elif last_u is not None:
                assert event["u"] == last_u
                assert (event["b"], event["a"]) == _top(book, 20)
                partials += 1
        assert partials >= 8 and tickers >= 3


async def test_real_time_depth_reproduces_a_later_snapshot_exactly() -> None:
    async with running_sim() as sim, websockets.connect(
            sim.ws_url + "/public/ws/btcusdt@depth@0ms") as ws:
        first = await recv_json(ws)
        _, snap, _ = await rest_get(sim, "/fapi/v1/depth", symbol="BTCUSDT", limit=1000)
        book = _book(snap)
        event = first
        while event["u"] <= snap["lastUpdateId"]:
            event = await recv_json(ws)
        _apply(book, event)
        _, later, _ = await rest_get(sim, "/fapi/v1/depth", symbol="BTCUSDT", limit=1000)
        while event["u"] < later["lastUpdateId"]:
            event = await recv_json(ws)
            _apply(book, event)
        assert event["u"] == later["lastUpdateId"]
        assert _top(book, 1000) == (later["bids"], later["asks"])


async def test_snapshot_limits_and_weights() -> None:
    async with running_sim() as sim:
        used = []
        for limit in (5, 100, 500, 1000):
            status, body, headers = await rest_get(sim, "/fapi/v1/depth", symbol="ETHUSDT",
                                                   limit=limit)
            assert status == 200
            assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
            assert len(body["bids"]) == min(limit, len(body["bids"])) <= limit
            used.append(int(headers["X-MBX-USED-WEIGHT-1M"]))
        assert [b - a for a, b in itertools.pairwise(used)] == [5, 10, 20]
        assert json.dumps(body["bids"][0])  # [["price","qty"]] strings
        assert all(isinstance(x, str) for x in body["bids"][0])
