"""One feeder + one consumer run: the shared shape of the ingest, CPU and memory benchmarks."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks._procs import FeederProc, consumer, python_cmd, rss_mb


@dataclass(slots=True)
class Run:
    """What one consumer did with one feed."""

    received: int
    seconds: float
    """From the feeder's first write to the consumer's end mark (see ``end_key``)."""
    cpu_s: float
    rss_peak_mb: float
    output: dict[str, Any]
    rss_samples: list[tuple[float, float]] = field(default_factory=list)
    """``(seconds since feed start, RSS MiB)`` sampled every half second."""

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_msg(self) -> float:
        """CPU microseconds per message received."""
        return self.cpu_s / self.received * 1e6 if self.received else float("nan")


def _sampler(pid: int, t0: float, out: list[tuple[float, float]],
             stop: threading.Event) -> None:
    while not stop.wait(0.5):
        out.append((time.monotonic() - t0, rss_mb(pid)))


def run_consumer(workdir: Path, kind: str, count: int, *, rate: float = 0.0, loops: int = 1,
                 feed_count: int | None = None, timeout: float = 120.0,
                 extra: tuple[str, ...] = (), end_key: str = "t_last_ns",
                 sample_rss: bool = False) -> Run:
    """Feed ``count`` messages to a ``kind`` consumer (``client`` or ``recorder``).

    ``feed_count`` messages are generated and sent ``loops`` times (default: ``count`` once).
    """
    log = workdir / f"{kind}.log"
    archive = workdir / f"{kind}-archive"
    shutil.rmtree(archive, ignore_errors=True)
    with FeederProc(feed_count or count, rate=rate, loops=loops,
                    stderr=workdir / "feeder.log") as feeder:
        if kind == "client":
            cmd = python_cmd("benchmarks._client", "--ws-url", feeder.ws_url,
                             "--count", str(count), "--timeout", str(timeout))
        else:
            cmd = python_cmd("benchmarks._recorder_child", "--ws-url", feeder.ws_url,
                             "--rest-url", feeder.rest_url, "--archive", str(archive),
                             "--count", str(count), "--timeout", str(timeout), *extra)
        with consumer(cmd, log) as child:
            started = feeder.event("started", timeout=60.0)
            child.mark_start()
            samples: list[tuple[float, float]] = []
            stop = threading.Event()
            sampler: threading.Thread | None = None
            if sample_rss:
                sampler = threading.Thread(target=_sampler, daemon=True,
                                           args=(child.pid, time.monotonic(), samples, stop))
                sampler.start()
            try:
                result = child.finish(timeout + 30.0)
            finally:
                stop.set()
                if sampler is not None:
                    sampler.join()
    out = result.output
    end = out.get(end_key) or out.get("t_last_ns") or 0
    seconds = (end - started["t_first_ns"]) / 1e9
    peak = float(out.get("vmhwm_mb") or result.maxrss_mb)
    out["feed_t_first_ns"] = started["t_first_ns"]
    run = Run(int(out.get("received", 0)), seconds, result.cpu_s, peak, out, samples)
    if kind == "recorder":
        run.output["rows_stored"] = stored_rows(archive)
    shutil.rmtree(archive, ignore_errors=True)
    return run


def feeder_ceiling(workdir: Path, count: int) -> float:
    """Frames per second the feeder writes into sockets whose reader discards the bytes."""
    with FeederProc(count, stderr=workdir / "feeder.log") as feeder:
        cmd = python_cmd("benchmarks._client", "--ws-url", feeder.ws_url, "--null")
        with consumer(cmd, workdir / "null.log") as child:
            done = feeder.event("done", timeout=120.0)
            child.terminate()
            child.finish(30.0)
    secs = (done["t_last_ns"] - done["t_first_ns"]) / 1e9
    return float(done["sent"]) / secs if secs > 0 else 0.0


def stored_rows(archive: Path) -> int:
    """Rows in the sealed stream partitions of ``archive`` (from Parquet footers)."""
    total = 0
    for f in (archive / "streams").glob("stream=*/date=*/*.parquet"):
        total += pq.read_metadata(f).num_rows
    return total


def guarded(fn: Callable[[], Run]) -> tuple[Run | None, str]:
    """Run ``fn``; on failure return ``(None, reason)`` for a "not measured" note."""
    try:
        return fn(), ""
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:300]}"


__all__ = ["Run", "feeder_ceiling", "guarded", "run_consumer", "stored_rows"]
