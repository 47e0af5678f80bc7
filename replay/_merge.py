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
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from replay._archive import Archive, Partition

MAX_TABLE_ROWS = 65_536
"""Rows per merged table, about (see :func:`merge_runs`)."""
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


def _recv_view(recv: pa.Array[Any]) -> memoryview:
    """The values of a non-null ``int64`` array as a read-only sequence of Python ints."""
    view = memoryview(recv.buffers()[1]).cast("q")  # type: ignore[arg-type]
    return view[recv.offset : recv.offset + len(recv)]


class _Run:
    """One sorted sequence of batches (consecutive, non-overlapping partitions of a stream).

    ``recv`` is the buffer's ``recv_ns`` as one contiguous array and ``view`` a memoryview
    of its values (from ``pos``), so a watermark cut is a bisect, not a per-row conversion:
    in a reader thread, Python work holds the GIL and makes a paced event loop late, and
    every Arrow call releases and re-takes it (each re-take can wait a switch interval).
    """

    __slots__ = ("batches", "buffer", "done", "index", "pos", "recv", "view")

    def __init__(self, index: int, batches: Iterator[pa.RecordBatch]) -> None:
        self.index = index
        self.batches = batches
        self.buffer: pa.Table | None = None
        self.recv: pa.Array[Any] = pa.array([], pa.int64())
        self.view = _recv_view(self.recv)
        self.pos = 0
        self.done = False

    def pull(self) -> None:
        """Append the next batch to the buffer, or mark the run finished."""
        for batch in self.batches:
            n = batch.num_rows
            if n == 0:
                continue
            idx = pa.repeat(pa.scalar(self.index, pa.int32()), n)
            table = pa.Table.from_batches([batch]).append_column(STREAM_INDEX, idx)
            recv = table.column("recv_ns").combine_chunks()
            if n > 1 and not pc.all(pc.greater_equal(recv.slice(1), recv.slice(0, n - 1))).as_py():
                table = table.combine_chunks().sort_by(SORT_KEYS)  # disorder in a file
                recv = table.column("recv_ns").combine_chunks()
            if self.buffer is None:
                self.buffer, self.recv = table, recv
            else:
                self.buffer = pa.concat_tables([self.buffer, table])
                self.recv = pa.concat_arrays([self.recv.slice(self.pos), recv])
            self.view = _recv_view(self.recv)
            self.pos = 0
            return
        self.done = True

    def last_recv(self) -> int:
        return int(self.view[-1])

    def cut_before(self, watermark: int | None) -> pa.Table | None:
        """Remove and return the buffered rows with ``recv_ns < watermark`` (all if None)."""
        buf = self.buffer
        if buf is None or buf.num_rows == 0:
            return None
        if watermark is None:
            self.buffer = None
            return buf
        n = bisect_left(self.view, watermark, self.pos) - self.pos
        if not n:
            return None
        self.pos += n
        self.buffer = buf.slice(n) if n < buf.num_rows else None
        return buf.slice(0, n)


