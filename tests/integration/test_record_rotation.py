"""Make-before-break rotation with the 24 h limit compressed to seconds: across many
rotations the archive has zero gaps and zero duplicates."""

from __future__ import annotations

from pathlib import Path

from recorder import Recorder
from replay.sim.config import SimConfig
from replay.sim.exchange import SimExchange
from replay.wire.connection import ConnLimits
from replay.wire.server import WireConfig
from tests.record_support import config, gap_rows, record_for, sent_by_stream, stream_rows

STREAMS = ["btcusdt@aggTrade", "ethusdt@aggTrade", "btcusdt@bookTicker", "ethusdt@depth@100ms"]


async def test_rotations_leave_no_gap_and_no_duplicate(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    # The sim ends every connection after 1 s (Binance: 24 h); the recorder rotates at 0.5 s.
    exchange = SimExchange(SimConfig(rate=400.0, cadence_scale=0.1, seed=3),
                           WireConfig(limits=ConnLimits(max_age=1.0)))
    await exchange.start()
    try:
        recorder = Recorder(config(exchange, archive, STREAMS, rotate_after_s=0.5, overlap_s=0.3))
        stop_ns = await record_for(recorder, 4.0)
        sent = sent_by_stream(exchange.send_log.data())
    finally:
        await exchange.stop()
    rotations = sum(r.rotations for r in recorder.shards)
    assert rotations >= 10
    assert sum(r.reconnects for r in recorder.shards) == 0
    assert gap_rows(archive) == []
    for stream in STREAMS:
        got = [r[4] for r in stream_rows(archive, stream) if r[3] == "ws"]
        assert len(got) == len(set(got)), f"{stream}: duplicates"
        first_sent: dict[str, int] = {}
        for f in sent[stream]:
            first_sent.setdefault(f.payload, f.send_ns)
        expected = list(first_sent)  # every distinct payload, in first-send order
        assert got == expected[:len(got)], f"{stream}: hole or reorder"
        assert all(first_sent[p] >= stop_ns for p in expected[len(got):]), f"{stream}: hole"
