"""Throughput smoke test: measure (not assert) what the sim pushes; check nothing is lost."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from replay.wire.routing import RoutingMode
from tests.sim_support import running_sim

STREAMS = "/".join(f"{s}@{c}" for s in ("btcusdt", "ethusdt")
                   for c in ("aggTrade", "trade", "bookTicker", "depth@0ms"))


async def _drain(url: str, seconds: float) -> int:
    count = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = await ws.receive(5.0)
            assert msg.type is aiohttp.WSMsgType.TEXT
            count += 1
    return count


async def test_throughput_smoke() -> None:
    async with running_sim(RoutingMode.LEGACY, rate=20_000, cadence_scale=1.0) as sim:
        url = f"{sim.ws_url}/stream?streams={STREAMS}"
        seconds = 1.0
        counts = await asyncio.gather(_drain(url, seconds), _drain(url, seconds))
        total = sum(counts)
        print(f"\nsim throughput: {total / seconds:,.0f} msgs/s received over 2 connections "
              f"(client and server share one process)")
        for conn_id, count in zip((1, 2), counts, strict=True):
            assert len(sim.send_log.data(conn_id)) >= count > 0
