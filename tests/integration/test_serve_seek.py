"""`ticktape serve`: each client picks its start, end and speed in its URL (Binance ignores these).

Bad values are refused before the websocket upgrade with HTTP 400 and a Binance error body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import websockets

from replay import Archive, Replayer, format_ns
from replay._archive_source import ArchiveSource
from replay.wire.routing import RoutingMode
from replay.wire.server import WireConfig, WireServer
from schemas.message import Message
from schemas.wire import make_envelope
from tests.replay_support import MS, T0, agg_trades, book_tickers, write_partition

TIMEOUT = 20
AGG, BOOK = "btcusdt@aggTrade", "btcusdt@bookTicker"
STEP = 10 * MS


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-seek") / "archive"
    write_partition(root, AGG, agg_trades("BTCUSDT", T0, 300, STEP))
    write_partition(root, BOOK, book_tickers("BTCUSDT", T0 + 5 * MS, 300, STEP, conn_id=2))
    return root


def _recorded(archive_dir: Path, *streams: str) -> list[Message]:
    return [e for e in Replayer(archive_dir, streams=list(streams), speed=0).events()
            if isinstance(e, Message)]


@pytest.fixture
async def server(archive_dir: Path) -> AsyncIterator[WireServer]:
    # Speed 0.001 by default: a client that does not ask for speed=0 would wait 10 s a trade.
    source = ArchiveSource(Archive(archive_dir), speed=0.001)
    async with WireServer(source, WireConfig(routing=RoutingMode.OPEN)) as srv:
        yield srv


async def _recv_n(ws: websockets.ClientConnection, n: int) -> list[str]:
    out: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        while len(out) < n:
            frame = await ws.recv()
            assert isinstance(frame, str)
            out.append(frame)
    return out


async def test_raw_path_start_in_epoch_ns_and_speed(server: WireServer, archive_dir: Path) -> None:
    start = T0 + 150 * STEP
    expected = [m.raw for m in _recorded(archive_dir, AGG) if m.recv_ns >= start]
    url = f"{server.ws_url}/ws/{AGG}?start={start}&speed=0"
    async with websockets.connect(url, max_queue=None) as ws:
        got = await _recv_n(ws, len(expected))
    assert got == expected
    assert orjson.loads(got[0])["a"] == 151


async def test_combined_path_start_iso_with_end(server: WireServer, archive_dir: Path) -> None:
    start, end = T0 + 100 * STEP + 5 * MS, T0 + 120 * STEP
    recorded = _recorded(archive_dir, AGG, BOOK)
    expected = [make_envelope(m.stream, m.raw) for m in recorded if start <= m.recv_ns < end]
    url = (f"{server.ws_url}/stream?streams={AGG}/{BOOK}&start={format_ns(start)}"
           f"&end={format_ns(end)}&speed=0")
    async with websockets.connect(url, max_queue=None) as ws:
        got = await _recv_n(ws, len(expected))
        # Nothing after `end`: the next frame is the reply to this request.
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":7}')
        reply = await _recv_n(ws, 1)
    assert got == expected
    assert got[0] == make_envelope(BOOK, recorded[201].raw)  # ticker 100 (after trade 100)
    assert orjson.loads(reply[0]) == {"result": [AGG, BOOK], "id": 7}


async def test_two_clients_replay_independently(server: WireServer, archive_dir: Path) -> None:
    trades = [m.raw for m in _recorded(archive_dir, AGG)]
    late = f"{server.ws_url}/ws/{AGG}?speed=0&start={T0 + 250 * STEP}"
    early = f"{server.ws_url}/ws/{AGG}?speed=0"
    async with websockets.connect(late, max_queue=None) as a, \
            websockets.connect(early, max_queue=None) as b:
        got_a, got_b = await asyncio.gather(_recv_n(a, 50), _recv_n(b, 50))
    assert got_a == trades[250:] and got_b == trades[:50]


async def test_without_options_the_server_defaults_apply(server: WireServer) -> None:
    # Server speed 0.001: the first trade at once, the second only after ~10 s.
    async with websockets.connect(f"{server.ws_url}/ws/{AGG}", max_queue=None) as ws:
        first = await _recv_n(ws, 1)
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        reply = await _recv_n(ws, 1)
    assert orjson.loads(first[0])["a"] == 1
    assert orjson.loads(reply[0]) == {"result": [AGG], "id": 1}


@pytest.mark.parametrize(("query", "code", "word"), [
    ("start=yesterday", -1100, "'start'"),
    ("start=0&end=2024-02-30T00:00:00Z", -1100, "'end'"),
    ("speed=-2", -1100, "'speed'"),
    ("speed=fast", -1100, "'speed'"),
    (f"start={T0 + 5}&end={T0}", -1128, "end must be after start"),
])
async def test_bad_options_are_refused_before_the_upgrade(
        server: WireServer, query: str, code: int, word: str) -> None:
    url = f"{server.ws_url}/stream?streams={AGG}&{query}"
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 400
    async with aiohttp.ClientSession() as http, http.get(
            url.replace("ws://", "http://")) as resp:
        body = await resp.json()
    assert resp.status == 400 and body["code"] == code and word in body["msg"]
    assert set(body) == {"code", "msg"}
