"""Replay at speed 1: lateness of each delivery against its original schedule, and CPU.

The handler stamps every delivery with ``perf_counter_ns``. Speed 1 fixes only the *relative*
schedule (``t0 + recv_ns - recv_ns_first``), so ``t0`` is taken as the one that makes the
earliest delivery exactly on time: lateness is ``(delivery - recv_ns) - min(delivery -
recv_ns)``, never negative, and a constant offset is not counted. This is what a user's
handler sees, independent of the pacer's own bookkeeping (reported beside it). Drift is the
median lateness of the last tenth of the run minus that of the first tenth (accumulating
error moves the median; the p99 of a tenth is dominated by machine noise).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchmarks._common import Config, Figure, Outcome, at_most, missing, percentile
from benchmarks._feed import STREAMS
from benchmarks._session import session_archive
from schemas.message import Event, Message

NAME = "replay1x"
KEYS = ["replay_1x_lateness_p50_us", "replay_1x_lateness_p99_us", "replay_1x_lateness_max_us",
        "replay_1x_cpu_pct"]
RATE = 2_000.0
"""Mean message rate of the recorded session (bursty: see ``benchmarks._feed``)."""


class LatenessProbe:
    """Handler that records ``delivery - schedule`` for every message, in ns."""

    def __init__(self) -> None:
        self.offsets: list[int] = []

    async def on_message(self, msg: Message) -> None:
        self.offsets.append(time.perf_counter_ns() - msg.recv_ns)

    @property
    def lateness(self) -> list[int]:
        """Per-message lateness in ns, in delivery order (see the module docstring)."""
        if not self.offsets:
            return []
        base = min(self.offsets)
        return [o - base for o in self.offsets]

    async def on_gap(self, gap: object) -> None:
        return None

    async def __call__(self, event: Event) -> None:
        if isinstance(event, Message):
            await self.on_message(event)


async def replay_paced(root: Path, probe: LatenessProbe) -> tuple[float, float, object]:
    """Run speed-1 replay; return (wall s, cpu s, pacer stats)."""
    from replay import Replayer

    replayer = Replayer(root, streams=list(STREAMS), speed=1.0)
    t0, c0 = time.perf_counter(), time.process_time()
    stats = await replayer.run(probe)
    return time.perf_counter() - t0, time.process_time() - c0, stats.pacing


def run(cfg: Config) -> Outcome:
    """Replay a session of realistic inter-arrival times at speed 1."""
    out = Outcome()
    seconds = cfg.pick(10, 90)
    reason = missing("replay._replayer")
    root = session_archive(cfg, int(seconds * RATE), RATE)
    if reason or isinstance(root, str):
        out.not_measured("replay speed 1 lateness p99", KEYS, reason or str(root), "us")
        return out
    probe = LatenessProbe()
    wall, cpu, pacing = asyncio.run(replay_paced(root, probe))
    values = probe.lateness
    ordered = sorted(values)
    p50, p99 = percentile(ordered, 50) / 1e3, percentile(ordered, 99) / 1e3
    worst = ordered[-1] / 1e3 if ordered else 0.0
    tenth = max(1, len(values) // 10)
    drift = (percentile(sorted(values[-tenth:]), 50) - percentile(sorted(values[:tenth]), 50)) / 1e3
    cpu_pct = 100 * cpu / wall if wall else 0.0
    out.figures.append(Figure(f"replay 1x lateness p99 ({len(values):,} msgs, {wall:.0f} s)",
                              p99, "us", None, "<= 100 us", at_most(p99, 100)))
    out.figures.append(Figure("replay 1x lateness p50 / max", p50, "us",
                              note=f"max {worst:,.0f} us"))
    out.figures.append(Figure("replay 1x drift (p50 last tenth - first tenth)", drift, "us",
                              goal="no drift (< 100 us)", passed=at_most(abs(drift), 100)))
    out.figures.append(Figure("replay 1x CPU", cpu_pct, "% of a core", goal="reported"))
    out.keys.update({
        "replay_1x_lateness_p50_us": round(p50, 1),
        "replay_1x_lateness_p99_us": round(p99, 1),
        "replay_1x_lateness_max_us": round(worst, 1),
        "replay_1x_cpu_pct": round(cpu_pct, 1),
        "replay_1x_drift_p50_us": round(drift, 1),
        "replay_1x_seconds": round(wall, 1),
    })
    p99_self = getattr(pacing, "p99_ns", None)
    if p99_self is not None:
        out.keys["replay_1x_pacer_self_p99_us"] = round(p99_self / 1e3, 1)
    return out


__all__ = ["NAME", "LatenessProbe", "run"]
