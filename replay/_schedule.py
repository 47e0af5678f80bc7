"""Paced delivery (speed > 0) that does its heavy work while waiting, not while late.

Reading and sorting the next merged table runs in one worker thread (Arrow releases the GIL
for Parquet decoding and sorting; the merge keeps its own Python steps short, so the thread
rarely holds the GIL for long), one table ahead, at a lower OS priority than the event loop.
Turning rows into ``Message`` objects is done in small chunks, and only when the next
deadline is further away than a chunk costs, so a replay at speed 1 never makes a message
late by converting a 64k-row table at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from replay._pacer import Pacer
from replay._rows import EventChunker, PreparedTable
from schemas.message import Event, Gap, Message

CHUNK_ROWS = 64
"""Rows converted per step while pacing (~50-100 us of work)."""
MAX_READY = 4_096
"""Converted events kept ahead of the schedule (few: they are all tracked by the GC)."""
READER_NICE = 10
"""OS niceness of the paced reader thread (Linux)."""
_SLACK_NS = 50_000


SWITCH_INTERVAL_S = 0.0005
"""CPython's GIL switch interval while a replay runs (the default is 5 ms)."""
_T = TypeVar("_T")
_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextlib.contextmanager
def gil_handoff(interval_s: float | None = None) -> Iterator[None]:
    """Lower ``sys.setswitchinterval`` to ``interval_s`` for the block, then restore it.

    A thread that wants the GIL while another runs Python waits up to the switch interval
    before CPython makes the holder yield. The reader thread re-takes the GIL after every
    Arrow call (dozens per table; restoring ``raw`` of a batch takes ~70), so at speed 0
    (the loop always busy) each re-take after a long call could stall it 5 ms, and at speed
    1 the loop, waking for a deadline, could wait as long behind the reader. The setting is
    process-wide: nested and concurrent replays share it, and the value found by the first
    one is restored by the last one.
    """
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            wanted = SWITCH_INTERVAL_S if interval_s is None else interval_s
            sys.setswitchinterval(min(wanted, _switch_saved))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


class TablePrefetch(Generic[_T]):
    """Reads the next merged table in a worker thread while the current one is used.

    Parquet decoding and Arrow sorting release the GIL, so reading overlaps the Python work
    on the previous table. Always :meth:`aclose` it (it waits for a read in flight, then
    closes ``tables`` if it has a ``close``).
    """

    def __init__(self, tables: Iterator[_T]) -> None:
        self.tables = tables
        self._fetch: asyncio.Future[_T | None] | None = None

    def _start(self) -> asyncio.Future[_T | None]:
        loop = asyncio.get_running_loop()
        self._fetch = loop.run_in_executor(None, next, self.tables, None)
        return self._fetch

    async def next(self) -> _T | None:
        """The next table, or ``None`` at the end."""
        # shield: a cancelled session must not mark the read done while the thread runs.
        table = await asyncio.shield(self._fetch or self._start())
        self._fetch = None
        if table is not None:
            self._start()
        return table

    async def aclose(self) -> None:
        """Wait for a read in flight, then close the merge (and its files)."""
        if self._fetch is not None and not self._fetch.done():
            await asyncio.wait([self._fetch])
        self._fetch = None
        close: Callable[[], None] | None = getattr(self.tables, "close", None)
        if close is not None:
            close()


def _lower_priority() -> None:
    """Run the calling thread at a lower OS priority (Linux: per-thread nice), if allowed.

    The reader thread is busy in bursts (a table every ~30 s at speed 1); on a loaded
    machine it must not take the CPU from the event loop at a deadline.
    """
    # Not Linux, or not permitted: keep the priority.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READER_NICE)


class PacedDelivery:
    """Delivers the events of ``tables`` to the callbacks at ``pacer``'s schedule.

    ``tables`` (prepared merged tables) is read one table ahead in a worker thread that runs
    at a lower OS priority; its rows are turned into events in chunks of
    :data:`CHUNK_ROWS`, only while the next deadline is further away than a chunk costs.
    """

    def __init__(
        self,
        tables: Iterator[PreparedTable],
        chunker: EventChunker,
        pacer: Pacer,
        anchor: int | None,
    ) -> None:
        self.tables = tables
        self.chunker = chunker
        self.pacer = pacer
        self.anchor = anchor
        self.messages = 0
        self.gaps = 0
        self._ready: deque[Event] = deque()
        self._cost_ns = 100_000
        self._exhausted = False
        self._fetch: asyncio.Future[PreparedTable | None] | None = None

    async def run(
        self,
        on_message: Callable[[Message], Awaitable[Any]],
        on_gap: Callable[[Gap], Awaitable[Any]],
    ) -> None:
        """Deliver everything; the worker thread and the table iterator are closed on exit."""
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(1, thread_name_prefix="ticktape-replay",
                                  initializer=_lower_priority)
        try:
            self._fetch = loop.run_in_executor(pool, next, self.tables, None)
            await self._deliver(loop, pool, on_message, on_gap)
        finally:
            if self._fetch is not None and not self._fetch.done():
                await asyncio.wait([self._fetch])  # let the worker finish its read
            pool.shutdown(wait=True)
            close = getattr(self.tables, "close", None)
            if close is not None:
                close()

    async def _deliver(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: ThreadPoolExecutor,
        on_message: Callable[[Message], Awaitable[Any]],
        on_gap: Callable[[Gap], Awaitable[Any]],
    ) -> None:
        pacer, ready = self.pacer, self._ready
        while True:
            if not ready and not await self._fill(loop, pool, block=True):
                return
            event = ready.popleft()
            if isinstance(event, Message):
                at = event.recv_ns
            else:
                at = event.start_ns if self.anchor is None else max(event.start_ns, self.anchor)
            if not pacer.started:
                # The schedule starts at --start, else at the first event (message or gap).
                if self.anchor is None:
                    self.anchor = at
                pacer.anchor(self.anchor)
            due = pacer.deadline(at)
            # Use the time before the deadline to prepare what comes next.
            while (len(ready) < MAX_READY
                   and due - time.perf_counter_ns() > self._cost_ns + _SLACK_NS
                   and await self._fill(loop, pool, block=False)):
                pass
            await pacer.wait(at)
            if isinstance(event, Message):
                await on_message(event)
                self.messages += 1
            else:
                await on_gap(event)
                self.gaps += 1

    async def _fill(
        self, loop: asyncio.AbstractEventLoop, pool: ThreadPoolExecutor, block: bool
    ) -> bool:
        """Convert one chunk; False when nothing could be added (without waiting if not
        ``block``)."""
        chunker = self.chunker
        if not chunker.has_rows:
            if self._exhausted:
                tail = chunker.tail()
                self._ready.extend(tail)
                return bool(tail)
            fetch = self._fetch
            assert fetch is not None
            if not block and not fetch.done():
                return False
            table = await asyncio.shield(fetch)  # on cancel, run() waits for the read
            if table is None:
                self._fetch = None
                self._exhausted = True
                return await self._fill(loop, pool, block)
            chunker.feed(table)
            self._fetch = loop.run_in_executor(pool, next, self.tables, None)
            if not block:
                return True  # the deadline may be nearer now: check before converting
        t0 = time.perf_counter_ns()
        self._ready.extend(chunker.chunk(CHUNK_ROWS))
        spent = time.perf_counter_ns() - t0
        self._cost_ns = max(self._cost_ns * 7 // 8 + spent // 8, spent)
        return True


__all__ = ["CHUNK_ROWS", "MAX_READY", "SWITCH_INTERVAL_S", "PacedDelivery", "TablePrefetch",
           "gil_handoff"]
