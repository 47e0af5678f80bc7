"""Live control messages, the inbound rate limit, lifetime close, pings (BINANCE.md s. 2)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from replay.wire.connection import ConnLimits
from tests.sim_support import TIMEOUT, recv_json, reply_to, running_sim, silent_for


async def test_subscribe_combined_property_list_unsubscribe() -> None:
    async with running_sim() as sim, websockets.connect(sim.ws_url + "/market/ws") as ws:
        assert await silent_for(ws, 0.3)  # nothing subscribed yet
        assert await reply_to(ws, {"method": "GET_PROPERTY", "params": ["combined"],
                                   "id": 2}) == {"result": False, "id": 2}
        await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}')
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == '{"result":null,"id":1}'
        raw = await recv_json(ws)
        assert raw["e"] == "aggTrade"  # raw mode: bare payload
        assert await reply_to(ws, {"method": "SET_PROPERTY", "params": ["combined", True],
                                   "id": 5}) == {"result": None, "id": 5}
        framed = await recv_json(ws)
        assert framed["stream"] == "btcusdt@aggTrade" and framed["data"]["e"] == "aggTrade"
        assert await reply_to(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == {
            "result": ["btcusdt@aggTrade"], "id": 3}
        assert await reply_to(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"],
                                   "id": 312}) == {"result": None, "id": 312}
        assert await silent_for(ws, 0.4)


async def test_combined_defaults_true_on_stream_and_errors_over_the_wire() -> None:
    async with running_sim() as sim, websockets.connect(sim.ws_url + "/public/stream") as ws:
        assert await reply_to(ws, {"method": "GET_PROPERTY", "params": ["combined"],
                                   "id": 7}) == {"result": True, "id": 7}
        assert await reply_to(ws, {"method": "SET_PROPERTY", "params": ["combined", 1],
                                   "id": 8}) == {
            "error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": 8}
        await ws.send("{not json")
        reply = await recv_json(ws)
        assert reply["error"]["code"] == 3 and reply["id"] is None


async def test_eleventh_message_within_a_second_closes_1008() -> None:
    async with running_sim() as sim, websockets.connect(sim.ws_url + "/public/ws") as ws:
        for i in range(11):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        replies = []
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(20):
                replies.append(await recv_json(ws))
        assert len(replies) == 10
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1008, "Too many requests")


async def test_ten_messages_a_second_are_fine() -> None:
    async with running_sim() as sim, websockets.connect(sim.ws_url + "/public/ws") as ws:
        for i in range(10):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        assert [(await recv_json(ws))["id"] for _ in range(10)] == list(range(10))
        assert await silent_for(ws, 0.2)
        assert ws.close_code is None


async def test_connection_lifetime_closes_1001() -> None:
    limits = ConnLimits(max_age=0.3)
    async with running_sim(limits=limits) as sim, websockets.connect(
            sim.ws_url + "/public/ws/btcusdt@bookTicker") as ws:
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(100_000):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


async def test_server_pings_and_pong_timeout() -> None:
    limits = ConnLimits(ping_interval=0.1, pong_timeout=0.4)
    async with running_sim(limits=limits) as sim, aiohttp.ClientSession() as session, \
            session.ws_connect(sim.ws_url + "/public/ws", autoping=False) as ws:
        for _ in range(3):  # answer pings: the connection stays up
            msg = await ws.receive(TIMEOUT)
            assert msg.type is aiohttp.WSMsgType.PING
            assert msg.data.decode().isdigit()  # payload: server time ms, echo it
            await ws.pong(msg.data)
        assert not ws.closed
        for _ in range(50):  # stop answering: dropped without a close frame
            msg = await ws.receive(TIMEOUT)
            if msg.type is not aiohttp.WSMsgType.PING:
                break
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert ws.close_code in (None, 1006)


async def test_client_ping_is_echoed() -> None:
    async with running_sim() as sim, websockets.connect(sim.ws_url + "/public/ws") as ws:
        latency = await asyncio.wait_for(await ws.ping(b"hello-123"), TIMEOUT)
        assert latency >= 0


async def test_stream_cap_in_url_is_refused() -> None:
    limits = ConnLimits(max_streams=2)
    async with running_sim(limits=limits) as sim:
        url = sim.ws_url + "/public/ws/btcusdt@depth/ethusdt@depth/btcusdt@bookTicker"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(url):
                pass
