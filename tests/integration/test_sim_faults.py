"""Every fault kind is observable by a plain client (and recorded in the send log)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from replay.sim.faults import parse_faults
from replay.wire.sendlog import SentKind
from tests.sim_support import TIMEOUT, recv_json, rest_get, running_sim


async def _until_closed(ws: websockets.ClientConnection) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(100_000):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    return info.value


async def test_drop_has_no_close_frame() -> None:
    async with running_sim(faults=parse_faults("drop:at=0.2")) as sim, websockets.connect(
            sim.ws_url + "/public/ws/btcusdt@bookTicker") as ws:
        closed = await _until_closed(ws)
        assert closed.rcvd is None  # abrupt: the client sees 1006
        assert sim.send_log.records(1)[-1].kind is SentKind.DROP


async def test_close_with_code_and_reason() -> None:
    spec = "close:at=0.2,code=4000,reason=maintenance"
    async with running_sim(faults=parse_faults(spec)) as sim, websockets.connect(
            sim.ws_url + "/public/ws/btcusdt@bookTicker") as ws:
        closed = await _until_closed(ws)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "maintenance")


async def test_fault_targets_one_connection() -> None:
    url = "/public/ws/btcusdt@bookTicker"
    async with running_sim(faults=parse_faults("close:at=0.1,code=4001,conn=2")) as sim, \
            websockets.connect(sim.ws_url + url) as first, \
            websockets.connect(sim.ws_url + url) as second:
        closed = await _until_closed(second)
        assert closed.rcvd is not None and closed.rcvd.code == 4001
        assert (await recv_json(first))["e"] == "bookTicker"


async def test_malformed_and_binary_frames() -> None:
    spec = "malformed:at=0.1;binary:at=0.2"
    async with running_sim(faults=parse_faults(spec)) as sim, websockets.connect(
            sim.ws_url + "/public/ws/btcusdt@bookTicker") as ws:
        bad_text = binary = None
        for _ in range(10_000):
            frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if isinstance(frame, bytes):
                binary = frame
                break
            try:
                json.loads(frame)
            except json.JSONDecodeError:
                bad_text = frame
        assert bad_text is not None and binary is not None
        kinds = [r.kind for r in sim.send_log.records(1)]
        assert SentKind.MALFORMED in kinds and SentKind.BINARY in kinds


async def test_skipped_agg_trade_ids_are_missing_on_the_socket_but_in_rest() -> None:
    async with running_sim(faults=parse_faults("skip:at=0.3,count=3")) as sim, \
            websockets.connect(sim.ws_url + "/market/ws/btcusdt@aggTrade") as ws:
        ids: list[int] = []
        for _ in range(10_000):
            ids.append((await recv_json(ws))["a"])
            holes = [(a, b) for a, b in itertools.pairwise(ids) if b != a + 1]
            if holes:
                break
        [(before, after)] = holes
        assert after - before - 1 == 3
        status, rows, _ = await rest_get(sim, "/fapi/v1/aggTrades", symbol="BTCUSDT",
                                         fromId=before + 1, limit=3)
        assert status == 200
        assert [r["a"] for r in rows] == [before + 1, before + 2, before + 3]


async def test_break_pu_chain() -> None:
    async with running_sim(faults=parse_faults("break-pu:at=0.3")) as sim, \
            websockets.connect(sim.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        prev = await recv_json(ws)
        for _ in range(200):
            event = await recv_json(ws)
            if event["pu"] != prev["u"]:
                break
            prev = event
        assert event["pu"] != prev["u"]
        assert event["pu"] > prev["u"]  # exactly one event was withheld


async def test_stall_sends_nothing_for_a_while() -> None:
    # max_queue=None: the backlog after the stall must not pause the client's reads.
    async with running_sim(faults=parse_faults("stall:at=0.2,seconds=0.6")) as sim, \
            websockets.connect(sim.ws_url + "/public/ws/btcusdt@bookTicker",
                               max_queue=None) as ws:
        gaps = []
        last = time.monotonic()
        for _ in range(10_000):
            await recv_json(ws)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            if max(gaps) >= 0.5:
                break
        assert max(gaps) >= 0.5  # a lower bound: nothing arrived during the stall
        sends = [r.send_ns for r in sim.send_log.data(1)]
        assert max(b - a for a, b in itertools.pairwise(sends)) >= 0.5e9


async def test_slow_mode_spaces_out_frames() -> None:
    spec = "slow:at=0.1,seconds=0.6,delay=0.05"
    async with running_sim(faults=parse_faults(spec), rate=2000) as sim, \
            websockets.connect(sim.ws_url + "/public/ws/btcusdt@bookTicker") as ws:
        arrivals = []
        for _ in range(2000):
            await recv_json(ws)
            arrivals.append(time.monotonic())
            slow = [b - a for a, b in itertools.pairwise(arrivals) if b - a >= 0.04]
            if len(slow) >= 6:
                break
        assert len(slow) >= 6  # frames trickled in one by one, >= delay apart
        records = sim.send_log.data(1)
        spaced = [b.send_ns - a.send_ns for a, b in itertools.pairwise(records)]
        assert sum(1 for gap in spaced if gap >= 0.045e9) >= 6
