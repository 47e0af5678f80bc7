"""K-way merge of sorted record-batch runs into archive order, one time slice at a time.

Archive order is ``(recv_ns, conn_id, seq)`` (DESIGN.md "replay: Merge"), with the stream's
position in the selection as a last, deterministic tie-break. Instead of a per-row heap, the
merge works on slices: with every run's buffered rows sorted, all rows strictly before the
smallest "last buffered ``recv_ns``" of the unfinished runs (the watermark) can no longer be
preceded by anything unread, so they are cut from every buffer, concatenated and sorted
with one vectorised Arrow sort.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Generator, Iterable, Iterator, Sequence
from itertools import islice
from operator import lt
from typing import Literal, cast

import pyarrow as pa
import pyarrow.compute as pc

from replay._archive import Archive, Partition

STREAM_INDEX = "stream_idx"
"""Column added by the merge: index of the row's stream in the selection."""
SORT_KEYS: list[tuple[str, Literal["ascending", "descending"]]] = [
    ("recv_ns", "ascending"),
    ("conn_id", "ascending"),
    ("seq", "ascending"),
    (STREAM_INDEX, "ascending"),
]


def _sorted(table: pa.Table) -> pa.Table:
    """``table`` in archive order; free when ``recv_ns`` strictly increases (no ties)."""
    recv = table.column("recv_ns")
    n = table.num_rows
    if n > 1 and not pc.all(pc.greater(recv.slice(1), recv.slice(0, n - 1))).as_py():
        return table.combine_chunks().sort_by(SORT_KEYS)
    return table


class _Run:
    """One sorted sequence of batches (consecutive, non-overlapping partitions of a stream).

    ``recv`` mirrors the buffer's ``recv_ns`` as a Python list (from ``pos``), so watermark
    cuts are a bisect, not Arrow calls: in a reader thread every Arrow call releases and
    re-takes the GIL, and each re-take can wait a whole switch interval.
    """

    __slots__ = ("batches", "buffer", "done", "index", "pos", "recv")

    def __init__(self, index: int, batches: Iterator[pa.RecordBatch]) -> None:
        self.index = index
        self.batches = batches
        self.buffer: pa.Table | None = None
        self.recv: list[int] = []
        self.pos = 0
        self.done = False

    def pull(self) -> None:
        """Append the next batch to the buffer, or mark the run finished."""
        for batch in self.batches:
            if batch.num_rows == 0:
                continue
            idx = pa.repeat(pa.scalar(self.index, pa.int32()), batch.num_rows)
            table = pa.Table.from_batches([batch]).append_column(STREAM_INDEX, idx)
            recv = cast(list[int], table.column("recv_ns").to_pylist())
            if not all(map(lt, recv, islice(recv, 1, None))):  # ties or disorder
                table = table.combine_chunks().sort_by(SORT_KEYS)
                recv = cast(list[int], table.column("recv_ns").to_pylist())
            if self.buffer is None:
                self.buffer, self.recv = table, recv
            else:
                self.buffer = pa.concat_tables([self.buffer, table])
                self.recv = self.recv[self.pos:] + recv
            self.pos = 0
            return
        self.done = True

    def last_recv(self) -> int:
        return self.recv[-1]

    def cut_before(self, watermark: int | None) -> pa.Table | None:
        """Remove and return the buffered rows with ``recv_ns < watermark`` (all if None)."""
        buf = self.buffer
        if buf is None or buf.num_rows == 0:
            return None
        if watermark is None:
            self.buffer = None
            return buf
        n = bisect_left(self.recv, watermark, self.pos) - self.pos
        if not n:
            return None
        self.pos += n
        self.buffer = buf.slice(n) if n < buf.num_rows else None
        return buf.slice(0, n)


def merge_runs(
    runs: Sequence[tuple[int, Iterator[pa.RecordBatch]]],
) -> Generator[pa.Table, None, None]:
    """Merge ``(stream_index, batches)`` runs, each sorted by ``recv_ns``, into sorted tables.

    Every yielded table is sorted by ``(recv_ns, conn_id, seq, stream_idx)`` and starts at or
    after the end of the previous one. Only a few batches per run are held in memory.
    """
    states = [_Run(index, batches) for index, batches in runs]
    try:
        yield from _merge_states(states)
    finally:
        for _, batches in runs:  # close partition files of runs not read to the end
            close = getattr(batches, "close", None)
            if close is not None:
                close()


def _merge_states(states: list[_Run]) -> Iterator[pa.Table]:
    while True:
        for run in states:
            if not run.done and (run.buffer is None or run.buffer.num_rows == 0):
                run.pull()
        live = [run for run in states if not run.done]
        watermark = min((run.last_recv() for run in live), default=None)
        pieces = [p for run in states if (p := run.cut_before(watermark)) is not None]
        if pieces:
            if len(pieces) == 1:
                yield _sorted(pieces[0])  # one run's rows: sorted unless recv_ns ties
            else:
                # Contiguous columns first: Arrow's take on many-chunk string columns is slow.
                yield pa.concat_tables(pieces).combine_chunks().sort_by(SORT_KEYS)
        if watermark is None:
            return
        for run in live:
            if run.last_recv() == watermark:
                run.pull()
        states = [run for run in states if not run.done or run.buffer is not None]


def chain_partitions(parts: Iterable[Partition]) -> list[list[Partition]]:
    """Group a stream's partitions into runs of consecutive, non-overlapping files.

    Partitions of one recorder follow each other; overlapping ones (e.g. two redundant
    recorders) go to separate runs so the merge orders their rows correctly.
    """
    chains: list[list[Partition]] = []
    for part in sorted(parts, key=lambda p: (p.first_ns, p.last_ns, p.path)):
        for chain in chains:
            if chain[-1].last_ns <= part.first_ns:
                chain.append(part)
                break
        else:
            chains.append([part])
    return chains


def read_chain(
    archive: Archive,
    chain: Sequence[Partition],
    columns: Sequence[str],
    start: int | None,
    end: int | None,
) -> Iterator[pa.RecordBatch]:
    """Batches of the partitions of one chain, in order, clipped to ``[start, end)``."""
    for part in chain:
        yield from archive.read_batches(part, columns, start, end)


def merge_archive(
    archive: Archive,
    streams: Sequence[str],
    start: int | None = None,
    end: int | None = None,
    columns: Sequence[str] = ("recv_ns", "conn_id", "seq", "source", "raw"),
) -> Generator[pa.Table, None, None]:
    """Merged, sorted tables of ``streams`` (canonical names) over ``[start, end)``.

    The ``stream_idx`` column indexes ``streams``. Partitions are opened lazily, one chain
    at a time per stream.
    """
    runs: list[tuple[int, Iterator[pa.RecordBatch]]] = []
    for index, stream in enumerate(streams):
        for chain in chain_partitions(archive.partitions(stream, start, end)):
            runs.append((index, read_chain(archive, chain, columns, start, end)))
    return merge_runs(runs)


__all__ = ["SORT_KEYS", "STREAM_INDEX", "chain_partitions", "merge_archive", "merge_runs"]
