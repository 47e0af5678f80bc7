"""Helpers for the sim conformance tests: a started SimExchange and small client utilities."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import websockets

from replay.sim.config import SimConfig
from replay.sim.exchange import SimExchange
from replay.wire.connection import ConnLimits
from replay.wire.routing import RoutingMode
from replay.wire.server import WireConfig

TIMEOUT = 5.0
"""Upper bound for any single wait in these tests (a hang guard, not a timing assertion)."""


@contextlib.asynccontextmanager
async def running_sim(routing: RoutingMode = RoutingMode.STRICT, limits: ConnLimits | None = None,
                      weight_limit: int = 2400, **kwargs: Any) -> AsyncIterator[SimExchange]:
    """A started SimExchange on 127.0.0.1:0 with test-friendly defaults."""
    base: dict[str, Any] = {"rate": 400.0, "cadence_scale": 0.1, "seed": 11,
                            "user_event_interval": 0.1}
    base.update(kwargs)
    wire = WireConfig(port=0, routing=routing, limits=limits or ConnLimits(),
                      weight_limit=weight_limit)
    async with SimExchange(SimConfig(**base), wire) as exchange:
        yield exchange


async def recv_json(ws: websockets.ClientConnection, timeout: float = TIMEOUT) -> Any:
    """Next text frame, decoded."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def reply_to(ws: websockets.ClientConnection, request: dict[str, Any]) -> Any:
    """Send a control message and return its reply, skipping data frames."""
    await ws.send(json.dumps(request))
    for _ in range(10_000):
        msg = await recv_json(ws)
        if isinstance(msg, dict) and "id" in msg and ("result" in msg or "error" in msg):
            return msg
    raise AssertionError("no reply")


async def collect(ws: websockets.ClientConnection, count: int) -> list[Any]:
    """The next ``count`` decoded frames."""
    return [await recv_json(ws) for _ in range(count)]


async def silent_for(ws: websockets.ClientConnection, seconds: float) -> bool:
    """True if no frame arrives within ``seconds``."""
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


async def rest_get(exchange: SimExchange, path: str, **params: Any) -> tuple[int, Any, Any]:
    """GET a REST path; returns (status, json body, headers)."""
    async with aiohttp.ClientSession() as session, session.get(
            exchange.rest_url + path, params={k: str(v) for k, v in params.items()}) as resp:
        return resp.status, await resp.json(), resp.headers


async def listen_key(exchange: SimExchange, api_key: str = "test-api-key") -> str:
    """POST /fapi/v1/listenKey and return the key."""
    async with aiohttp.ClientSession() as session, session.post(
            exchange.rest_url + "/fapi/v1/listenKey",
            headers={"X-MBX-APIKEY": api_key}) as resp:
        assert resp.status == 200
        return str((await resp.json())["listenKey"])
