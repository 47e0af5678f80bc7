"""Wall-clock pacing of recorded timestamps: original timing, compressed, or flat out.

Every event has a deadline computed from the schedule, ``t0_wall + (recv_ns - t0_rec) /
speed``, never from the previous event's delivery, so lateness cannot accumulate (no drift).
Waiting is ``asyncio.sleep`` until about ``spin_ns`` before the deadline (epoll rounds timeouts
to whole milliseconds, so a bare sleep is ~1 ms late at p99), then ``time.sleep`` (a
high-resolution ``clock_nanosleep``, which frees the CPU and the GIL) until
:data:`FINE_SPIN_NS` before it, then a busy-wait on ``time.perf_counter_ns`` for the last
microseconds. The event loop is blocked for the last ``spin_ns`` either way; sleeping instead
of spinning through most of it keeps the CPU cost low, which also keeps the loop's thread
favoured by the OS scheduler on a loaded machine. :class:`PacerStats` reports the process CPU
time used per second of wall time.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass

DEFAULT_SPIN_NS = 1_500_000
"""Leave the event loop for the last 1.5 ms before a deadline (one epoll tick plus slack)."""
FINE_SPIN_NS = 150_000
"""Busy-wait the last 150 us (a thread's default timer slack is 50 us, plus wake-up time)."""


@dataclass(frozen=True, slots=True)
class PacerStats:
    """Lateness (delivery instant minus schedule deadline) of every paced event, in ns."""

    events: int
    p50_ns: int
    p99_ns: int
    max_ns: int
    wall_s: float
    cpu_s: float

    @property
    def cpu_share(self) -> float:
        """Process CPU seconds per wall second while pacing (1.0 = one core busy)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class LatenessHistogram:
    """Lateness counts in 1 us buckets up to 100 ms (constant memory for any replay length)."""

    BUCKET_NS = 1_000
    BUCKETS = 100_000

    def __init__(self) -> None:
        self.counts = array("q", bytes(8 * (self.BUCKETS + 1)))
        self.events = 0
        self.max_ns = 0

    def add(self, late_ns: int) -> None:
        """Count one event ``late_ns`` after its deadline."""
        self.counts[min(max(late_ns, 0) // self.BUCKET_NS, self.BUCKETS)] += 1
        self.events += 1
        if late_ns > self.max_ns:
            self.max_ns = late_ns

    def percentile(self, q: float) -> int:
        """Upper edge (ns) of the bucket holding the ``q`` quantile; the max past 100 ms."""
        if not self.events:
            return 0
        rank = max(1, round(q * self.events))
        seen = 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                if bucket == self.BUCKETS:
                    return self.max_ns
                return min((bucket + 1) * self.BUCKET_NS, self.max_ns)
        return self.max_ns


class Pacer:
    """Releases events at ``speed`` times their original pace (``speed == 0``: no waiting).

    The first :meth:`wait` anchors the schedule: its timestamp is delivered at once, every
    later one ``(recv_ns - first) / speed`` after that instant.
    """

    def __init__(
        self, speed: float = 1.0, spin_ns: int = DEFAULT_SPIN_NS, record: bool = True
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, not {speed}")
        self.speed = speed
        self.spin_ns = spin_ns
        self.record = record
        self._t0_wall: int | None = None
        self._t0_rec = 0
        self._cpu0 = 0.0
        self.lateness = LatenessHistogram()

    @property
    def started(self) -> bool:
        """True once the schedule is anchored."""
        return self._t0_wall is not None

    def anchor(self, recv_ns: int) -> None:
        """Start the schedule now, at recorded instant ``recv_ns``."""
        self._t0_wall = time.perf_counter_ns()
        self._t0_rec = recv_ns
        self._cpu0 = time.process_time()

    def deadline(self, recv_ns: int) -> int:
        """``perf_counter_ns`` instant at which ``recv_ns`` is due."""
        if self._t0_wall is None:
            self.anchor(recv_ns)
        assert self._t0_wall is not None
        if self.speed == 0:
            return self._t0_wall
        return self._t0_wall + int((recv_ns - self._t0_rec) / self.speed)

    def replay_clock_ns(self) -> int:
        """The recorded instant that corresponds to now (the replay clock)."""
        if self._t0_wall is None or self.speed == 0:
            return self._t0_rec
        return self._t0_rec + int((time.perf_counter_ns() - self._t0_wall) * self.speed)

    async def wait(self, recv_ns: int) -> None:
        """Return at the deadline of ``recv_ns`` (immediately at speed 0 or when late)."""
        if self.speed == 0:
            return
        due = self.deadline(recv_ns)
        now = time.perf_counter_ns()
        if due - now > self.spin_ns:
            await asyncio.sleep((due - now - self.spin_ns) / 1e9)
            now = time.perf_counter_ns()
        if due - now > FINE_SPIN_NS:
            time.sleep((due - now - FINE_SPIN_NS) / 1e9)
            now = time.perf_counter_ns()
        while now < due:
            now = time.perf_counter_ns()
        if self.record:
            self.lateness.add(now - due)

    def stats(self) -> PacerStats:
        """Lateness percentiles (1 us resolution) and CPU cost so far."""
        hist = self.lateness
        wall = (time.perf_counter_ns() - self._t0_wall) / 1e9 if self._t0_wall else 0.0
        cpu = time.process_time() - self._cpu0 if self._t0_wall else 0.0
        return PacerStats(
            events=hist.events,
            p50_ns=hist.percentile(0.50),
            p99_ns=hist.percentile(0.99),
            max_ns=hist.max_ns,
            wall_s=wall,
            cpu_s=cpu,
        )


__all__ = ["DEFAULT_SPIN_NS", "FINE_SPIN_NS", "LatenessHistogram", "Pacer", "PacerStats"]
