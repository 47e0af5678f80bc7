"""The full recorder as a benchmark consumer (run as a subprocess).

``python -m benchmarks._recorder_child --ws-url URL --rest-url URL --archive DIR --count N``
runs :class:`recorder.Recorder` (journal, Parquet raw and parsed, gap detection, repair) on
the benchmark streams. A watcher polls the recorder's own counters every 5 ms; at ``N``
messages, ``--max-seconds`` after the first one, or on SIGTERM, it stops the recorder, which
seals every partition.
It prints one JSON line: messages counted, ``t_first_ns``/``t_received_ns`` (all ``N``
received), ``t_sealed_ns`` (recorder returned, files durable), rows written, gaps, and peak
RSS (``VmHWM``). ``--stuck-handler`` adds a live handler that never returns (memory test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks._client import vmhwm_mb
from benchmarks._feed import STREAMS


async def _never_returns(event: Any) -> None:
    await asyncio.Event().wait()


def _total(rec: Any) -> int:
    """Websocket messages of the benchmark streams (REST snapshots not counted)."""
    streams = rec.counters.streams
    return sum(streams[s].messages for s in STREAMS if s in streams)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    from recorder import Recorder, RecorderConfig

    cfg = RecorderConfig(streams=STREAMS, archive=Path(args.archive), ws_url=args.ws_url,
                         rest_url=args.rest_url, idle_timeout_s=120.0)
    handlers = [_never_returns] if args.stuck_handler else []
    rec = Recorder(cfg, handlers=handlers)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, rec.stop)
    marks = {"t_first_ns": 0, "t_received_ns": 0}

    async def watch() -> None:
        while not rec.stopping:
            n = _total(rec)
            if n and not marks["t_first_ns"]:
                marks["t_first_ns"] = time.monotonic_ns()
            capped = (marks["t_first_ns"] and args.max_seconds
                      and time.monotonic_ns() - marks["t_first_ns"] > args.max_seconds * 1e9)
            if (args.count and n >= args.count) or capped:
                marks["t_received_ns"] = time.monotonic_ns()
                rec.stop()
                return
            await asyncio.sleep(0.005)

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait_for(rec.run(), timeout=args.timeout)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    t_sealed = time.monotonic_ns()
    return {"received": _total(rec), **marks, "t_sealed_ns": t_sealed,
            "gaps": rec.gaps_written, "vmhwm_mb": vmhwm_mb(),
            "storage": rec.counters.storage_stats(), "drops": rec.counters.handler_drops()}


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks._recorder_child``."""
    p = argparse.ArgumentParser(prog="benchmarks._recorder_child")
    p.add_argument("--ws-url", required=True)
    p.add_argument("--rest-url", required=True)
    p.add_argument("--archive", required=True)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--max-seconds", type=float, default=0.0,
                   help="stop this long after the first message even if --count is not met")
    p.add_argument("--stuck-handler", action="store_true")
    p.add_argument("--profile", help="write cProfile stats of the whole run to this file")
    args = p.parse_args(argv)
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        result = prof.runcall(asyncio.run, _main(args))
        prof.dump_stats(args.profile)
    else:
        result = asyncio.run(_main(args))
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
