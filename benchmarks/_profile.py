"""Where the time goes: cProfile of the ingest and replay hot paths.

``python -m benchmarks._profile ingest|replay [--count N] [--top K]`` prints the functions
with the most own time. ``ingest`` profiles the recorder process (main thread: the event
loop; the writer thread is not sampled by cProfile) on a saturating loopback feed; ``replay``
profiles ``Replayer.run`` at speed 0 over the 8-stream session.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
from pathlib import Path

from benchmarks._common import Config
from benchmarks._feed import cache_dir
from benchmarks._procs import FeederProc, consumer, python_cmd


def profile_ingest(count: int, work: Path) -> pstats.Stats:
    """Run the recorder child under cProfile on ``count`` bulk-fed messages."""
    prof = work / "ingest.prof"
    with FeederProc(count, stderr=work / "feeder.log") as feeder:
        cmd = python_cmd("benchmarks._recorder_child", "--ws-url", feeder.ws_url,
                         "--rest-url", feeder.rest_url, "--archive", str(work / "archive"),
                         "--count", str(count), "--max-seconds", "60", "--profile", str(prof))
        with consumer(cmd, work / "recorder.log") as child:
            feeder.event("started", timeout=60.0)
            child.finish(180.0)
    return pstats.Stats(str(prof), stream=io.StringIO())


def profile_replay(count: int, work: Path) -> pstats.Stats:
    """Profile a speed-0 replay of a ``count``-message session."""
    from benchmarks._session import session_archive
    from benchmarks.replay_speed import replay_all

    cfg = Config(quick=True, workdir=work, cache=cache_dir())
    root = session_archive(cfg, count)
    if isinstance(root, str):
        raise SystemExit(f"cannot build the session archive: {root}")
    prof = cProfile.Profile()
    prof.runcall(asyncio.run, replay_all(root))
    return pstats.Stats(prof, stream=io.StringIO())


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks._profile")
    p.add_argument("what", choices=["ingest", "replay"])
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ticktape-prof-") as tmp:
        work = Path(tmp)
        stats = (profile_ingest if args.what == "ingest" else profile_replay)(args.count, work)
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