class _ReadAhead:
    """Iterates ``batches`` with its next batch always being read in ``pool``.

    Decoding (and restoring ``raw``) of different runs then proceeds in parallel: Arrow
    releases the GIL for it. :meth:`close` waits for the read in flight.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], pool: ThreadPoolExecutor) -> None:
        self.batches = batches
        self.pool = pool
        self._next: Future[pa.RecordBatch | None] | None = pool.submit(next, batches, None)

    def __iter__(self) -> _ReadAhead:
        return self

    def __next__(self) -> pa.RecordBatch:
        fetch = self._next
        if fetch is None:
            raise StopIteration
        self._next = None
        batch = fetch.result()  # a read error surfaces here, in order
        if batch is None:
            raise StopIteration
        self._next = self.pool.submit(next, self.batches, None)
        return batch

    def close(self) -> None:
        """Wait for the read in flight (its error is moot now), then close ``batches``."""
        if self._next is not None:
            wait([self._next])
            self._next = None
        _close(self.batches)


def _close(batches: Iterator[pa.RecordBatch]) -> None:
    close = getattr(batches, "close", None)
    if close is not None:
        close()


def merge_runs(
    runs: Sequence[tuple[int, Iterator[pa.RecordBatch]]],
    readahead: int = 0,
    max_rows: int = MAX_TABLE_ROWS,
) -> Generator[pa.Table, None, None]:
    """Merge ``(stream_index, batches)`` runs, each sorted by ``recv_ns``, into sorted tables.

    Every yielded table is sorted by ``(recv_ns, conn_id, seq, stream_idx)``, starts at or
    after the end of the previous one and has about ``max_rows`` rows at most (more only
    where that many rows share one ``recv_ns``). Only a few batches per run are held in
    memory. With ``readahead`` > 0, that many threads read the next batch of every run ahead
    (one more batch per run in memory).
    """
    pool = (ThreadPoolExecutor(readahead, thread_name_prefix="ticktape-read")
            if readahead > 0 else None)
    sources: list[Iterator[pa.RecordBatch]] = [batches for _, batches in runs]
    try:
        if pool is not None:
            sources = [_ReadAhead(batches, pool) for batches in sources]
        states = [_Run(index, src) for (index, _), src in zip(runs, sources, strict=True)]
        yield from _merge_states(states, max_rows)
    finally:
        for src in sources:  # close partition files of runs not read to the end
            _close(src)
        for _, batches in runs:
            _close(batches)
        if pool is not None:
            pool.shutdown(wait=True)


def _capped(states: list[_Run], watermark: int | None, max_rows: int) -> int | None:
    """A cut value ``<= watermark`` leaving at most about ``max_rows`` rows before it.

    Every run's buffered rows are sorted and streams interleave in time, so cutting the
    largest run at its share of ``max_rows`` cuts the others at about theirs. This bounds
    the memory of a merged table (and of its sorted copy) whatever the batch size.
    """
    counts = []
    for run in states:
        if run.buffer is None:
            continue
        if watermark is None:
            counts.append((run.buffer.num_rows, run))
        else:
            counts.append((bisect_left(run.view, watermark, run.pos) - run.pos, run))
    total = sum(c for c, _ in counts)
    if total <= max_rows:
        return watermark
    count, big = max(counts, key=lambda cr: cr[0])
    cut = int(big.view[big.pos + min(count - 1, max(1, count * max_rows // total))])
    if all(cut <= run.view[run.pos] for _, run in counts):
        return watermark  # ties at the start of every buffer: no smaller cut makes progress
    return cut


def _merge_states(states: list[_Run], max_rows: int) -> Iterator[pa.Table]:
    while True:
        for run in states:
            if not run.done and (run.buffer is None or run.buffer.num_rows == 0):
                run.pull()
        live = [run for run in states if not run.done]
        watermark = min((run.last_recv() for run in live), default=None)
        cut = _capped(states, watermark, max_rows)
        pieces = [p for run in states if (p := run.cut_before(cut)) is not None]
        if pieces:
            if len(pieces) == 1:
                yield _sorted(pieces[0])  # one run's rows: sorted unless recv_ns ties
            else:
                # Contiguous columns first: Arrow's take on many-chunk string columns is slow.
                yield pa.concat_tables(pieces).combine_chunks().sort_by(SORT_KEYS)
        if cut is None:
            return
        if cut == watermark:
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
    readahead: int = 0,
) -> Generator[pa.Table, None, None]:
    """Merged, sorted tables of ``streams`` (canonical names) over ``[start, end)``.

    The ``stream_idx`` column indexes ``streams``. Partitions are opened lazily, one chain
    at a time per stream. ``readahead``: see :func:`merge_runs`.
    """
    runs: list[tuple[int, Iterator[pa.RecordBatch]]] = []
    for index, stream in enumerate(streams):
        for chain in chain_partitions(archive.partitions(stream, start, end)):
            runs.append((index, read_chain(archive, chain, columns, start, end)))
    return merge_runs(runs, readahead)


__all__ = ["MAX_TABLE_ROWS", "SORT_KEYS", "STREAM_INDEX", "chain_partitions", "merge_archive",
           "merge_runs"]
