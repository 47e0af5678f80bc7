"""Replay a selection of an archive through the one :class:`~schemas.handler.Handler` API.

``Replayer(archive, streams, start, end, speed).run(handler)`` delivers
:class:`~schemas.message.Message` and :class:`~schemas.message.Gap` in archive order
``(recv_ns, conn_id, seq)``, exactly as the live recorder delivers them, paced by
:class:`~replay._pacer.Pacer`. A gap is delivered before the first message with
``recv_ns >= gap.start_ns`` (DESIGN.md "replay: Merge").
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa

from replay._archive import BASE_COLUMNS, Archive
from replay._hash import ContentHasher
from replay._merge import STREAM_INDEX, merge_archive
from replay._pacer import DEFAULT_SPIN_NS, Pacer, PacerStats
from replay._times import TimeLike, parse_time
from schemas.errors import ArchiveError, ConfigError
from schemas.handler import HandlerLike, as_handler
from schemas.message import Event, Gap, Message, Source
from schemas.streams import parse_stream, parse_stream_list

_SOURCES = {s.value: s for s in Source}
_new = Message.__new__
# Message is slotted and immutable (its __setattr__ raises); building one through the slot
# descriptors gives the same object as Message(...) at ~60% of the cost, which is what lets
# a replay reach >= 500k messages/s.
_SET = [
    Message.__dict__[name].__set__
    for name in ("stream", "recv_ns", "raw", "conn_id", "seq", "source", "_data")
]


def ints(column: pa.ChunkedArray[Any] | pa.Array[Any]) -> list[int]:
    """A non-null integer column as a Python list."""
    return cast(list[int], column.to_pylist())


def _make_messages(table: pa.Table, names: list[str]) -> list[Message]:
    """The rows of a merged table as :class:`Message` objects, in order."""
    raws = table.column("raw")
    if raws.null_count:
        raise ArchiveError(
            f"{raws.null_count} row(s) without stored raw text in "
            f"{sorted({names[i] for i in set(ints(table.column(STREAM_INDEX)))})}"
        )
    s_stream, s_recv, s_raw, s_conn, s_seq, s_source, s_data = _SET
    out: list[Message] = []
    append = out.append
    for idx, recv, raw, conn, seq, src in zip(
        ints(table.column(STREAM_INDEX)),
        ints(table.column("recv_ns")),
        raws.to_pylist(),
        table.column("conn_id").to_pylist(),
        table.column("seq").to_pylist(),
        table.column("source").to_pylist(),
        strict=True,
    ):
        msg = _new(Message)
        s_stream(msg, names[idx])
        s_recv(msg, recv)
        s_raw(msg, raw)
        s_conn(msg, conn)
        s_seq(msg, seq)
        s_source(msg, _SOURCES.get(src, Source.WS))
        s_data(msg, None)
        append(msg)
    return out


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What one :meth:`Replayer.run` delivered."""

    messages: int
    gaps: int
    pacing: PacerStats | None
    """Lateness and CPU cost of pacing; ``None`` at speed 0."""


def _select_streams(archive: Archive, streams: Iterable[str] | str | None) -> list[str]:
    if streams is None:
        return archive.streams()
    if isinstance(streams, str):
        return sorted(s.name for s in parse_stream_list(streams))
    return sorted({parse_stream(s).name for s in streams})


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

    def tables(self) -> Iterator[pa.Table]:
        """Merged, sorted Arrow tables (columns of :data:`BASE_COLUMNS` plus ``stream_idx``)."""
        return merge_archive(self.archive, self.streams, self.start, self.end, BASE_COLUMNS)

    def gaps(self) -> list[Gap]:
        """The recorded gaps of the selection, by start time."""
        if not self.with_gaps or not self.streams:
            return []
        return self.archive.gaps(self.streams, self.start, self.end)

    def events(self) -> Iterator[Event]:
        """Every message and gap in delivery order, unpaced (a plain generator)."""
        gaps = self.gaps()
        gi = 0
        for table in self.tables():
            msgs = _make_messages(table, self.streams)
            recv = ints(table.column("recv_ns"))
            i = 0
            while gi < len(gaps) and gaps[gi].start_ns <= recv[-1]:
                j = bisect_left(recv, gaps[gi].start_ns, i)
                yield from msgs[i:j]
                yield gaps[gi]
                gi += 1
                i = j
            yield from msgs[i:]
        yield from gaps[gi:]

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

    async def run(self, handler: HandlerLike) -> ReplayStats:
        """Deliver the selection to ``handler`` (an object or a plain callable), paced."""
        target = as_handler(handler)
        on_message = target.on_message
        on_gap = target.on_gap
        pacer = Pacer(self.speed, self.spin_ns) if self.speed > 0 else None
        gaps = self.gaps()
        gi = n_msgs = n_gaps = 0
        anchor = self.start
        wait: Callable[[int], Any] | None = pacer.wait if pacer is not None else None
        for table in self.tables():
            msgs = _make_messages(table, self.streams)
            recv = ints(table.column("recv_ns"))
            if pacer is not None and not pacer.started:
                # The schedule starts at --start, else at the first event (message or gap).
                if anchor is None:
                    anchor = min(recv[0], gaps[0].start_ns) if gaps else recv[0]
                pacer.anchor(anchor)
            i = 0
            while i < len(msgs):
                j = len(msgs)
                gap = None
                if gi < len(gaps) and gaps[gi].start_ns <= recv[-1]:
                    gap = gaps[gi]
                    j = bisect_left(recv, gap.start_ns, i)
                if wait is None:
                    for msg in msgs[i:j]:
                        await on_message(msg)
                else:
                    for msg in msgs[i:j]:
                        await wait(msg.recv_ns)
                        await on_message(msg)
                n_msgs += j - i
                i = j
                if gap is not None:
                    if wait is not None:
                        await wait(max(gap.start_ns, anchor or gap.start_ns))
                    await on_gap(gap)
                    gi += 1
                    n_gaps += 1
        for gap in gaps[gi:]:
            if pacer is not None:
                if not pacer.started:
                    pacer.anchor(anchor if anchor is not None else gap.start_ns)
                await pacer.wait(max(gap.start_ns, anchor or gap.start_ns))
            await on_gap(gap)
            n_gaps += 1
        stats = ReplayStats(n_msgs, n_gaps, pacer.stats() if pacer is not None else None)
        self.last_stats = stats
        return stats


__all__ = ["ReplayStats", "Replayer"]
