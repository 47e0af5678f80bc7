"""ArchiveSource without sockets: per-session frames, subscription changes, REST answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from replay import Archive
from replay._archive_source import ArchiveSource
from replay.wire.source import Route, Session
from schemas.message import Message, Source
from tests.replay_support import MS, T0, agg_trades, book_tickers, write_partition


def _archive(root: Path) -> list[str]:
    write_partition(root, "btcusdt@aggTrade", agg_trades("BTCUSDT", T0, 100, 2 * MS))
    books = book_tickers("BTCUSDT", T0 + MS, 100, 2 * MS)
    write_partition(root, "btcusdt@bookTicker", books)
    body = orjson.dumps({"lastUpdateId": 7, "E": 1, "T": 1, "bids": [["1", "2"]] * 30,
                         "asks": [["3", "4"]] * 30}).decode()
    write_partition(root, "btcusdt@depthSnapshot",
                    [Message("btcusdt@depthSnapshot", T0 + 50 * MS, body, 0, 0, Source.REST)])
    return [m.raw for m in books]


async def test_subscription_change_resumes_at_the_session_clock(tmp_path: Path) -> None:
    books_raw = _archive(tmp_path)
    source = ArchiveSource(Archive(tmp_path), speed=0)
    assert source.servable == {"btcusdt@aggTrade", "btcusdt@bookTicker"}
    session = Session(1, Route.UNROUTED, streams=frozenset({"btcusdt@aggTrade"}))
    frames: list[tuple[str, str]] = []
    before_change = 0
    items = source.open_session(session)
    try:
        async with asyncio.timeout(10):
            async for item in items:
                assert isinstance(item, list)
                frames.extend(item)
                if len(session.streams) == 1:
                    # Speed 0: the clock is at the last trade of the first batch.
                    before_change = len(frames)
                    session.streams = frozenset({"btcusdt@aggTrade", "btcusdt@bookTicker"})
                    session.version += 1
                elif frames[-1] == ("btcusdt@bookTicker", books_raw[-1]):
                    break  # the last recorded ticker
    finally:
        await items.aclose()
    trades = [orjson.loads(p)["a"] for s, p in frames if s == "btcusdt@aggTrade"]
    assert trades == list(range(1, 101))  # no trade lost or repeated
    assert 0 < before_change < 100
    assert all(s == "btcusdt@aggTrade" for s, _ in frames[:before_change])
    last_trade_ms = orjson.loads(frames[before_change - 1][1])["E"]
    books = [orjson.loads(p) for s, p in frames if s == "btcusdt@bookTicker"]
    # Joined at the session clock: earlier tickers are not replayed, later ones are.
    assert books and all(b["E"] >= last_trade_ms for b in books)
    assert source._sessions == []  # the session's clock is released on close


async def test_rest_snapshot_and_symbols(tmp_path: Path) -> None:
    _archive(tmp_path)
    source = ArchiveSource(Archive(tmp_path), speed=0)
    snap = await source.depth_snapshot("BTCUSDT", 5)
    assert snap is not None and snap["lastUpdateId"] == 7 and len(snap["bids"]) == 5
    assert await source.depth_snapshot("ETHUSDT", 5) is None
    assert await source.depth_snapshot("bad symbol!", 5) is None
    symbols = await source.exchange_symbols()
    assert [s["symbol"] for s in symbols] == ["BTCUSDT"]
    assert {f["filterType"] for f in symbols[0]["filters"]} >= {"PRICE_FILTER", "LOT_SIZE"}
    assert source.server_time_ms() == T0 // 1_000_000
    assert not source.listen_key_known("abcdefgh") and await source.create_listen_key("k") is None
