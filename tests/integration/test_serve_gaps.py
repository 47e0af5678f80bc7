"""`ticktape serve` turns recorded disconnects into client disconnects; reconnects resume.

The archive: BTCUSDT aggTrades every 10 ms and bookTickers in between. The recorder's
aggTrade connection dropped after trade 79 (its idle watchdog fired: no close frame) and came
back at trade 100; later the recorder itself was down (trades and tickers missing). Clients
are unmodified reconnect loops: the `websockets` idiom from its documentation and
python-binance's ReconnectingWebsocket.
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

from recorder import Recorder
from replay import Archive, Replayer
from replay._archive_source import ArchiveSource
from replay._serve_session import GapMode
from replay.sim.faults import parse_faults
from replay.wire.routing import RoutingMode
from replay.wire.server import WireConfig, WireServer
from schemas.message import Gap, GapKind, Message, Source
from schemas.wire import make_envelope
from tests.record_support import config, gap_rows, record_for, sim
from tests.replay_support import MS, T0, agg_trades, book_tickers, write_gaps, write_partition

TIMEOUT = 30
STEP = 10 * MS
AGG, BOOK = "btcusdt@aggTrade", "btcusdt@bookTicker"
DOWN_FROM, DOWN_TO = 150, 160
"""The recorder was not running between trade 149 and trade 160."""
ETH = "ethusdt@aggTrade"
E0 = T0 + 3_000 * MS
"""ETHUSDT trades: 10 from here, then Binance closed the connection (1001) for 4 s."""
ETH_DOWN, ETH_BACK = E0 + 130 * MS, E0 + 4_000 * MS


def _at(i: int) -> int:
    return T0 + i * STEP


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-gaps") / "archive"
    trades = agg_trades("BTCUSDT", T0, 200, STEP)
    kept = [m for i, m in enumerate(trades) if not 80 <= i < 100 and not
            DOWN_FROM <= i < DOWN_TO]
    books = [m for m in book_tickers("BTCUSDT", T0 + 5 * MS, 200, STEP, conn_id=2)
             if not _at(DOWN_FROM - 1) < m.recv_ns < _at(DOWN_TO)]
    # The recorder backfilled trades 80-99 over REST after the drop (REST rows: no e/E/s).
    backfill = [Message(AGG, _at(100) + 1, orjson.dumps(
        {k: v for k, v in orjson.loads(m.raw).items() if k not in ("e", "E", "s")}).decode(),
        0, n, Source.REST) for n, m in enumerate(trades[80:100], 1)]
    write_partition(root, AGG, sorted(kept + backfill, key=lambda m: m.recv_ns))
    write_partition(root, BOOK, books)
    eth = agg_trades("ETHUSDT", E0, 10, STEP, conn_id=3)
    # Trades keep coming after those the client waits for (its read loop wakes up on them
    # when the test closes it, instead of waiting out python-binance's 10 s read timeout).
    eth += agg_trades("ETHUSDT", ETH_BACK, 300, STEP, conn_id=4, first_id=11)
    write_partition(root, ETH, eth)
    write_gaps(root, [
        Gap(AGG, _at(79), _at(100), GapKind.DISCONNECT,
            "c1: no frame for 10 s (idle watchdog)"),
        Gap(AGG, _at(120), _at(121), GapKind.SEQUENCE, "aggTrade ids missing: data, not a drop"),
        Gap("*", _at(DOWN_FROM - 1), _at(DOWN_TO), GapKind.RECORDER_DOWN,
            "recorder was not running"),
        Gap(ETH, ETH_DOWN, ETH_BACK, GapKind.DISCONNECT,
            "c3: server closed the connection (code 1001)"),
    ])
    return root


def _recorded(archive_dir: Path, *streams: str) -> list[Message]:
    """What the recorder received on its websockets (not the REST backfill)."""
    return [e for e in Replayer(archive_dir, streams=list(streams), speed=0).events()
            if isinstance(e, Message) and e.source is Source.WS]


@pytest.fixture
async def server(archive_dir: Path) -> AsyncIterator[WireServer]:
    source = ArchiveSource(Archive(archive_dir), speed=0)
    async with WireServer(source, WireConfig(routing=RoutingMode.OPEN)) as srv:
        yield srv


async def _read_with_reconnects(url: str, n: int) -> tuple[list[str], list[int]]:
    """Binance-example client with websockets' documented reconnect loop; n frames + close codes."""
    got: list[str] = []
    closes: list[int] = []
    async with asyncio.timeout(TIMEOUT):
        async for ws in websockets.connect(url, max_queue=None):
            try:
                async for frame in ws:
                    assert isinstance(frame, str)
                    got.append(frame)
                    if len(got) == n:
                        break
                else:  # closed cleanly (1000/1001): iteration just ends; reconnect
                    closes.append(ws.close_code or 1005)
                    continue
                break
            except websockets.ConnectionClosed as exc:
                closes.append(exc.rcvd.code if exc.rcvd is not None else 1006)
                continue
    return got, closes


