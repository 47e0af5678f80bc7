"""Paced delivery (speed > 0) that does its heavy work while waiting, not while late.

Reading and sorting the next merged table runs in one worker thread (Arrow releases the GIL
for Parquet decoding and sorting), one table ahead. Turning rows into ``Message`` objects is
done in small chunks, and only when the next deadline is further away than a chunk costs,
so a replay at speed 1 never makes a message late by converting a 64k-row table at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from replay._pacer import Pacer
from replay._rows import EventChunker
from schemas.message import Event, Gap, Message

CHUNK_ROWS = 64
"""Rows converted per step while pacing (~50-100 us of work)."""
MAX_READY = 50_000
"""Converted events kept ahead of the schedule."""
_SLACK_NS = 50_000


class TablePrefetch:
    """Reads the next merged table in a worker thread while the current one is used.

    Parquet decoding and Arrow sorting release the GIL, so reading overlaps the Python work
    on the previous table. Always :meth:`aclose` it (it waits for a read in flight).
    """

    def __init__(self, tables: Generator[pa.Table, None, None]) -> None:
        self.tables = tables
        self._fetch: asyncio.Future[pa.Table | None] | None = None

    def _start(self) -> asyncio.Future[pa.Table | None]:
        loop = asyncio.get_running_loop()
        self._fetch = loop.run_in_executor(None, next, self.tables, None)
        return self._fetch

    async def next(self) -> pa.Table | None:
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
        self.tables.close()


class PacedDelivery:
    """Delivers the events of ``tables`` to the callbacks at ``pacer``'s schedule."""

    def __init__(
        self,
        tables: Iterator[pa.Table],
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
        self._fetch: asyncio.Future[pa.Table | None] | None = None
        self._table: pa.Table | None = None
        self._table_off = 0

    async def run(
        self,
        on_message: Callable[[Message], Awaitable[Any]],
        on_gap: Callable[[Gap], Awaitable[Any]],
    ) -> None:
        """Deliver everything; the worker thread and the table iterator are closed on exit."""
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(1, thread_name_prefix="ticktape-replay")
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
            table = self._table
            if table is None or self._table_off >= table.num_rows:
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
                    self._table = None
                    return await self._fill(loop, pool, block)
                self._table, self._table_off = table, 0
                self._fetch = loop.run_in_executor(pool, next, self.tables, None)
            t0 = time.perf_counter_ns()
            chunker.feed(table.slice(self._table_off, CHUNK_ROWS))
            self._table_off += CHUNK_ROWS
        else:
            t0 = time.perf_counter_ns()
        self._ready.extend(chunker.chunk(CHUNK_ROWS))
        spent = time.perf_counter_ns() - t0
        self._cost_ns = max(self._cost_ns * 7 // 8 + spent // 8, spent)
        return True


__all__ = ["CHUNK_ROWS", "MAX_READY", "PacedDelivery", "TablePrefetch"]
