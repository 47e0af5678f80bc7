"""``ticktape demo`` end to end: sim -> record -> stats/gaps/query -> replay, then verify."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq


def _ticktape(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticktape", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180, check=False)


def test_demo_records_queries_replays_and_verifies(tmp_path: Path) -> None:
    archive = tmp_path / "demo"
    done = _ticktape("demo", "--archive", str(archive), "--seconds", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for section in ("1. simulated exchange", "2. recording", "3. stats", "4. gaps",
                    "5. 1-minute OHLCV", "6. replay", "Next:"):
        assert section in out
    assert "Traceback" not in done.stderr
    # The injected drop must have been recorded as data, not only logged.
    assert "disconnect" in out
    files = list((archive / "streams").rglob("*.parquet"))
    assert {f.parent.parent.name for f in files} >= {"stream=btcusdt@aggTrade",
                                                      "stream=ethusdt@bookTicker"}
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) > 100
    verified = _ticktape("verify", "--archive", str(archive), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_demo_refuses_to_empty_a_foreign_directory(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    done = _ticktape("demo", "--archive", str(target), "--seconds", "2", cwd=tmp_path)
    assert done.returncode != 0
    assert "not a ticktape archive" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (target / "thesis.tex").read_text() == "precious"
