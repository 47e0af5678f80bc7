"""The synthetic market, without sockets: ids, chains, book consistency, payload shapes."""

from __future__ import annotations

import functools
import itertools
import json
from collections import defaultdict
from typing import Any

import pytest

from replay.sim.config import SimConfig
from replay.sim.market import Market
from replay.sim.stats import interval_bounds
from schemas.streams import parse_stream

START_MS = 1_771_263_510_000
ALL_BTC = frozenset({
    "btcusdt@aggTrade", "btcusdt@trade", "btcusdt@bookTicker", "btcusdt@depth@0ms",
    "btcusdt@depth", "btcusdt@depth@100ms", "btcusdt@depth@500ms", "btcusdt@rpiDepth@500ms",
    "btcusdt@depth20@100ms", "btcusdt@depth5", "btcusdt@markPrice", "btcusdt@markPrice@1s",
    "!markPrice@arr", "btcusdt@kline_1m", "btcusdt_perpetual@continuousKline_1s",
    "btcusdt@miniTicker", "btcusdt@ticker", "!ticker@arr", "!miniTicker@arr", "!bookTicker",
    "btcusdt@forceOrder", "!forceOrder@arr", "btcusdt@compositeIndex", "!contractInfo",
    "btcusdt@assetIndex", "!assetIndex@arr",
})


@functools.cache
def run(seed: int = 5, ticks: int = 400, wanted: frozenset[str] | None = None
        ) -> tuple[Market, list[tuple[int, str, str]]]:
    """Frames of a fresh market (cached: tests only read the result)."""
    config = SimConfig(seed=seed, rate=3000, cadence_scale=0.05)
    market = Market(config, START_MS)
    frames = []
    for _ in range(ticks):
        frames.extend((market.tick, n, p) for n, p in market.step(wanted or ALL_BTC))
    return market, frames