async def test_disconnect_gap_closes_and_reconnect_resumes_after_it(
        server: WireServer, archive_dir: Path) -> None:
    expected = [m.raw for m in _recorded(archive_dir, AGG)]
    got, closes = await _read_with_reconnects(f"{server.ws_url}/ws/{AGG}", len(expected))
    assert got == expected  # nothing repeated, nothing skipped
    # Watchdog drop: no close frame (1006); recorder downtime: 1001 "going away".
    assert closes == [1006, 1001]
    ids = [orjson.loads(f)["a"] for f in got]
    assert ids[79:81] == [80, 101]  # first connection ended at the gap


async def test_backfilled_trades_come_from_rest_not_the_websocket(server: WireServer) -> None:
    frames: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        async with websockets.connect(f"{server.ws_url}/ws/{AGG}", max_queue=None) as ws:
            with pytest.raises(websockets.ConnectionClosedError):
                async for frame in ws:  # until the recorded drop
                    frames.append(str(frame))
        async with aiohttp.ClientSession() as http, http.get(
                f"{server.rest_url}/fapi/v1/time") as resp:
            # Between the drop and the reconnection the REST clock is the parked session's.
            assert (await resp.json())["serverTime"] == _at(79) // MS
        async with websockets.connect(f"{server.ws_url}/ws/{AGG}", max_queue=None) as ws:
            frames.append(str(await ws.recv()))  # resumed: the session clock is past the gap
            async with aiohttp.ClientSession() as http, http.get(
                    f"{server.rest_url}/fapi/v1/aggTrades",
                    params={"symbol": "BTCUSDT", "fromId": "81", "limit": "20"}) as resp:
                rows = await resp.json()
    assert [orjson.loads(f)["a"] for f in frames[-2:]] == [80, 101]
    assert [r["a"] for r in rows] == list(range(81, 101))  # what a live client backfills


async def test_other_streams_of_the_session_skip_the_outage(
        server: WireServer, archive_dir: Path) -> None:
    recorded = _recorded(archive_dir, AGG, BOOK)
    gap_start, gap_end = _at(79), _at(100)
    # A live client's single connection misses the tickers during the outage too.
    expected = [make_envelope(m.stream, m.raw) for m in recorded
                if not gap_start < m.recv_ns < gap_end]
    url = f"{server.ws_url}/stream?streams={AGG}/{BOOK}"
    got, closes = await _read_with_reconnects(url, len(expected))
    assert got == expected
    assert closes == [1006, 1001]
    assert len(expected) < len(recorded)


async def test_tickers_alone_see_only_the_recorder_downtime(
        server: WireServer, archive_dir: Path) -> None:
    expected = [m.raw for m in _recorded(archive_dir, BOOK)]
    got, closes = await _read_with_reconnects(f"{server.ws_url}/ws/{BOOK}", len(expected))
    assert got == expected
    assert closes == [1001]  # the aggTrade connection's drop is not this stream's


async def test_gaps_ignore_keeps_the_connection(archive_dir: Path) -> None:
    source = ArchiveSource(Archive(archive_dir), speed=0, gaps=GapMode.IGNORE)
    expected = [m.raw for m in _recorded(archive_dir, AGG)]
    async with WireServer(source, WireConfig(routing=RoutingMode.OPEN)) as srv:
        got, closes = await _read_with_reconnects(f"{srv.ws_url}/ws/{AGG}", len(expected))
    assert got == expected and closes == []


