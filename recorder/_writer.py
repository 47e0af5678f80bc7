"""The partition writer: one thread owns every Parquet file of the archive.

:class:`PartitionSet` is the synchronous core (rotation, row groups, memory budget, gap
buffers); journal recovery and ``ticktape import`` drive it directly. :class:`PartitionWriter`
runs one in a thread fed by a bounded ``queue.Queue``: :meth:`PartitionWriter.submit` never
blocks (a full queue returns ``False`` and the owner counts the drop), and a sentinel stops
it after sealing everything. A failure inside the thread becomes :attr:`PartitionWriter.error`
(an :class:`ArchiveError`); open ``.tmp`` files are removed, sealed files are untouched and the
rows stay in the journal, whose segments are only deleted below :attr:`safe_segment`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from recorder._fs import archive_error
from recorder._partition import (
    ROW_OVERHEAD,
    OpenPartition,
    day_window,
    recorder_version,
    write_gaps_file,
)
from recorder._rows import StreamRows
from recorder._writer_config import WriterConfig, WriterMode
from schemas import layout
from schemas.errors import ArchiveError, StreamNameError
from schemas.message import WILDCARD_STREAM, Gap, GapKind, Message

_NS = 1_000_000_000

class _GapBuffer:
    __slots__ = ("gaps", "min_segment", "seal_at")

    def __init__(self, seal_at: int, segment: int) -> None:
        self.gaps: list[Gap] = []
        self.seal_at = seal_at
        self.min_segment = segment


SEAL_THREADS = 8
"""Partitions sealed at once by :meth:`PartitionSet.seal_all`."""
SEAL_SERIAL_BYTES = 256 << 10
"""A partition with at least this many buffered bytes has its last row group encoded before
the parallel seal, one partition at a time: encoding row groups concurrently took 50-70 MB
more peak RSS for 8 streams with 1 MB buffered each, and only the many small partitions of
a big shard gain from parallel encoding (at most ``memory_budget_bytes`` / this are big)."""


def _seal_or_abort(p: OpenPartition) -> Path | None:
    """Seal ``p``; on failure remove its ``.tmp`` (the rows stay in the journal)."""
    try:
        return p.seal()
    except BaseException:
        p.abort()
        raise


class PartitionSet:
    """Open partitions (one per stream) and gap buffers (one per UTC date) of an archive."""

    def __init__(self, root: Path, config: WriterConfig) -> None:
        self.root = root
        self.config = config
        self._rotate_ns = max(1, int(config.rotate_s * _NS))
        self._open: dict[str, OpenPartition] = {}
        self._gaps: dict[str, _GapBuffer] = {}
        self._pending_total = 0
        self._invalid: dict[str, tuple[int, int, int]] = {}
        self.clock = 0
        self.sealed_files = 0
        self.sealed_rows = 0
        self.sealed_gaps = 0
        self.peak_pending: dict[str, int] = {}
        """Largest number of buffered payload bytes seen per stream (bounded memory)."""

    @property
    def pending_bytes(self) -> int:
        """Payload bytes buffered in memory across all streams."""
        return self._pending_total

    def add(self, msgs: Sequence[Message], segment: int) -> None:
        """Route each message to its stream's partition, rotating by window, day and size.

        The batch is split by stream (order within a stream kept); a stream's run that fits
        its open partition (window, size, row group) is appended in one step, anything else
        goes message by message through :meth:`_add_each`.
        """
        by_stream: dict[str, list[Message]] = {}
        get = by_stream.get
        for m in msgs:
            run = get(m.stream)
            if run is None:
                by_stream[m.stream] = [m]
            else:
                run.append(m)
        open_ = self._open
        cfg = self.config
        for stream, run in by_stream.items():
            p = open_.get(stream)
            if p is None:
                self._add_each(run, segment)
                continue
            times = [m.recv_ns for m in run]
            lo, hi = min(times), max(times)
            size = sum(map(len, [m.raw for m in run])) + ROW_OVERHEAD * len(run)
            if (lo < p.window_start or hi >= p.window_end
                    or p.total_bytes + size >= cfg.max_partition_bytes
                    or p.pending_bytes + size >= cfg.row_group_bytes):
                self._add_each(run, segment)
                continue
            p.extend(run, lo, hi, size)
            self._pending_total += size
            if hi > self.clock:
                self.clock = hi
        if self._pending_total > cfg.memory_budget_bytes:
            self._shed_memory()

    def add_rows(self, runs: Sequence[StreamRows], segment: int) -> None:
        """:meth:`add` for rows given as Arrow columns, one stream per run (the writer
        process's input): a run that fits its open partition is buffered as it is (no
        ``Message`` per row); one that rotates, cuts a row group or opens a partition goes
        row by row through the same path as :meth:`add`."""
        open_ = self._open
        cfg = self.config
        for run in runs:
            p = open_.get(run.stream)
            n = len(run)
            size = run.raw_bytes + ROW_OVERHEAD * n
            lo, hi = run.first_ns, run.last_ns
            if (p is None or lo < p.window_start or hi >= p.window_end
                    or p.total_bytes + size >= cfg.max_partition_bytes
                    or p.pending_bytes + size >= cfg.row_group_bytes):
                self._add_each(run.messages(), segment)
                continue
            p.extend_columns(run.batch, lo, hi, size)
            self._pending_total += size
            if hi > self.clock:
                self.clock = hi
        if self._pending_total > cfg.memory_budget_bytes:
            self._shed_memory()

    def _add_each(self, msgs: Sequence[Message], segment: int) -> None:
        open_ = self._open
        cfg = self.config
        for m in msgs:
            t = m.recv_ns
            p = open_.get(m.stream)
            if p is None or t >= p.window_end or t < p.window_start or (
                    p.total_bytes >= cfg.max_partition_bytes and t > p.last_ns):
                p = self._rotate(m.stream, t, segment)
                if p is None:
                    continue
            before = p.pending_bytes
            p.add(m)
            self._pending_total += p.pending_bytes - before
            if p.pending_bytes >= cfg.row_group_bytes:
                self._flush_rows(p)
            if t > self.clock:
                self.clock = t

    def add_gaps(self, gaps: Sequence[Gap], segment: int) -> None:
        """Buffer gaps by the UTC date of their start, sealed with the next rotation."""
        for g in gaps:
            date = layout.date_of_ns(g.start_ns)
            buf = self._gaps.get(date)
            if buf is None:
                seal_at = day_window(max(self.clock, 0), self._rotate_ns)[1]
                buf = self._gaps[date] = _GapBuffer(seal_at, segment)
            buf.gaps.append(g)

    def tick(self, now_ns: int) -> None:
        """Seal every partition and gap buffer whose window has ended by ``now_ns``."""
        self.clock = max(self.clock, now_ns)
        self._invalid_to_gaps()
        for stream in [s for s, p in self._open.items() if p.window_end <= self.clock]:
            self._seal(self._open.pop(stream))
        for date in [d for d, b in self._gaps.items() if b.seal_at <= self.clock]:
            self._seal_gaps(self._gaps.pop(date))

    def seal_all(self) -> None:
        """Seal everything that is open (close, cancel and error paths).

        One partition failing does not stop the others; the first error is raised at the end.
        Partitions are sealed in parallel: sealing is mostly Arrow encoding and fsync, both
        outside the GIL, and SIGTERM must seal hundreds of active streams within 5 s. The
        row groups of big partitions (:data:`SEAL_SERIAL_BYTES`) are encoded first, one at a
        time, which bounds the memory peak.
        """
        first: BaseException | None = None
        self._invalid_to_gaps()
        parts = list(self._open.values())
        self._open.clear()
        rows = [self._before_seal(p) for p in parts]
        for i, p in enumerate(parts):
            if p.pending_bytes >= SEAL_SERIAL_BYTES:
                try:
                    p.flush_rows()
                except Exception as exc:
                    p.abort()
                    first = first or exc
                    rows[i] = -1  # failed: not sealed below
        with ThreadPoolExecutor(max_workers=SEAL_THREADS, thread_name_prefix="seal") as pool:
            futures = [pool.submit(_seal_or_abort, p) for p, n in zip(parts, rows, strict=True)
                       if n >= 0]
        for future, n in zip(futures, [n for n in rows if n >= 0], strict=True):
            try:
                self._after_seal(future.result(), n)
            except Exception as exc:
                first = first or exc
        while self._gaps:
            try:
                self._seal_gaps(self._gaps.pop(next(iter(self._gaps))))
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

    def abort_all(self) -> None:
        """Remove every ``.tmp`` file of open partitions; sealed files are not touched."""
        for p in self._open.values():
            p.abort()
        self._open.clear()
        self._gaps.clear()
        self._pending_total = 0

    def low_segment(self) -> int | None:
        """Oldest journal segment with rows or gaps not yet in a sealed file."""
        segs = [p.min_segment for p in self._open.values()]
        segs += [b.min_segment for b in self._gaps.values()]
        return min(segs) if segs else None

    def _rotate(self, stream: str, t: int, segment: int) -> OpenPartition | None:
        old = self._open.pop(stream, None)
        if old is not None:
            self._seal(old)
        try:
            layout.stream_dir(stream)
        except StreamNameError:
            # Never a path from an unvalidated name; the rows become a counted rejected gap.
            first, _, n = self._invalid.get(stream, (t, t, 0))
            self._invalid[stream] = (first, t, n + 1)
            return None
        p = OpenPartition(self.root, stream, day_window(t, self._rotate_ns), segment,
                          self.config.compression_level)
        self._open[stream] = p
        return p

    def _invalid_to_gaps(self) -> None:
        if not self._invalid:
            return
        invalid, self._invalid = self._invalid, {}
        shown = [(name if len(name) <= 80 else name[:77] + "...", v) for name, v in
                 invalid.items()]
        self.add_gaps([Gap(WILDCARD_STREAM, first, last, GapKind.REJECTED,
                           f"invalid stream name {name!r}: {n} messages not stored")
                       for name, (first, last, n) in shown], self.low_segment() or 0)

    def _flush_rows(self, p: OpenPartition) -> None:
        before = p.pending_bytes
        self._note_peak(p)
        open_files = sum(1 for q in self._open.values() if q.has_file)
        if not p.has_file and open_files >= self.config.max_open_files:
            # Too many files open: end this partition early instead of opening another.
            self._seal(self._open.pop(p.stream))
            return
        p.flush_rows()
        self._pending_total -= before

    def _shed_memory(self) -> None:
        target = self.config.memory_budget_bytes // 2
        for p in sorted(self._open.values(), key=lambda q: q.pending_bytes, reverse=True):
            if self._pending_total <= target:
                break
            if p.stream in self._open:
                self._flush_rows(p)

    def _note_peak(self, p: OpenPartition) -> None:
        if p.pending_bytes > self.peak_pending.get(p.stream, 0):
            self.peak_pending[p.stream] = p.pending_bytes

    def _seal(self, p: OpenPartition) -> None:
        self._after_seal(_seal_or_abort(p), self._before_seal(p))

    def _before_seal(self, p: OpenPartition) -> int:
        """Account for ``p`` leaving the open set; returns its row count."""
        self._note_peak(p)
        self._pending_total -= p.pending_bytes
        return p.rows + p.pending_rows

    def _after_seal(self, path: Path | None, rows: int) -> None:
        if path is not None:
            self.sealed_files += 1
            self.sealed_rows += rows

    def _seal_gaps(self, buf: _GapBuffer) -> None:
        if buf.gaps:
            write_gaps_file(self.root, buf.gaps, self.config.compression_level)
            self.sealed_gaps += len(buf.gaps)


def use_system_allocator() -> None:
    """Have Arrow allocate through the C library's allocator (process-wide).

    pyarrow's default mimalloc pool keeps the pages freed by each thread that built or
    encoded a row group (the writer thread and the seal threads) for reuse, which a 24/7
    recorder pays for in resident memory; glibc hands them back. Measured on the memory
    benchmark's load (20k msgs/s, stuck handler, 15 s): RSS while recording 163-172 MB with
    mimalloc, 145 MB with the system pool; peak with the final seal 243 -> 225 MB; the same
    ingest rate. Buffers already allocated keep their pool.
    """
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


_Item = tuple[str, Any, int | None]


class PartitionWriter:
    """The writer thread: owns a :class:`PartitionSet`, fed through a bounded queue."""

    def __init__(self, root: Path, config: WriterConfig) -> None:
        self.config = config
        self.parts = PartitionSet(root, config)
        recorder_version()  # resolved here, not by an import inside the writer thread
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max(1, config.queue_max))
        self._thread = threading.Thread(target=self._run, name="ticktape-writer", daemon=True)
        self._last_segment: int | None = None
        self.error: ArchiveError | None = None
        self.safe_segment: int | None = None
        """Every journal segment below this index is fully in sealed files."""
        self.processed_messages = 0

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        """Batches waiting in the queue."""
        return self._queue.qsize()

    def submit(self, msgs: Sequence[Message], segment: int,
               records: Sequence[bytes] | None = None) -> bool:
        """Hand a batch to the thread without blocking; ``False`` if the queue is full.

        ``records`` (the batch's journal records) are what the process writer is fed; the
        thread takes ``msgs`` as they are."""
        return self._put(("m", msgs, segment))

    def submit_gaps(self, gaps: Sequence[Gap], segment: int) -> bool:
        """Hand gaps to the thread without blocking; ``False`` if the queue is full."""
        return self._put(("g", gaps, segment))

    def tick(self, now_ns: int) -> bool:
        """Ask the thread to seal windows that ended before ``now_ns`` (skipped if full)."""
        return self._put(("t", now_ns, None))

    def put_blocking(self, msgs: Sequence[Message], gaps: Sequence[Gap], segment: int,
                     timeout: float, records: Sequence[bytes] | None = None) -> bool:
        """Enqueue at close time, waiting up to ``timeout`` s; ``False`` if still full."""
        try:
            if msgs:
                self._queue.put(("m", msgs, segment), timeout=timeout)
            if gaps:
                self._queue.put(("g", gaps, segment), timeout=timeout)
        except queue.Full:
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop after sealing everything queued; raise the thread's error if it had one."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise ArchiveError(f"partition writer did not stop within {timeout:.0f}s")
        if self.error is not None:
            raise self.error

    def _put(self, item: _Item) -> bool:
        if self.error is not None:
            raise self.error
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        parts = self.parts
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self.error is not None:
                continue  # drain without writing: the journal keeps these rows
            try:
                self._handle(item)
            except BaseException as exc:
                self._fail(exc)
        if self.error is None:
            try:
                parts.seal_all()
                self.safe_segment = self._last_segment
            except BaseException as exc:
                self._fail(exc)

    def _handle(self, item: _Item) -> None:
        kind, payload, segment = item
        parts = self.parts
        if kind == "m":
            parts.add(payload, segment or 0)
            self.processed_messages += len(payload)
        elif kind == "g":
            parts.add_gaps(payload, segment or 0)
        else:
            parts.tick(payload)
        if segment is not None:
            self._last_segment = segment
        low = parts.low_segment()
        last = self._last_segment
        if last is not None:
            self.safe_segment = last if low is None else min(low, last)

    def _fail(self, exc: BaseException) -> None:
        self.error = archive_error(exc, "write partition under", self.parts.root)
        self.parts.abort_all()


@contextmanager
def sealed_partitions(root: Path, config: WriterConfig, doing: str) -> Iterator[PartitionSet]:
    """A :class:`PartitionSet` whose partitions are all sealed when the block ends, or all
    aborted (no ``.tmp`` left) if it raises; errors come out as one-line ArchiveErrors."""
    parts = PartitionSet(root, config)
    try:
        yield parts
        parts.seal_all()
    except ArchiveError:
        parts.abort_all()
        raise
    except BaseException as exc:
        parts.abort_all()
        raise archive_error(exc, doing, root) from exc


def write_partitions(archive: Path, stream: str, messages: Sequence[Message],
                     config: WriterConfig | None = None) -> list[Path]:
    """Synchronously write ``messages`` of one stream as sealed partitions (``import``).

    Messages are split by rotation window and UTC day like live data; returns the new files.
    """
    cfg = config or WriterConfig(rotate_s=86_400)
    root = Path(archive)
    before = set(_stream_files(root, stream))
    with sealed_partitions(root, cfg, "write partition under") as parts:
        parts.add(messages, 0)
    return sorted(set(_stream_files(root, stream)) - before)


def write_partition(archive: Path, stream: str, messages: Sequence[Message]) -> Path:
    """Write ``messages`` (one stream, one UTC day) as one sealed partition; return its path."""
    if not messages:
        raise ArchiveError(f"no messages to write for {stream}")
    days = {layout.date_of_ns(m.recv_ns) for m in messages}
    if len(days) > 1:
        raise ArchiveError(f"messages of {stream} span {len(days)} UTC days; "
                           "use write_partitions")
    paths = write_partitions(archive, stream, messages,
                             WriterConfig(rotate_s=86_400, max_partition_bytes=1 << 62))
    return paths[0]


def _stream_files(root: Path, stream: str) -> list[Path]:
    base = root / layout.stream_dir(stream)
    return list(base.glob(f"date=*/*{layout.PARTITION_SUFFIX}")) if base.is_dir() else []


__all__ = ["PartitionSet", "PartitionWriter", "WriterConfig", "WriterMode",
           "use_system_allocator",
           "write_partition", "write_partitions"]
