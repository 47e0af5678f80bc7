"""`ticktape serve`: Binance clients read a recorded archive over websocket + REST.

The archive holds a real capture slice (bookTicker, depth@0ms and a REST snapshot from
tests/data) plus a synthetic aggTrade stream. Clients: plain `websockets` scripts written like
Binance's examples, and python-binance's AsyncClient/BinanceSocketManager.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import websockets
from binance import AsyncClient
from binance.ws.streams import BinanceSocketManager

from replay import Archive, Replayer
from replay._archive_source import ArchiveSource
from replay.wire.routing import RoutingMode
from replay.wire.server import WireConfig, WireServer
from schemas.message import Message
from schemas.wire import make_envelope
from tests.replay_support import MS, agg_trades, load_capture, write_partition

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURE = DATA / "book_btcusdt_20240808_head6000_depth_bookticker.txt.gz"
TIMEOUT = 20
# Clients below pass max_queue=None: they stop reading before the recorded data ends, and
# websockets' bounded receive queue would otherwise leave the server's close frame unread
# behind it (close() then waits its full close_timeout).


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve") / "archive"
    msgs = load_capture(CAPTURE)
    by_stream: dict[str, list[Message]] = {}
    for m in msgs:
        by_stream.setdefault(m.stream, []).append(m)
    for stream, rows in by_stream.items():
        half = len(rows) // 2 or 1
        write_partition(root, stream, rows[:half])
        if rows[half:]:
            write_partition(root, stream, rows[half:])
    write_partition(root, "btcusdt@aggTrade",
                    agg_trades("BTCUSDT", msgs[0].recv_ns + 7, 200, 5 * MS, conn_id=3))
    return root


def _recorded(archive_dir: Path, *streams: str) -> list[Message]:
    return [e for e in Replayer(archive_dir, streams=list(streams), speed=0).events()
            if isinstance(e, Message)]


@pytest.fixture
async def server(archive_dir: Path) -> AsyncIterator[WireServer]:
    source = ArchiveSource(Archive(archive_dir), speed=0)
    async with WireServer(source, WireConfig(routing=RoutingMode.OPEN)) as srv:
        yield srv


async def _recv_n(ws: websockets.ClientConnection, n: int) -> list[str]:
    out = []
    async with asyncio.timeout(TIMEOUT):
        while len(out) < n:
            frame = await ws.recv()
            assert isinstance(frame, str)
            out.append(frame)
    return out


async def test_raw_ws_path_gets_recorded_payloads_byte_identical(
        server: WireServer, archive_dir: Path) -> None:
    expected = [m.raw for m in _recorded(archive_dir, "btcusdt@aggTrade")]
    # As in Binance's examples: wss://fstream.binance.com/ws/btcusdt@aggTrade
    async with websockets.connect(f"{server.ws_url}/ws/btcusdt@aggTrade", max_queue=None) as ws:
        got = await _recv_n(ws, len(expected))
    assert got == expected


async def test_combined_stream_envelopes_in_archive_order(
        server: WireServer, archive_dir: Path) -> None:
    recorded = _recorded(archive_dir, "btcusdt@bookTicker", "btcusdt@depth@0ms")
    expected = [make_envelope(m.stream, m.raw) for m in recorded[:800]]
    url = f"{server.ws_url}/stream?streams=btcusdt@bookTicker/btcusdt@depth@0ms"
    async with websockets.connect(url, max_size=1 << 22, max_queue=None) as ws:
        got = await _recv_n(ws, len(expected))
    assert got == expected
    assert any('"stream":"btcusdt@depth@0ms"' in g for g in got)


async def test_subscribe_list_and_market_route(server: WireServer, archive_dir: Path) -> None:
    expected = [m.raw for m in _recorded(archive_dir, "btcusdt@aggTrade")]
    async with websockets.connect(f"{server.ws_url}/market/ws", max_queue=None) as ws:
        await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}')
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":3}')
        frames = await _recv_n(ws, len(expected) + 2)
    replies = [f for f in frames if '"id":' in f and '"result"' in f]
    assert orjson.loads(replies[0]) == {"result": None, "id": 1}
    assert orjson.loads(replies[1]) == {"result": ["btcusdt@aggTrade"], "id": 3}
    assert [f for f in frames if f not in replies] == expected


async def test_rest_depth_time_and_exchange_info(server: WireServer, archive_dir: Path) -> None:
    snapshot = _recorded(archive_dir, "btcusdt@depthSnapshot")[0]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.rest_url}/fapi/v1/depth",
                            params={"symbol": "BTCUSDT", "limit": "5"}) as resp:
            assert resp.status == 200
            depth = await resp.json()
        async with http.get(f"{server.rest_url}/fapi/v1/depth",
                            params={"symbol": "ETHUSDT", "limit": "5"}) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == -1121
        async with http.get(f"{server.rest_url}/fapi/v1/time") as resp:
            server_time = (await resp.json())["serverTime"]
        async with http.get(f"{server.rest_url}/fapi/v1/exchangeInfo") as resp:
            info = await resp.json()
    recorded = snapshot.data
    assert depth["lastUpdateId"] == recorded["lastUpdateId"]
    assert depth["bids"] == recorded["bids"][:5] and depth["asks"] == recorded["asks"][:5]
    first = min(r[0] for r in Archive(archive_dir).time_ranges().values())
    assert server_time == first // 1_000_000  # no session yet, speed 0: the clock is at start
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]


async def test_paced_session_keeps_order(archive_dir: Path) -> None:
    # Speed 50: ~0.5 s for the first 25 s of the recording; only order is asserted.
    source = ArchiveSource(Archive(archive_dir), speed=50)
    expected = [m.raw for m in _recorded(archive_dir, "btcusdt@aggTrade")][:100]
    async with WireServer(source, WireConfig(routing=RoutingMode.OPEN)) as srv:
        url = f"{srv.ws_url}/ws/btcusdt@aggTrade"
        async with websockets.connect(url, max_queue=None) as ws, aiohttp.ClientSession() as http:
            got = await _recv_n(ws, len(expected))
            async with http.get(f"{srv.rest_url}/fapi/v1/time") as resp:
                clock_ms = (await resp.json())["serverTime"]
    assert got == expected
    last = orjson.loads(expected[-1])["E"]
    assert clock_ms >= last  # REST time follows the session's replay clock


async def test_python_binance_client(server: WireServer, archive_dir: Path) -> None:
    client = AsyncClient()  # create() would ping the spot API first: not served
    client.FUTURES_URL = f"{server.rest_url}/fapi"
    try:
        book = await client.futures_order_book(symbol="BTCUSDT", limit=10)
        server_time = await client.futures_time()
        info = await client.futures_exchange_info()
        manager = BinanceSocketManager(client)
        manager.FSTREAM_URL = f"{server.ws_url}/"
        recorded = _recorded(archive_dir, "btcusdt@bookTicker", "btcusdt@depth@0ms")[:50]
        socket = manager.futures_multiplex_socket(
            ["btcusdt@bookTicker", "btcusdt@depth@0ms"], category="public")
        got = []
        async with socket as stream, asyncio.timeout(TIMEOUT):
            while len(got) < len(recorded):
                got.append(await stream.recv())
    finally:
        await client.close_connection()
    snapshot = _recorded(archive_dir, "btcusdt@depthSnapshot")[0].data
    assert book["lastUpdateId"] == snapshot["lastUpdateId"] and len(book["bids"]) == 10
    assert server_time["serverTime"] > 0
    assert info["symbols"][0]["symbol"] == "BTCUSDT"
    assert got == [{"stream": m.stream, "data": m.data} for m in recorded]


async def test_strict_routes_filter_streams_by_route(archive_dir: Path) -> None:
    source = ArchiveSource(Archive(archive_dir), speed=0)
    async with WireServer(source, WireConfig(routing=RoutingMode.STRICT)) as srv:
        # Today's Binance: aggTrade is a /market stream, silent on an unrouted socket.
        url = f"{srv.ws_url}/ws/btcusdt@aggTrade/btcusdt@bookTicker"
        async with websockets.connect(url, max_queue=None) as ws:
            got = await _recv_n(ws, 300)
    assert all('"e":"bookTicker"' in g for g in got)


async def test_serve_command_runs_until_interrupted(archive_dir: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticktape", "serve", "--archive", str(archive_dir), "--port", "0",
        "--speed", "0", stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(TIMEOUT):
            banner = (await proc.stderr.readline()).decode()
        ws_url = banner.split(" on ")[1].split()[0]
        assert ws_url.startswith("ws://127.0.0.1:")
        expected = [m.raw for m in _recorded(archive_dir, "btcusdt@aggTrade")][:10]
        async with websockets.connect(f"{ws_url}/ws/btcusdt@aggTrade", max_queue=None) as ws:
            assert await _recv_n(ws, 10) == expected
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(TIMEOUT):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_rest_agg_trades_up_to_the_replay_clock(server: WireServer) -> None:
    async with websockets.connect(f"{server.ws_url}/ws/btcusdt@aggTrade", max_queue=None) as ws, \
            aiohttp.ClientSession() as http:
        await _recv_n(ws, 150)  # speed 0: the session's clock is at the 150th trade
        async with http.get(f"{server.rest_url}/fapi/v1/aggTrades",
                            params={"symbol": "BTCUSDT", "fromId": "5", "limit": "3"}) as resp:
            rows = await resp.json()
        async with http.get(f"{server.rest_url}/fapi/v1/aggTrades",
                            params={"symbol": "BTCUSDT", "limit": "2"}) as resp:
            latest = await resp.json()
    assert [r["a"] for r in rows] == [5, 6, 7]
    assert set(rows[0]) == {"a", "p", "q", "f", "l", "T", "m"}  # REST rows carry no e/E/s
    assert latest[-1]["a"] >= 150 and latest[0]["a"] == latest[-1]["a"] - 1
