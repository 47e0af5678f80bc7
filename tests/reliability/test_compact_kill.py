"""kill -9 during ``compact`` at random moments: the archive stays verifiable, every row once."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from replay._catalog import connect
from replay._checksum import content_checksum, logical_batch, logical_schema
from replay._compact import compact
from replay._partitions import list_archive
from replay._verify import verify
from schemas.tables import table_for
from tests.tools_support import T0, agg_trades, book_tickers, quarter_hours

SEC = 1_000_000_000
DAY = 86_400 * SEC
NOW = T0 + 3 * DAY
STREAMS = {"btcusdt@aggTrade": 720, "ethusdt@bookTicker": 480}
REPO = Path(__file__).resolve().parents[2]
CHILD = (
    "import sys, time\n"
    "from replay._compact import compact\n"
    "print('ready', flush=True)\n"
    "t = time.perf_counter()\n"
    f"compact(sys.argv[1], now_ns={NOW})\n"
    "print('done', time.perf_counter() - t, flush=True)\n"
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kill") / "arc"
    # Twelve hours of quarter-hour partitions per stream (48 files each).
    quarter_hours(root, agg_trades("btcusdt", T0, 720, 60 * SEC), "btcusdt@aggTrade")
    quarter_hours(root, book_tickers("ethusdt", T0, 480, 90 * SEC), "ethusdt@bookTicker")
    return root


def _checksums(root: Path) -> dict[str, str]:
    out = {}
    listing = list_archive(root)
    for stream in STREAMS:
        schema = table_for(stream).schema
        parts = listing.partitions(stream)
        batches = [logical_batch(stream, pq.read_table(p.path, schema=schema)) for p in parts]
        out[stream] = content_checksum(batches, logical_schema(stream))
    return out


def _spawn(root: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)


def _assert_consistent(root: Path) -> None:
    report = verify(root)
    assert report.ok, report.problems
    con = connect(root)
    try:
        for stream, n in STREAMS.items():
            got = con.execute("SELECT count(*), count(DISTINCT recv_ns) FROM messages "
                              "WHERE stream = ?", [stream]).fetchone()
            assert got == (n, n), (stream, got)
    finally:
        con.close()


def test_kill_9_at_random_moments(template: Path, tmp_path: Path) -> None:
    expected = _checksums(template)
    initial = len(list_archive(template).partitions())
    # Calibrate: how long does an uninterrupted compaction of this archive take here?
    probe = Path(shutil.copytree(template, tmp_path / "probe"))
    child = _spawn(probe)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    duration = float(out.split()[-1])
    rng = random.Random(20240808)
    states = []
    for i in range(4):
        root = Path(shutil.copytree(template, tmp_path / f"run{i}"))
        child = _spawn(root)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, duration))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        listing = list_archive(root)
        states.append((len(listing.superseded), (root / ".compact").is_dir() and any(
            (root / ".compact").iterdir()), sum(len(v) for v in listing.live.values())))
        _assert_consistent(root)
        # A rerun finishes the job: one file per stream-day, same content.
        compact(root, now_ns=NOW)
        _assert_consistent(root)
        assert all(len(v) == 1 for v in list_archive(root).live.values())
        assert verify(root).notes == []
        assert _checksums(root) == expected
    print("kill states (superseded, staged, live files):", states)
    # At least one kill must have interrupted the work (not before it, not after it).
    assert any(2 < live < initial or old or staged for old, staged, live in states), states
