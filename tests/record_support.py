"""Helpers for the recorder integration tests: run a Recorder against the in-process sim and
read the archive back with DuckDB."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from recorder import Recorder, RecorderConfig
from replay.sim.config import SimConfig
from replay.sim.exchange import SimExchange
from replay.wire.sendlog import SentFrame
from schemas.formatters import restore_raw_column
from schemas.message import Gap, GapKind

FAST = {
    "idle_timeout_s": 1.5,
    "connect_timeout_s": 2.0,
    "backoff_initial_s": 0.05,
    "backoff_cap_s": 0.3,
    "overlap_s": 1.0,
    "flush_interval_s": 0.05,
}


@contextlib.asynccontextmanager
async def sim(**kwargs: Any) -> AsyncIterator[SimExchange]:
    """A started SimExchange on 127.0.0.1 with test-friendly defaults."""
    base: dict[str, Any] = {"rate": 200.0, "cadence_scale": 0.1, "seed": 7}
    base.update(kwargs)
    exchange = SimExchange(SimConfig(**base))
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()


def config(exchange: SimExchange, archive: Path, streams: list[str], **kw: Any) -> RecorderConfig:
    """A recorder config pointed at ``exchange`` with fast timings."""
    values: dict[str, Any] = {**FAST, **kw}
    return dataclasses.replace(RecorderConfig(streams=tuple(streams), archive=archive,
                                              ws_url=exchange.ws_url,
                                              rest_url=exchange.rest_url), **values)


async def record_for(recorder: Recorder, seconds: float,
                     before_stop: Callable[[], object] | None = None) -> int:
    """Run ``recorder`` for ``seconds``; return the wall time (ns) at which stop was asked."""
    task = asyncio.create_task(recorder.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), seconds)
    if before_stop is not None:
        before_stop()
    stop_ns = time.time_ns()
    recorder.stop()
    await asyncio.wait_for(task, 20)
    return stop_ns


def stream_rows(archive: Path, stream: str) -> list[tuple[int, int, int, str, str]]:
    """``(recv_ns, conn_id, seq, source, raw)`` rows of ``stream``, in archive order."""
    files = sorted((archive / "streams" / f"stream={stream}").glob("date=*/*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT recv_ns, conn_id, seq, source FROM read_parquet(?) "
            "ORDER BY recv_ns, conn_id, seq", [[str(f) for f in files]]).fetchall()
    finally:
        con.close()
    # The live writer may store raw as null where the parsed columns re-derive it exactly
    # (schemas.storage.prepare_for_storage): restore it, as every reader does.
    restored: dict[tuple[int, int, int], list[str]] = {}
    for f in files:
        for batch in pq.read_table(f).to_batches():
            raws = restore_raw_column(stream, batch).to_pylist()
            keys = zip(*(batch.column(c).to_pylist() for c in ("recv_ns", "conn_id", "seq")),
                       strict=True)
            for key, raw in zip(keys, raws, strict=True):
                restored.setdefault(key, []).append(str(raw))
    return [(int(r[0]), int(r[1]), int(r[2]), str(r[3]),
             restored[(int(r[0]), int(r[1]), int(r[2]))].pop(0)) for r in rows]


def gap_rows(archive: Path) -> list[Gap]:
    """Every stored gap."""
    files = sorted((archive / "gaps").glob("date=*/*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT stream, start_ns, end_ns, kind, detail, recovered "
                           "FROM read_parquet(?) ORDER BY start_ns", [[str(f) for f in files]]
                           ).fetchall()
    finally:
        con.close()
    return [Gap(r[0], int(r[1]), int(r[2]), GapKind(r[3]), r[4], bool(r[5])) for r in rows]


def sent_by_stream(frames: list[SentFrame]) -> dict[str, list[SentFrame]]:
    """Data frames grouped by stream, in send order (per connection order is kept)."""
    out: dict[str, list[SentFrame]] = {}
    for f in frames:
        out.setdefault(f.stream, []).append(f)
    return out