async def test_paced_reconnect_waits_out_the_recorded_outage(archive_dir: Path) -> None:
    # Speed 0.5: the 210 ms outage lasts ~0.4 s; the client reconnects at once, inside it,
    # so the replay resumes at the first trade after it, on schedule. Only order is asserted.
    source = ArchiveSource(Archive(archive_dir), start=_at(70), speed=0.5)
    expected = [m.raw for m in _recorded(archive_dir, AGG) if _at(70) <= m.recv_ns < _at(110)]
    async with WireServer(source, WireConfig(routing=RoutingMode.OPEN)) as srv:
        got, closes = await _read_with_reconnects(f"{srv.ws_url}/ws/{AGG}", len(expected))
    assert got == expected and closes == [1006]


async def test_python_binance_reconnects_through_the_gap(archive_dir: Path) -> None:
    # Speed 1 from just before ETHUSDT's recorded 1001 close: python-binance waits 1-2 s
    # before reconnecting, inside the 3.9 s outage, so its reconnection resumes at the first
    # trade after it. (At speed 0 python-binance itself stalls: frames and the close frame
    # arrive at once and its read loop waits for CLOSED before reading what is queued.)
    source = ArchiveSource(Archive(archive_dir), start=E0, speed=1)
    recorded = _recorded(archive_dir, ETH)[:20]
    got: list[dict[str, object]] = []
    errors: list[str] = []
    async with WireServer(source, WireConfig(routing=RoutingMode.OPEN)) as srv:
        client = AsyncClient()  # create() would ping the spot API first: not served
        client.FUTURES_URL = f"{srv.rest_url}/fapi"
        try:
            manager = BinanceSocketManager(client)
            manager.FSTREAM_URL = f"{srv.ws_url}/"
            socket = manager.futures_multiplex_socket([ETH], category="market")
            async with socket as stream, asyncio.timeout(TIMEOUT):
                while len(got) < len(recorded):
                    msg = await stream.recv()
                    if msg.get("e") == "error":  # python-binance reports the close
                        errors.append(str(msg.get("type")))
                        continue
                    got.append(msg)
        finally:
            await client.close_connection()
    assert got == [{"stream": m.stream, "data": m.data} for m in recorded]
    assert errors  # the library saw the disconnect and recovered on its own


async def test_drops_recorded_from_the_sim_replay_as_drops(tmp_path: Path) -> None:
    # The recorder records the sim, which drops the /market connection (aggTrade: no close
    # frame) and later closes the /public one with 1001 (bookTicker). Served back, a client
    # of both streams sees the same two disconnects and, reconnecting, every recorded frame
    # outside the two outages, once, in archive order.
    archive = tmp_path / "archive"
    faults = parse_faults("drop:at=0.8,conn=1;close:at=1.6,code=1001,conn=2")
    async with sim(faults=faults, rate=100.0) as exchange:
        await record_for(Recorder(config(exchange, archive, [AGG, BOOK])), 2.5)
    drops = sorted((g for g in gap_rows(archive) if g.kind is GapKind.DISCONNECT),
                   key=lambda g: g.start_ns)
    assert [g.stream for g in drops] == [AGG, BOOK]
    assert drops[0].end_ns < drops[1].start_ns
    rows = _recorded(archive, AGG, BOOK)
    expected = [make_envelope(m.stream, m.raw) for m in rows
                if not any(g.start_ns < m.recv_ns < g.end_ns for g in drops)]
    source = ArchiveSource(Archive(archive), speed=0)
    async with WireServer(source, WireConfig(routing=RoutingMode.OPEN)) as srv:
        got, closes = await _read_with_reconnects(f"{srv.ws_url}/stream?streams={AGG}/{BOOK}",
                                                  len(expected))
    assert got == expected
    assert closes == [1006, 1001]


@pytest.mark.parametrize("mode", ["disconnect", "ignore"])
async def test_serve_command_gaps_option(archive_dir: Path, mode: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticktape", "serve", "--archive", str(archive_dir), "--port", "0",
        "--speed", "0", "--gaps", mode, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(TIMEOUT):
            banner = (await proc.stderr.readline()).decode()
        ws_url = banner.split(" on ")[1].split()[0]
        expected = [m.raw for m in _recorded(archive_dir, AGG)]
        got, closes = await _read_with_reconnects(f"{ws_url}/ws/{AGG}", len(expected))
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(TIMEOUT):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert got == expected
    assert closes == ([1006, 1001] if mode == "disconnect" else [])