def by_stream(frames: list[tuple[int, str, str]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for _, name, payload in frames:
        out[name].append(json.loads(payload))
    return out


def test_same_seed_same_market_other_seed_differs() -> None:
    _, a = run.__wrapped__(seed=5, ticks=150)
    _, b = run.__wrapped__(seed=5, ticks=150)
    _, c = run.__wrapped__(seed=6, ticks=150)
    assert a == b
    assert a != c


def test_rendering_choice_does_not_change_the_market() -> None:
    full, _ = run(ticks=200)
    narrow, frames = run(ticks=200, wanted=frozenset({"btcusdt@aggTrade"}))
    assert {n for _, n, _ in frames} == {"btcusdt@aggTrade"}
    assert full.symbols["BTCUSDT"].snapshot(1000, 0) == narrow.symbols["BTCUSDT"].snapshot(1000, 0)


def test_every_wanted_stream_is_produced_and_parses() -> None:
    _, frames = run(ticks=400)
    streams = by_stream(frames)
    assert set(streams) == ALL_BTC
    for name in streams:
        parse_stream(name)


def test_agg_trade_ids_contiguous_and_trade_ids_rise_by_one() -> None:
    _, frames = run()
    streams = by_stream(frames)
    aggs = streams["btcusdt@aggTrade"]
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
    trades = streams["btcusdt@trade"]
    assert [t["t"] for t in trades] == list(range(trades[0]["t"], trades[0]["t"] + len(trades)))
    fills = {t["t"] for t in trades if t["X"] == "MARKET"}
    for agg in aggs:
        assert set(range(agg["f"], agg["l"] + 1)) <= fills


@pytest.mark.parametrize("name", ["btcusdt@depth", "btcusdt@depth@100ms", "btcusdt@depth@0ms",
                                  "btcusdt@depth@500ms", "btcusdt@depth20@100ms"])
def test_pu_chain(name: str) -> None:
    _, frames = run()
    events = by_stream(frames)[name]
    assert len(events) > 5
    for prev, cur in itertools.pairwise(events):
        assert cur["pu"] == prev["u"]
        assert prev["u"] < cur["U"] <= cur["u"]


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


def test_snapshot_plus_diffs_equals_book_and_partials_and_book_ticker() -> None:
    market = Market(SimConfig(seed=9, rate=3000), START_MS)
    sym = market.symbols["BTCUSDT"]
    for _ in range(37):
        market.step(set())
    snap = sym.snapshot(1000, 0)
    wanted = {"btcusdt@depth@100ms", "btcusdt@depth20@100ms", "btcusdt@bookTicker",
              "btcusdt@depth@0ms"}
    frames = []
    while market.tick < 330 or market.tick % 10:  # end on a tick that closes a 100 ms window
        frames.extend(market.step(wanted))
    book = {"bids": dict(map(tuple, snap["bids"])), "asks": dict(map(tuple, snap["asks"]))}
    last_u = None
    checked_partials = 0
    for name, payload in frames:
        event = json.loads(payload)
        if name == "btcusdt@depth@100ms":
            if event["u"] < snap["lastUpdateId"]:
                continue  # BINANCE.md 4.3: drop events older than the snapshot
            if last_u is None:
                assert event["U"] <= snap["lastUpdateId"] <= event["u"]  # rule 4.4
            else:
                assert event["pu"] == last_u  # rule 4.5
            _apply(book, event)
            last_u = event["u"]
        elif name == "btcusdt@depth20@100ms" and last_u is not None:
            assert event["u"] == last_u
            assert (event["b"], event["a"]) == _top(book, 20)
            checked_partials += 1
    assert checked_partials > 10
    assert last_u == sym.book.last_update_id
    final = sym.snapshot(1000, 0)
    assert _top(book, 1000) == (final["bids"], final["asks"])


def test_book_ticker_u_matches_the_real_time_depth_update() -> None:
    market = Market(SimConfig(seed=4, rate=3000), START_MS)
    sym = market.symbols["BTCUSDT"]
    snap = sym.snapshot(1000, 0)
    book = {"bids": dict(map(tuple, snap["bids"])), "asks": dict(map(tuple, snap["asks"]))}
    checked = 0
    for _ in range(200):
        for name, payload in market.step({"btcusdt@depth@0ms", "btcusdt@bookTicker"}):
            event = json.loads(payload)
            if name == "btcusdt@depth@0ms":
                _apply(book, event)
                applied_u = event["u"]
            else:
                assert event["u"] == applied_u
                (bid,), (ask,) = _top(book, 1)
                assert [event["b"], event["B"]] == bid and [event["a"], event["A"]] == ask
                checked += 1
    assert checked > 50


EXAMPLE_KEYS = {
    # Key order of the live captures quoted in BINANCE.md section 3.
    "btcusdt@aggTrade": ["e", "E", "a", "s", "p", "q", "nq", "f", "l", "T", "m", "st"],
    "btcusdt@trade": ["e", "E", "T", "s", "t", "p", "q", "X", "m", "st"],
    "btcusdt@markPrice": ["e", "E", "s", "p", "ap", "P", "i", "r", "T", "st"],
    "btcusdt@bookTicker": ["e", "u", "s", "b", "B", "a", "A", "T", "E"],
    "btcusdt@depth": ["e", "E", "T", "s", "U", "u", "pu", "b", "a"],
    "btcusdt@depth5": ["e", "E", "T", "s", "U", "u", "pu", "b", "a"],
    "btcusdt@miniTicker": ["e", "E", "s", "c", "o", "h", "l", "v", "q"],
    "btcusdt@ticker": ["e", "E", "s", "p", "P", "w", "c", "Q", "o", "h", "l", "v", "q", "O",
                       "C", "F", "L", "n"],
    "btcusdt@kline_1m": ["e", "E", "s", "k"],
    "btcusdt_perpetual@continuousKline_1s": ["e", "E", "ps", "ct", "k"],
    "btcusdt@forceOrder": ["e", "E", "o"],
    "btcusdt@compositeIndex": ["e", "E", "s", "p", "C", "c"],
}
KLINE_K = ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]
FORCE_O = ["s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T", "ps", "st"]


def test_payload_key_order_and_types() -> None:
    _, frames = run(ticks=600)
    streams = by_stream(frames)
    for name, keys in EXAMPLE_KEYS.items():
        assert list(streams[name][0]) == keys, name
    assert list(streams["btcusdt@kline_1m"][0]["k"]) == KLINE_K
    assert list(streams["btcusdt_perpetual@continuousKline_1s"][0]["k"]) == [
        k for k in KLINE_K if k != "s"]
    assert list(streams["btcusdt@forceOrder"][0]["o"]) == FORCE_O
    agg = streams["btcusdt@aggTrade"][0]
    assert isinstance(agg["p"], str) and isinstance(agg["a"], int) and isinstance(agg["m"], bool)
    assert isinstance(streams["!markPrice@arr"][0], list)
    assert isinstance(streams["!ticker@arr"][0], list)
    assert isinstance(streams["!forceOrder@arr"][0], dict)  # an object, even @arr
    assert streams["btcusdt_perpetual@continuousKline_1s"][0]["ct"] == "PERPETUAL"


def test_closed_klines_are_sent_once_with_x_true() -> None:
    _, frames = run(ticks=450, wanted=frozenset({"btcusdt_perpetual@continuousKline_1s"}))
    bars = by_stream(frames)["btcusdt_perpetual@continuousKline_1s"]
    closed = [b["k"] for b in bars if b["k"]["x"]]
    assert closed and len({b["t"] for b in closed}) == len(closed)
    assert all(b["T"] - b["t"] == 999 for b in closed)


def test_rest_agg_trades_from_id_inclusive() -> None:
    market, frames = run(ticks=200, wanted=frozenset({"btcusdt@aggTrade"}))
    sent = by_stream(frames)["btcusdt@aggTrade"]
    rows = market.symbols["BTCUSDT"].agg_rows(sent[10]["a"], 5)
    assert [r["a"] for r in rows] == [s["a"] for s in sent[10:15]]
    assert list(rows[0]) == ["a", "p", "q", "nq", "f", "l", "T", "m"]
    assert rows[0]["p"] == sent[10]["p"] and rows[0]["f"] == sent[10]["f"]
    latest = market.symbols["BTCUSDT"].agg_rows(None, 3)
    assert [r["a"] for r in latest] == [s["a"] for s in sent[-3:]]


def test_interval_bounds() -> None:
    assert interval_bounds("1m", 1_638_747_660_500) == (1_638_747_660_000, 1_638_747_719_999)
    monday = 1_763_942_400_000  # 2025-11-24 00:00 UTC, a Monday
    assert interval_bounds("1w", monday + 3 * 86_400_000)[0] == monday
    start, end = interval_bounds("1M", 1_738_368_000_000 + 5)  # 2025-02-01
    assert (start, end - start + 1) == (1_738_368_000_000, 28 * 86_400_000)


def test_kline_values_match_the_agg_trades() -> None:
    market = Market(SimConfig(seed=2, rate=2000), START_MS)
    frames = []
    for _ in range(350):
        frames.extend(market.step({"btcusdt@aggTrade", "btcusdt@kline_1m", "btcusdt@kline_1s"}))
    streams = by_stream([(0, n, p) for n, p in frames])
    for name in ("btcusdt@kline_1m", "btcusdt@kline_1s"):
        for kline in streams[name][-3:]:
            k = kline["k"]
            trades = [a for a in streams["btcusdt@aggTrade"]
                      if k["t"] <= a["T"] <= min(k["T"], kline["E"])]
            assert trades, name
            prices = [float(a["p"]) for a in trades]
            assert float(k["o"]) == prices[0] and float(k["c"]) == prices[-1]
            assert (float(k["h"]), float(k["l"])) == (max(prices), min(prices))
            assert k["v"] == f"{sum(float(a['q']) for a in trades):.3f}"
            assert k["n"] == sum(a["l"] - a["f"] + 1 for a in trades)
            assert (k["f"], k["L"]) == (trades[0]["f"], trades[-1]["l"])
