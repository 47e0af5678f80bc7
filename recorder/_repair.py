"""Repair: depth snapshots after depth gaps and on every (re)connect; aggTrade id backfill.

Binance rules (BINANCE.md sections 4 and 6):

* a diff-depth book must be resynced from ``GET /fapi/v1/depth`` after any break of the
  ``pu`` chain and after every reconnect, so a snapshot is stored as ``<symbol>@depthSnapshot``;
* aggTrade ids rise by one; a hole is refilled from ``GET /fapi/v1/aggTrades?fromId=``
  (inclusive, 1000 rows a page, 48 h of history) and its gap is written ``recovered``.

:func:`plan` is the pure decision (which gaps need which job); :class:`Repairer` runs the jobs
in one owned worker task, through a bounded queue, one job per symbol at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import orjson

from recorder._connection import MonotonicClock
from recorder._gaps import agg_hole
from recorder._rest import RestClient
from schemas.errors import ExchangeError, FatalExchangeError, StreamNameError
from schemas.message import Gap, GapKind, Message, Source
from schemas.streams import parse_stream

log = logging.getLogger("ticktape.recorder")

MAX_PAGE = 1000
MAX_QUEUED_JOBS = 1024


@dataclass(frozen=True, slots=True)
class SnapshotJob:
    """Fetch and store a depth snapshot of ``symbol`` (uppercase)."""

    symbol: str


@dataclass(frozen=True, slots=True)
class BackfillJob:
    """Fetch aggTrade ids ``[first, first + count)`` of ``stream``; then write ``gaps``."""

    stream: str
    first: int
    count: int
    gaps: tuple[Gap, ...]


Job = SnapshotJob | BackfillJob


def _stream_kind(stream: str) -> tuple[str, str | None]:
    try:
        name = parse_stream(stream)
    except StreamNameError:
        return "other", None
    if name.is_diff_depth:
        return "depth", name.symbol
    if name.channel == "aggTrade":
        return "agg", name.symbol
    return "other", name.symbol


def snapshot_symbols(streams: Iterable[str]) -> list[str]:
    """Symbols whose diff-depth streams need a snapshot at every (re)connect."""
    out: list[str] = []
    for stream in streams:
        kind, symbol = _stream_kind(stream)
        if kind == "depth" and symbol and symbol not in out:
            out.append(symbol)
    return out


def plan(gaps: Sequence[Gap]) -> tuple[list[Gap], list[Job]]:
    """Split gaps found together into those to write now and the repair jobs they need.

    Gaps of an aggTrade stream are held by the backfill job of that stream and written
    once it ends (``recovered`` if every missing id was fetched). A disconnect or silence
    gap of an aggTrade stream with no id hole lost nothing and is written ``recovered``.
    """
    write: list[Gap] = []
    jobs: list[Job] = []
    by_stream: dict[str, list[Gap]] = {}
    for gap in gaps:
        by_stream.setdefault(gap.stream, []).append(gap)
    for stream, group in by_stream.items():
        kind, symbol = _stream_kind(stream)
        if kind == "depth" and symbol:
            write.extend(group)
            jobs.append(SnapshotJob(symbol))
        elif kind == "agg":
            holes = [h for g in group if (h := agg_hole(g)) is not None]
            if holes:
                first = min(h[0] for h in holes)
                last = max(h[0] + h[1] for h in holes)
                jobs.append(BackfillJob(stream, first, last - first, tuple(group)))
            else:
                for g in group:
                    if g.kind in (GapKind.DISCONNECT, GapKind.SILENCE, GapKind.RECORDER_DOWN):
                        write.append(replace(g, recovered=True,
                                             detail=f"{g.detail}; no aggTrade id missing"))
                    else:
                        write.append(g)
        else:
            write.extend(group)
    return write, jobs


class Repairer:
    """Runs repair jobs; :meth:`run` is its one task, ended by :meth:`stop`."""

    def __init__(
        self,
        rest: RestClient,
        clock: MonotonicClock,
        store: Callable[[list[Message]], None],
        write_gap: Callable[[Gap], None],
        depth_limit: int = 1000,
        retries: int = 3,
        retry_delay_s: float = 1.0,
    ) -> None:
        self._rest = rest
        self._clock = clock
        self._store = store
        self._write_gap = write_gap
        self._depth_limit = depth_limit
        self._retries = retries
        self._retry_delay_s = retry_delay_s
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue(MAX_QUEUED_JOBS)
        self._queued_snapshots: set[str] = set()
        self.snapshots = 0
        self.backfilled = 0
        self.recovered_gaps = 0
        self.failed = 0
        self.dropped_jobs = 0
        self._stopping = False

    def on_gaps(self, gaps: Sequence[Gap]) -> None:
        """Write the gaps that need no repair and queue the jobs for the others."""
        write, jobs = plan(gaps)
        for gap in write:
            self._write_gap(gap)
        for job in jobs:
            self.submit(job)

    def on_live(self, streams: Iterable[str]) -> None:
        """A connection carrying ``streams`` became live: resync every diff-depth symbol."""
        for symbol in snapshot_symbols(streams):
            self.submit(SnapshotJob(symbol))

    def submit(self, job: Job) -> None:
        """Queue a job; a snapshot already queued for the symbol is not queued twice."""
        if isinstance(job, SnapshotJob):
            if job.symbol in self._queued_snapshots:
                return
            self._queued_snapshots.add(job.symbol)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped_jobs += 1
            if isinstance(job, BackfillJob):
                for gap in job.gaps:
                    self._write_gap(gap)
            else:
                self._queued_snapshots.discard(job.symbol)
            log.warning("repair queue full: dropped %s", job)

    @property
    def pending(self) -> int:
        """Jobs waiting."""
        return self._queue.qsize()

    def stop(self) -> None:
        """Let :meth:`run` finish after the jobs already queued (drained with no retries)."""
        self._stopping = True
        self._retries = 1
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def run(self) -> None:
        """Work through jobs until :meth:`stop`; pending backfill gaps are written on exit."""
        try:
            while True:
                job = await self._queue.get()
                if job is None:
                    break
                await self._run_job(job)
                if self._stopping and self._queue.empty():
                    break
        finally:
            while not self._queue.empty():
                leftover = self._queue.get_nowait()
                if isinstance(leftover, BackfillJob):
                    for gap in leftover.gaps:
                        self._write_gap(gap)

    async def _run_job(self, job: Job) -> None:
        for attempt in range(1, self._retries + 1):
            try:
                if isinstance(job, SnapshotJob):
                    self._queued_snapshots.discard(job.symbol)
                    await self._snapshot(job)
                else:
                    await self._backfill(job)
                return
            except ExchangeError as exc:
                log.warning("repair %s attempt %d failed: %s", job, attempt, exc)
                if isinstance(exc, FatalExchangeError) or attempt == self._retries:
                    break
                await asyncio.sleep(self._retry_delay_s * attempt)
        self.failed += 1
        if isinstance(job, BackfillJob):
            for gap in job.gaps:
                self._write_gap(gap)

    async def _snapshot(self, job: SnapshotJob) -> None:
        snap = await self._rest.depth_snapshot(job.symbol, self._depth_limit)
        stream = f"{job.symbol.lower()}@depthSnapshot"
        self._store([Message(stream, self._clock.now_ns(), snap.raw, source=Source.REST)])
        self.snapshots += 1

    async def _backfill(self, job: BackfillJob) -> None:
        symbol = parse_stream(job.stream).symbol or ""
        end = job.first + job.count
        next_id = job.first
        fetched: list[str] = []
        while next_id < end:
            rows = await self._rest.agg_trades(symbol, next_id, min(MAX_PAGE, end - next_id))
            if not rows:
                break
            progressed = False
            for row in rows:
                a = orjson.loads(row).get("a")
                if isinstance(a, int) and next_id <= a < end:
                    fetched.append(row)
                    next_id = a + 1
                    progressed = True
                elif isinstance(a, int) and a >= end:
                    next_id = end
            if not progressed:
                break
        if fetched:
            # Stamped when stored, not when fetched: websocket rows keep arriving while the
            # pages are fetched, and a partition's recv_ns must never go back.
            now = self._clock.now_ns()
            self._store([Message(job.stream, now, row, seq=n, source=Source.REST)
                         for n, row in enumerate(fetched, 1)])
            self.backfilled += len(fetched)
        complete = len(fetched) == job.count
        for gap in job.gaps:
            if complete:
                self.recovered_gaps += 1
                note = f"{gap.detail}; backfilled {len(fetched)} from REST"
                self._write_gap(replace(gap, recovered=True, detail=note))
            else:
                self._write_gap(replace(gap, detail=f"{gap.detail}; REST returned "
                                        f"{len(fetched)} of {job.count}"))


__all__ = ["BackfillJob", "Job", "Repairer", "SnapshotJob", "plan", "snapshot_symbols"]
