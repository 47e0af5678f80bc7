"""Chaos: the sim injects random drops, stalls, pu breaks, aggTrade id skips, malformed and
binary frames and close codes, rotates connections every few seconds, while the recorder (a
real subprocess) is killed with -9 or stopped with SIGTERM and restarted at random.

Pass: ``ticktape check-loss`` proves every sent frame archived (byte-identical), backfilled or
inside a recorded gap; ``ticktape verify`` passes; peak RSS and fd count stay bounded; no
traceback in the recorder's logs. The short variant runs by default; the long one (10 min,
~5,000 msg/s, 50 streams) with ``pytest -m soak`` (``TICKTAPE_SOAK_SECONDS`` overrides 600).
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from tests.reliability_support import (
    RecorderProcess,
    SimProcess,
    chaos,
    recorder_toml,
    sim_faults,
    streams_for,
    ticktape,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
MAX_FDS = 200
"""Far above the ~15 a recorder with a few connections holds; a leak grows without bound."""
MAX_RSS_KB = 1_000_000


def _run(tmp_path: Path, *, seconds: float, rate: float, symbols: tuple[str, ...],
         fault_every: float, kill_every: float, seed: int, rotate: str) -> dict[str, object]:
    sim = SimProcess(tmp_path, rate=rate, symbols=symbols, faults=sim_faults(fault_every),
                     max_conn_age=5.0, seed=seed)
    try:
        config = recorder_toml(tmp_path / "recorder.toml", archive=tmp_path / "archive",
                               streams=streams_for(symbols, 10 * len(symbols)),
                               ws_url=sim.ws_url, rest_url=sim.rest_url, rotate=rotate,
                               rotate_after="3s")
        recorder = RecorderProcess(tmp_path, config)
        result = chaos(recorder, seconds, kill_every=kill_every, seed=seed)
    finally:
        sim_out = sim.stop()
    logs = recorder.logs()
    assert "Traceback" not in logs, logs[-4000:]
    assert "Traceback" not in sim_out, sim_out[-4000:]
    # SIGKILL exits -9; every SIGTERM (and the final stop) exits 0 after sealing.
    assert recorder.exit_codes.count(-9) == result.kills
    assert recorder.exit_codes.count(0) == result.terms + 1

    limit = max(120.0, 2 * seconds)
    verify = ticktape("verify", "--archive", str(tmp_path / "archive"), timeout=limit)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr
    # max latency: a frame lost on a dying connection must fall in a gap that starts within
    # the idle timeout (2 s) plus scheduling slack.
    check = ticktape("check-loss", "--send-log", str(sim.send_log), "--archive",
                     str(tmp_path / "archive"), "--until", str(result.stop_ns),
                     "--max-latency-s", "4", "--skew-ms", "200", "--format", "json",
                     timeout=limit)
    report = orjson.loads(check.stdout)
    total = report["total"]
    print("check-loss total:", total, "gaps:", report["gaps"])
    assert check.returncode == 0, f"{total} {report['holes'][:5]} {check.stderr}"
    assert report["ok"] and total["holes"] == 0 and total["duplicates"] == 0
    assert total["archived"] > 0.9 * total["messages"]
    assert report["gaps"] > 0

    peak_rss = max(r.vm_hwm_kb for r in recorder.runs)
    fds = [n for r in recorder.runs for n in r.fd_samples]
    assert 0 < peak_rss < MAX_RSS_KB
    assert fds and max(fds) < MAX_FDS
    figures = {"seconds": seconds, "restarts": len(recorder.runs) - 1, "kill9": result.kills,
               "sigterm": result.terms, "sent": total["sent"], "messages": total["messages"],
               "archived": total["archived"], "backfilled": total["backfilled"],
               "in_gap": total["in_gap"], "gaps": report["gaps"], "max_rss_kb": peak_rss,
               "max_fds": max(fds), "min_fds": min(fds)}
    print("chaos figures:", figures)
    return figures


def test_chaos_short(tmp_path: Path) -> None:
    figures = _run(tmp_path, seconds=14.0, rate=800.0, symbols=SYMBOLS[:2], fault_every=3.0,
                   kill_every=3.0, seed=5, rotate="5s")
    assert figures["kill9"] and figures["sigterm"]


SOAK_SECONDS = float(os.environ.get("TICKTAPE_SOAK_SECONDS", "600"))


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECONDS * 3 + 300)
def test_chaos_soak(tmp_path: Path) -> None:
    _run(tmp_path, seconds=SOAK_SECONDS, rate=9000.0, symbols=SYMBOLS, fault_every=3.0,
         kill_every=20.0, seed=11, rotate="1m")
