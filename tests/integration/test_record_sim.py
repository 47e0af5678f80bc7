"""Record 8 stream types for BTCUSDT/ETHUSDT plus !markPrice@arr from the sim; compare with
what the sim sent (its send log), byte for byte."""

from __future__ import annotations

import asyncio
from pathlib import Path

from recorder import Recorder
from schemas.message import Gap, Message
from tests.record_support import config, gap_rows, record_for, sent_by_stream, sim, stream_rows

TYPES = ["aggTrade", "trade", "bookTicker", "depth@100ms", "depth5@100ms", "markPrice@1s",
         "kline_1m", "ticker"]
STREAMS = [f"{s}@{t}" for s in ("btcusdt", "ethusdt") for t in TYPES] + ["!markPrice@arr"]


class Collect:
    """A live handler that keeps everything."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.gaps: list[Gap] = []

    async def on_message(self, msg: Message) -> None:
        self.messages.append(msg)

    async def on_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)


async def sleeps_forever(event: object) -> None:
    await asyncio.Event().wait()


def raises(event: object) -> None:
    raise RuntimeError("handler bug")


async def test_record_matches_send_log(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    collect = Collect()
    async with sim() as exchange:
        # A handler that never returns and one that always raises must not disturb recording
        # or the well-behaved handler.
        recorder = Recorder(config(exchange, archive, STREAMS, handler_queue=100),
                            handlers=[sleeps_forever, raises, collect])
        stop_ns = await record_for(recorder, 2.0)
        sent = sent_by_stream(exchange.send_log.data())
    assert {s for s in STREAMS} <= set(sent), "the sim sent every stream"
    for stream in STREAMS:
        rows = stream_rows(archive, stream)
        got = [r[4] for r in rows]
        expected = [f.payload for f in sent[stream]]
        assert all(r[3] == "ws" for r in rows)
        # Everything sent before the stop was asked is stored, in order, byte-identical; frames
        # in flight while the connection closed may be missing only at the end.
        assert got == expected[:len(got)], stream
        assert all(f.send_ns >= stop_ns for f in sent[stream][len(got):]), stream
        assert len(got) > 0
    for symbol in ("btcusdt", "ethusdt"):
        snaps = stream_rows(archive, f"{symbol}@depthSnapshot")
        assert snaps and all(r[3] == "rest" and '"lastUpdateId"' in r[4] for r in snaps)
    gaps = gap_rows(archive)
    assert [g for g in gaps if g.kind.value in ("disconnect", "sequence", "rejected")] == []
    assert len(recorder.shards) == 2
    stored = {(r[4], r[0]) for s in STREAMS for r in stream_rows(archive, s)}
    assert {(m.raw, m.recv_ns) for m in collect.messages if m.stream in STREAMS} == stored
    drops = recorder.counters.handler_drops()
    offered = len(collect.messages) + len(collect.gaps)
    # One event stuck in the sleeping handler, 100 queued behind it, the rest counted drops.
    assert drops["0:sleeps_forever"] == offered - 101
    assert drops["2:Collect"] == 0
