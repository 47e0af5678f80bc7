"""Replay at speed 0: ``Replayer`` delivering ``Message`` objects across 8 merged streams.

Baseline: pyarrow ``iter_batches`` over the same files producing ``(recv_ns, raw)`` tuples
(no merge, no ``Message``): the floor of reading the archive from Python.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks._common import Config, Figure, Outcome, at_least, missing
from benchmarks._feed import STREAMS
from benchmarks._session import parquet_files, session_archive
from schemas.message import Event

NAME = "replay"
KEYS = ["replay_max_msgs_per_s", "replay_read_baseline_msgs_per_s"]


def read_baseline(files: list[Path]) -> int:
    """Read ``(recv_ns, raw)`` tuples from every file; return the row count."""
    n = 0
    for f in files:
        pf = pq.ParquetFile(f)
        try:
            for batch in pf.iter_batches(batch_size=65_536, columns=["recv_ns", "raw"]):
                rows = list(zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(),
                                strict=True))
                n += len(rows)
        finally:
            pf.close()
    return n


async def replay_all(root: Path) -> int:
    """Replay every benchmark stream at speed 0 into a no-op async handler."""
    from replay import Replayer

    async def noop(event: Event) -> None:
        return None

    stats = await Replayer(root, streams=list(STREAMS), speed=0).run(noop)
    return stats.messages


def run(cfg: Config) -> Outcome:
    """Measure both, best of a few runs each, interleaved."""
    import time

    out = Outcome()
    reason = missing("replay._replayer")
    root = session_archive(cfg, cfg.pick(300_000, 1_000_000))
    if reason or isinstance(root, str):
        out.not_measured("replay speed 0, 8 streams", KEYS, reason or str(root), "msgs/s")
        return out
    files = parquet_files(root)
    best_base = best_replay = 0.0
    n_base = n_replay = 0
    for _ in range(cfg.pick(2, 3)):
        t0 = time.perf_counter()
        n_base = read_baseline(files)
        best_base = max(best_base, n_base / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        n_replay = asyncio.run(replay_all(root))
        best_replay = max(best_replay, n_replay / (time.perf_counter() - t0))
    if n_replay != n_base:
        out.notes.append(f"replay: delivered {n_replay:,} messages, files hold {n_base:,}")
    out.figures.append(Figure(f"replay speed 0, 8 streams ({n_replay:,} msgs)", best_replay,
                              "msgs/s", best_base, ">= 500k msgs/s",
                              at_least(best_replay, 500_000)))
    out.keys.update({
        "replay_max_msgs_per_s": round(best_replay),
        "replay_read_baseline_msgs_per_s": round(best_base),
        "replay_ratio": round(best_replay / best_base, 3) if best_base else None,
    })
    return out


__all__ = ["NAME", "read_baseline", "replay_all", "run"]
