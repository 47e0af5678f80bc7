"""The send log is an exact record of what each connection received."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import websockets

from replay.sim.config import SimConfig
from replay.sim.exchange import SimExchange
from replay.wire.sendlog import SentKind
from replay.wire.server import WireConfig
from schemas.wire import make_envelope
from tests.sim_support import TIMEOUT, running_sim


async def test_every_received_frame_is_in_the_log_in_order() -> None:
    async with running_sim() as sim:
        streams = "btcusdt@depth@100ms/btcusdt@bookTicker/ethusdt@depth5"
        async with websockets.connect(f"{sim.ws_url}/public/stream?streams={streams}") as ws:
            received = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(60)]
            await ws.send('{"method":"SET_PROPERTY","params":["combined",false],"id":1}')
            for _ in range(10_000):
                frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
                received.append(frame)
                if frame == '{"result":null,"id":1}':
                    break
            received.extend([await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(20)])
        records = sim.send_log.records(1)
        rebuilt = [make_envelope(r.stream, r.payload) if r.combined else r.payload
                   for r in records]
        assert rebuilt[:len(received)] == received
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        reply = records[received.index('{"result":null,"id":1}')]
        assert reply.kind is SentKind.REPLY
        assert all(not r.combined for r in records[reply.seq:] if r.kind is SentKind.DATA)


async def test_two_connections_are_logged_separately() -> None:
    async with running_sim() as sim, aiohttp.ClientSession() as http:
        async with http.ws_connect(sim.ws_url + "/market/ws/btcusdt@aggTrade") as a, \
                http.ws_connect(sim.ws_url + "/market/ws/ethusdt@aggTrade") as b:
            got_a = [(await a.receive(TIMEOUT)).data for _ in range(20)]
            got_b = [(await b.receive(TIMEOUT)).data for _ in range(20)]
        assert [r.payload for r in sim.send_log.data(1)][:20] == got_a
        assert [r.payload for r in sim.send_log.data(2)][:20] == got_b
        assert {r.stream for r in sim.send_log.data(2)} == {"ethusdt@aggTrade"}


async def test_ndjson_send_log_file(tmp_path: Path) -> None:
    path = tmp_path / "sent.ndjson"
    config = SimConfig(rate=400, seed=3)
    async with SimExchange(config, WireConfig(port=0), send_log_path=path) as sim, \
            websockets.connect(sim.ws_url + "/public/ws/btcusdt@bookTicker") as ws:
        received = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(30)]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    data = [line["payload"] for line in lines if line["kind"] == "data"]
    assert data[:30] == received
    assert lines[-1]["kind"] == "close"  # the shutdown close (1001) is logged too
