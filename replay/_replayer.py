"""Replay a selection of an archive through the one :class:`~schemas.handler.Handler` API.

``Replayer(archive, streams, start, end, speed).run(handler)`` delivers
:class:`~schemas.message.Message` and :class:`~schemas.message.Gap` in archive order
``(recv_ns, conn_id, seq)``, exactly as the live recorder delivers them, paced by
:class:`~replay._pacer.Pacer`. A gap is delivered before the first message with
``recv_ns >= gap.start_ns`` (DESIGN.md "replay: Merge").
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from replay._archive import BASE_COLUMNS, Archive
from replay._hash import ContentHasher
from replay._merge import STREAM_INDEX, merge_archive
from replay._pacer import DEFAULT_SPIN_NS, Pacer, PacerStats
from replay._rows import EventChunker, ints, prepared
from replay._schedule import PacedDelivery, TablePrefetch, gil_handoff
from replay._times import TimeLike, parse_time
from schemas.errors import ArchiveError, ConfigError
from schemas.handler import CallableHandler, HandlerLike, as_handler
from schemas.message import Event, Gap, Message
from schemas.streams import parse_stream, parse_stream_list

BULK_ROWS = 512
"""Rows turned into messages at a time at speed 0: their objects stay in the CPU cache."""
READAHEAD_THREADS = 2
"""Threads reading runs ahead at speed 0 (decoding and restoring ``raw`` in parallel)."""


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What one :meth:`Replayer.run` delivered."""

    messages: int
    gaps: int
    pacing: PacerStats | None
    """Lateness and CPU cost of pacing; ``None`` at speed 0."""


def _select_streams(archive: Archive, streams: Iterable[str] | str | None) -> list[str]:
    recorded = archive.streams()
    if streams is None:
        return recorded
    if isinstance(streams, str):
        chosen = sorted(s.name for s in parse_stream_list(streams))
    else:
        chosen = sorted({parse_stream(s).name for s in streams})
    unknown = [s for s in chosen if s not in recorded]
    if unknown:
        raise ArchiveError(
            f"stream(s) not in archive {archive.root}: {', '.join(unknown)} "
            f"(recorded: {', '.join(recorded) or 'none'})"
        )
    return chosen


class Replayer:
    """One replay selection: ``streams`` (default: all) of ``archive`` over ``[start, end)``.

    ``archive`` is an :class:`Archive` or a path. ``start``/``end`` accept epoch ns, ISO-8601
    UTC or a ``datetime``. ``speed`` 1 keeps the original inter-arrival times, N compresses
    them N times, 0 delivers as fast as possible. A replayer can be run any number of times.
    """

    def __init__(
        self,
        archive: Archive | str | os.PathLike[str],
        streams: Iterable[str] | str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        speed: float = 1.0,
        *,
        gaps: bool = True,
        spin_ns: int = DEFAULT_SPIN_NS,
    ) -> None:
        if speed < 0:
            raise ConfigError(f"--speed must be >= 0, not {speed}")
        self.archive = archive if isinstance(archive, Archive) else Archive(archive)
        self.streams = _select_streams(self.archive, streams)
        self.start = parse_time(start)
        self.end = parse_time(end)
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ConfigError("--end must be after --start")
        self.speed = speed
        self.with_gaps = gaps
        self.spin_ns = spin_ns
        self.last_stats: ReplayStats | None = None

    def tables(self) -> Generator[pa.Table, None, None]:
        """Merged, sorted Arrow tables (columns of :data:`BASE_COLUMNS` plus ``stream_idx``)."""
        return merge_archive(self.archive, self.streams, self.start, self.end, BASE_COLUMNS)

    def gaps(self) -> list[Gap]:
        """The recorded gaps of the selection, by start time."""
        if not self.with_gaps or not self.streams:
            return []
        return self.archive.gaps(self.streams, self.start, self.end)

    def events(self) -> Iterator[Event]:
        """Every message and gap in delivery order, unpaced (a plain generator)."""
        chunker = EventChunker(self.streams, self.gaps())
        for table in self.tables():
            chunker.feed(table)
            while chunker.has_rows:
                yield from chunker.chunk(BULK_ROWS)
        yield from chunker.tail()

    def content_hash(self) -> str:
        """SHA-256 over ``(stream, recv_ns, raw)`` of every selected message, in order.

        Equal to :class:`~replay._hash.HashingHandler`'s digest after :meth:`run`.
        """
        hasher = ContentHasher()
        add = hasher.add
        for table in self.tables():
            names = self.streams
            for idx, recv, raw in zip(
                ints(table.column(STREAM_INDEX)),
                ints(table.column("recv_ns")),
                table.column("raw").to_pylist(),
                strict=True,
            ):
                if raw is None:
                    raise ArchiveError(f"row without stored raw text in {names[idx]}")
                add(names[idx], recv, raw)
        return hasher.hexdigest()

    async def _flat_out(
        self,
        chunker: EventChunker,
        on_message: Callable[[Message], Awaitable[Any]],
        on_gap: Callable[[Gap], Awaitable[Any]],
    ) -> tuple[int, int]:
        """Speed 0: deliver as fast as the handler takes it; ``(messages, gaps)``."""
        n_msgs = n_gaps = 0
        merged = merge_archive(self.archive, self.streams, self.start, self.end, BASE_COLUMNS,
                               readahead=READAHEAD_THREADS)
        feed = TablePrefetch(prepared(merged, self.streams))
        try:
            while (table := await feed.next()) is not None:
                chunker.feed(table)
                while chunker.has_rows:
                    for msgs, gap in chunker.segments(BULK_ROWS):
                        for msg in msgs:
                            await on_message(msg)
                        n_msgs += len(msgs)
                        if gap is not None:
                            await on_gap(gap)
                            n_gaps += 1
        finally:
            await feed.aclose()
        for gap in chunker.tail():
            await on_gap(gap)
            n_gaps += 1
        return n_msgs, n_gaps

    async def run(self, handler: HandlerLike) -> ReplayStats:
        """Deliver the selection to ``handler`` (an object or a plain callable), paced."""
        target = as_handler(handler)
        on_message: Callable[[Message], Awaitable[Any]] = target.on_message
        if isinstance(target, CallableHandler) and inspect.iscoroutinefunction(target.func):
            on_message = target.func  # same call, without the adapter's per-message checks
        on_gap = target.on_gap
        chunker = EventChunker(self.streams, self.gaps())
        pacing = None
        with gil_handoff():
            if self.speed == 0:
                n_msgs, n_gaps = await self._flat_out(chunker, on_message, on_gap)
            else:
                pacer = Pacer(self.speed, self.spin_ns)
                delivery = PacedDelivery(prepared(self.tables(), self.streams), chunker, pacer,
                                         self.start)
                await delivery.run(on_message, on_gap)
                n_msgs, n_gaps, pacing = delivery.messages, delivery.gaps, pacer.stats()
        stats = ReplayStats(n_msgs, n_gaps, pacing)
        self.last_stats = stats
        return stats


__all__ = ["ReplayStats", "Replayer"]
