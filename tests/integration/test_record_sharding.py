"""2,000 streams are sharded so that no connection carries more than 1024 streams or sends
more than 10 messages per second (measured on the server side, from the sim's send log)."""

from __future__ import annotations

from pathlib import Path

from recorder import Recorder
from replay.sim.config import SimConfig
from replay.sim.exchange import SimExchange
from replay.wire.sendlog import SentKind
from tests.record_support import config, record_for

SYMBOLS = [f"T{i:04d}USDT" for i in range(999)]
# Only BTCUSDT trades in the sim; like Binance it acks the other symbols' streams and stays
# silent on them. The test is about connections, not about sealing 2,000 partitions.
STREAMS = ["btcusdt@aggTrade", "btcusdt@markPrice@1s"] + [
    f"{s.lower()}@{t}" for s in SYMBOLS for t in ("aggTrade", "markPrice@1s")]


async def test_2000_streams_sharded_within_limits(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    subscribed: list[int] = []
    exchange = SimExchange(SimConfig(symbols=("BTCUSDT",), rate=50.0, seed=5))
    await exchange.start()
    try:
        recorder = Recorder(config(exchange, archive, STREAMS, idle_timeout_s=5.0))
        await record_for(recorder, 3.0, before_stop=lambda: subscribed.extend(
            len(c.session.streams) for c in exchange.server.connections.values()))
        log = exchange.send_log
        records = log.records()
    finally:
        await exchange.stop()
    assert len(recorder.shards) == 2
    assert all(len(r.streams) <= 1024 for r in recorder.shards)
    assert sum(len(r.streams) for r in recorder.shards) == 2000
    # The server answers every inbound control message once: its replies time our sends.
    for conn in log.connections():
        replies = [r.send_ns for r in records if r.conn_id == conn and r.kind is SentKind.REPLY]
        worst = max((sum(1 for t in replies if s <= t < s + 1_000_000_000) for s in replies),
                    default=0)
        assert worst <= 10, f"connection {conn}: {worst} inbound messages in one second"
    closes = [r for r in records if r.kind is SentKind.CLOSE and r.payload.startswith("1008")]
    assert closes == []
    # The server side saw every stream subscribed (URL plus rate-limited SUBSCRIBEs).
    assert sorted(subscribed) == [1000, 1000]
    assert recorder.counters.streams, "data arrived"
    assert sum(r.reconnects for r in recorder.shards) == 0
