"""Route split, legacy routes, user data and REST shapes (BINANCE.md sections 1, 5, 6)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import websockets

from replay.wire.routing import RoutingMode
from tests.sim_support import (
    collect,
    listen_key,
    recv_json,
    reply_to,
    rest_get,
    running_sim,
    silent_for,
)

MARK_KEYS = ["e", "E", "s", "p", "ap", "P", "i", "r", "T", "st"]
AGG_KEYS = ["e", "E", "a", "s", "p", "q", "nq", "f", "l", "T", "m", "st"]


async def test_market_stream_on_public_route_is_acked_then_silent() -> None:
    async with running_sim() as sim, websockets.connect(sim.ws_url + "/public/ws") as ws:
        assert await reply_to(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"],
                                   "id": 1}) == {"result": None, "id": 1}
        assert await silent_for(ws, 0.5)
        assert await reply_to(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {
            "result": ["btcusdt@aggTrade"], "id": 2}


async def test_strict_unrouted_paths_serve_public_only() -> None:
    async with running_sim() as sim:
        async with websockets.connect(sim.ws_url + "/ws/btcusdt@markPrice") as ws:
            assert await silent_for(ws, 0.6)  # markPrice cadence here is 0.3 s
        async with websockets.connect(sim.ws_url + "/ws/btcusdt@bookTicker") as ws:
            assert (await recv_json(ws))["e"] == "bookTicker"
        async with websockets.connect(sim.ws_url + "/market/ws/btcusdt@markPrice") as ws:
            assert list(await recv_json(ws)) == MARK_KEYS


async def test_legacy_routes_tutorial_urls() -> None:
    async with running_sim(RoutingMode.LEGACY) as sim:
        async with websockets.connect(sim.ws_url + "/ws/btcusdt@markPrice") as ws:
            assert list(await recv_json(ws)) == MARK_KEYS
        url = sim.ws_url + "/stream?streams=btcusdt@depth20@100ms/btcusdt@aggTrade"
        async with websockets.connect(url) as ws:
            seen: dict[str, list[str]] = {}
            for _ in range(200):
                frame = await recv_json(ws)
                seen.setdefault(frame["stream"], list(frame["data"]))
                if len(seen) == 2:
                    break
        assert seen["btcusdt@aggTrade"] == AGG_KEYS
        assert seen["btcusdt@depth20@100ms"] == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]


async def test_legacy_listen_key_socket_sees_order_and_account_updates() -> None:
    async with running_sim(RoutingMode.LEGACY) as sim:
        key = await listen_key(sim)
        async with websockets.connect(f"{sim.ws_url}/ws/{key}") as ws:
            events = set()
            for _ in range(30):
                events.add((await recv_json(ws))["e"])
                if {"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"} <= events:
                    break
        assert {"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"} <= events


async def test_strict_legacy_listen_key_path_is_silent() -> None:
    async with running_sim() as sim:
        key = await listen_key(sim)
        async with websockets.connect(f"{sim.ws_url}/ws/{key}") as ws:
            assert await silent_for(ws, 0.5)


async def test_private_route_events_allow_list_and_delete() -> None:
    async with running_sim() as sim:
        key = await listen_key(sim)
        url = f"{sim.ws_url}/private/stream?listenKey={key}&events=ACCOUNT_UPDATE/listenKeyExpired"
        async with websockets.connect(url) as ws:
            frame = await recv_json(ws)
            assert frame == {"stream": f"{key}@ACCOUNT_UPDATE", "data": frame["data"]}
            assert frame["data"]["e"] == "ACCOUNT_UPDATE"
            assert await reply_to(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {
                "result": [f"{key}@ACCOUNT_UPDATE", f"{key}@listenKeyExpired"], "id": 1}
            async with aiohttp.ClientSession() as http, http.delete(
                    sim.rest_url + "/fapi/v1/listenKey", params={"listenKey": key},
                    headers={"X-MBX-APIKEY": "test-api-key"}) as resp:
                assert resp.status == 200 and await resp.json() == {}
            for _ in range(50):
                frame = await recv_json(ws)
                assert frame["data"]["e"] in ("ACCOUNT_UPDATE", "listenKeyExpired")
                if frame["data"]["e"] == "listenKeyExpired":
                    break
            assert frame["data"]["listenKey"] == key
            assert await silent_for(ws, 0.5)


async def test_private_route_refuses_unknown_key() -> None:
    async with running_sim() as sim:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(sim.ws_url + "/private/ws?listenKey=doesnotexist123"):
                pass
        assert info.value.response.status_code == 400


async def test_listen_key_rest_errors_and_keepalive() -> None:
    async with running_sim() as sim, aiohttp.ClientSession() as http:
        url = sim.rest_url + "/fapi/v1/listenKey"
        async with http.post(url) as resp:
            assert resp.status == 400
            assert await resp.json() == {"code": -2014, "msg": "API-key format invalid."}
        key = await listen_key(sim, "k1")
        async with http.put(url, headers={"X-MBX-APIKEY": "k1"}) as resp:
            assert await resp.json() == {"listenKey": key}
        async with http.put(url, params={"listenKey": "nope"},
                            headers={"X-MBX-APIKEY": "k1"}) as resp:
            assert resp.status == 400
            assert await resp.json() == {"code": -1125, "msg": "This listenKey does not exist."}
        assert await listen_key(sim, "k1") == key  # POST returns the active key


async def test_rest_shapes_and_errors() -> None:
    async with running_sim() as sim:
        assert (await rest_get(sim, "/fapi/v1/ping"))[:2] == (200, {})
        status, body, _ = await rest_get(sim, "/fapi/v1/time")
        assert status == 200 and isinstance(body["serverTime"], int)
        status, info, _ = await rest_get(sim, "/fapi/v1/exchangeInfo")
        symbols = {s["symbol"]: s for s in info["symbols"]}
        assert set(symbols) == {"BTCUSDT", "ETHUSDT"}
        filters = {f["filterType"]: f for f in symbols["BTCUSDT"]["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.10"
        assert filters["LOT_SIZE"]["stepSize"] == "0.001"
        status, body, headers = await rest_get(sim, "/fapi/v1/depth", symbol="NOPEUSDT")
        assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
        assert "X-MBX-USED-WEIGHT-1M" in headers
        status, body, _ = await rest_get(sim, "/fapi/v1/depth", symbol="BTCUSDT", limit=7)
        assert (status, body["code"]) == (400, -1130)
        status, body, _ = await rest_get(sim, "/fapi/v1/aggTrades")
        assert (status, body["code"]) == (400, -1102)
        status, body, _ = await rest_get(sim, "/fapi/v1/nothing")
        assert status == 404 and "code" in body and "msg" in body


async def test_agg_trades_rest_rows() -> None:
    async with running_sim() as sim, websockets.connect(
            sim.ws_url + "/market/ws/btcusdt@aggTrade") as ws:
        sent = await collect(ws, 5)
        await asyncio.sleep(0)
        status, rows, _ = await rest_get(sim, "/fapi/v1/aggTrades", symbol="BTCUSDT",
                                         fromId=sent[1]["a"], limit=3)
        assert status == 200
        assert rows == [{k: s[k] for k in ("a", "p", "q", "nq", "f", "l", "T", "m")}
                        for s in sent[1:4]]



async def test_request_weight_budget_gives_429() -> None:
    async with running_sim(weight_limit=30) as sim:
        status, _, headers = await rest_get(sim, "/fapi/v1/depth", symbol="BTCUSDT", limit=1000)
        assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "20"
        status, body, headers = await rest_get(sim, "/fapi/v1/depth", symbol="BTCUSDT",
                                               limit=1000)
        assert status == 429 and body["code"] == -1003
        assert headers["Retry-After"].isdigit()
