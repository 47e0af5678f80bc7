"""Read-only access to a ticktape archive through any ``pyarrow.fs`` filesystem.

The layout is DESIGN.md's (see :mod:`schemas.layout`)::

    <root>/streams/stream=<name>/date=YYYY-MM-DD/<first_recv_ns>-<last_recv_ns>.parquet
    <root>/gaps/date=YYYY-MM-DD/<first_start_ns>-<last_start_ns>.parquet

Streams and time ranges come from directory and file names alone; data is read only from the
partitions (and, inside them, the row groups) that overlap the asked ``[start, end)`` window,
only the asked columns, one record batch at a time. ``*.tmp`` files (a writer's unfinished
output) are never read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from replay._partitions import listed_inputs, split_superseded
from replay._rowgroups import batches_of, clip, may_lack_raw, row_groups_in
from schemas.errors import ArchiveError, CorruptDataError
from schemas.formatters import restore_raw_column
from schemas.layout import (
    GAPS_DIR,
    STREAMS_DIR,
    day_bounds_ns,
    join,
    parse_partition_name,
    parse_stream_dir,
)
from schemas.message import Gap, GapKind
from schemas.streams import parse_stream

BASE_COLUMNS = ("recv_ns", "conn_id", "seq", "source", "raw")
"""The columns every stream partition starts with (DESIGN.md "Partition layout")."""
GAP_COLUMNS = ("stream", "start_ns", "end_ns", "kind", "detail", "recovered")
DEFAULT_BATCH_ROWS = 65_536
_DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Partition:
    """One sealed Parquet file of one stream, as named on disk."""

    stream: str
    path: str
    """Path inside the archive's filesystem."""
    first_ns: int
    last_ns: int
    size: int | None = None

    def overlaps(self, start: int | None, end: int | None) -> bool:
        """True when some ``recv_ns`` in ``[first_ns, last_ns]`` may lie in ``[start, end)``."""
        return (end is None or self.first_ns < end) and (start is None or self.last_ns >= start)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Archive:
    """An archive directory opened for reading.

    ``root`` is a local path, or a URI such as ``s3://bucket/prefix`` (then ``filesystem`` is
    derived from it); or any path inside an explicitly given ``filesystem``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        filesystem: pafs.FileSystem | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        text = os.fspath(root)
        if filesystem is None:
            if "://" in text:
                try:
                    filesystem, text = pafs.FileSystem.from_uri(text)
                except (pa.ArrowException, ValueError, OSError) as exc:
                    raise ArchiveError(f"cannot open archive {text}: {_one_line(exc)}") from exc
            else:
                filesystem = pafs.LocalFileSystem()
                text = os.path.abspath(text)
        self.filesystem: pafs.FileSystem = filesystem
        self.root: str = text.rstrip("/") or "/"
        self.batch_rows = batch_rows
        info = self._info(self.root)
        if info.type != pafs.FileType.Directory:
            raise ArchiveError(f"archive {self.root} does not exist or is not a directory")

    def __repr__(self) -> str:
        return f"Archive({self.root!r}, filesystem={type(self.filesystem).__name__})"

    # -- listing ------------------------------------------------------------------------

    def _info(self, path: str) -> pafs.FileInfo:
        try:
            return self.filesystem.get_file_info(path)
        except (pa.ArrowException, OSError) as exc:
            raise ArchiveError(f"cannot read {path}: {_one_line(exc)}") from exc

    def _list(self, path: str) -> list[pafs.FileInfo]:
        try:
            infos = self.filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        except (pa.ArrowException, OSError) as exc:
            raise ArchiveError(f"cannot list {path}: {_one_line(exc)}") from exc
        return sorted(infos, key=lambda i: i.path)

    def streams(self) -> list[str]:
        """Canonical names of every stream with a ``stream=<name>`` directory, sorted."""
        names = []
        for info in self._list(join(self.root, STREAMS_DIR)):
            if info.type == pafs.FileType.Directory:
                name = parse_stream_dir(info.base_name)
                if name is not None:
                    names.append(name)
        return sorted(set(names))

    def _date_dirs(self, base: str, start: int | None, end: int | None) -> list[str]:
        # A partition lives under the date of its first row and, with the recorder's
        # rotation (minutes, never a day), ends at most a day later: a date directory can only
        # hold rows in [day_start, day_end + 1 day).
        dirs = []
        for info in self._list(base):
            if info.type != pafs.FileType.Directory or not info.base_name.startswith("date="):
                continue
            try:
                day_start, day_end = day_bounds_ns(info.base_name[len("date="):])
            except ArchiveError:
                continue
            if end is not None and day_start >= end:
                continue
            if start is not None and day_end + _DAY_NS <= start:
                continue
            dirs.append(info.path)
        return dirs

    def partitions(
        self, stream: str, start: int | None = None, end: int | None = None
    ) -> list[Partition]:
        """The sealed partitions of ``stream`` overlapping ``[start, end)``, oldest first."""
        name = parse_stream(stream).name
        base = join(self.root, STREAMS_DIR, f"stream={name}")
        parts: list[Partition] = []
        for date_dir in self._date_dirs(base, start, end):
            day: list[Partition] = []
            for info in self._list(date_dir):
                if info.type != pafs.FileType.File:
                    continue
                span = parse_partition_name(info.base_name)  # "*.parquet.tmp" never parses
                if span is None:
                    continue
                day.append(Partition(name, info.path, span[0], span[1], info.size))
            # Leftovers of an interrupted ``compact`` are listed inside the file that replaced
            # them; reading both would deliver their rows twice (replay._partitions rule).
            live, _ = split_superseded(day, inputs_of=self._compacted_inputs)
            parts.extend(p for p in live if p.overlaps(start, end))
        parts.sort(key=lambda p: (p.first_ns, p.last_ns, p.path))
        return parts

    def _compacted_inputs(self, part: Partition) -> frozenset[str]:
        """File names a compacted partition lists as merged into it (read from its footer)."""
        try:
            with self.filesystem.open_input_file(part.path) as fh:
                return listed_inputs(pq.read_metadata(fh).metadata)
        except (OSError, pa.ArrowException):
            return frozenset()

    def time_range(self, stream: str) -> tuple[int, int] | None:
        """``(first_recv_ns, last_recv_ns)`` of ``stream`` from partition names, or ``None``."""
        parts = self.partitions(stream)
        if not parts:
            return None
        return min(p.first_ns for p in parts), max(p.last_ns for p in parts)

    def time_ranges(self) -> dict[str, tuple[int, int]]:
        """:meth:`time_range` of every stream that has at least one partition."""
        ranges = {}
        for stream in self.streams():
            span = self.time_range(stream)
            if span is not None:
                ranges[stream] = span
        return ranges

    # -- reading ------------------------------------------------------------------------

    def read_batches(
        self,
        part: Partition,
        columns: Sequence[str] = BASE_COLUMNS,
        start: int | None = None,
        end: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of ``part`` with rows in ``[start, end)``, only ``columns``.

        Row groups whose ``recv_ns`` statistics lie outside the window are skipped unread.
        Any failure to decode the file raises :class:`CorruptDataError` naming it.
        """
        try:
            with self.filesystem.open_input_file(part.path) as handle:
                pfile = pq.ParquetFile(handle)
                groups = row_groups_in(pfile.metadata, start, end)
                if not groups:
                    return
                missing = [c for c in columns if c not in pfile.schema_arrow.names]
                if missing:
                    raise CorruptDataError(
                        f"corrupt partition {part.path}: missing column(s) {', '.join(missing)}"
                    )
                restoring = "raw" in columns and may_lack_raw(pfile.metadata, groups)
                read = list(columns)
                if (start is not None or end is not None) and "recv_ns" not in read:
                    read = [*read, "recv_ns"]
                for batch in batches_of(pfile, groups, read, self.batch_rows, restoring):
                    window = clip(batch, start, end)
                    if restoring and window.column("raw").null_count:
                        raw = restore_raw_column(part.stream, window)
                        window = window.set_column(
                            window.schema.get_field_index("raw"), "raw", raw)
                    if window.schema.names != list(columns):
                        window = window.select(list(columns))
                    if window.num_rows:
                        yield window
        except CorruptDataError:
            raise
        except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
            raise CorruptDataError(f"corrupt partition {part.path}: {_one_line(exc)}") from exc

    def read_stream(
        self,
        stream: str,
        start: int | None = None,
        end: int | None = None,
        columns: Sequence[str] = BASE_COLUMNS,
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of every partition of ``stream`` overlapping ``[start, end)``."""
        for part in self.partitions(stream, start, end):
            yield from self.read_batches(part, columns, start, end)

    def gaps(
        self,
        streams: Iterable[str] | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[Gap]:
        """Recorded gaps touching ``[start, end)`` that concern ``streams`` (or ``*``).

        Sorted by ``(start_ns, end_ns, stream)``. A gap that began before ``start`` but is
        still open at ``start`` is included.
        """
        wanted = None if streams is None else {parse_stream(s).name for s in streams}
        base = join(self.root, GAPS_DIR)
        found: list[Gap] = []
        for date_dir in self._date_dirs(base, None, end):
            for info in self._list(date_dir):
                span = parse_partition_name(info.base_name)
                if info.type != pafs.FileType.File or span is None:
                    continue
                if end is not None and span[0] >= end:
                    continue
                part = Partition("gaps", info.path, span[0], span[1], info.size)
                for batch in self.read_batches(part, GAP_COLUMNS):
                    found.extend(_gaps_of(batch, part.path, wanted, start, end))
        found.sort(key=lambda g: (g.start_ns, g.end_ns, g.stream))
        return found


def _gaps_of(
    batch: pa.RecordBatch,
    path: str,
    wanted: set[str] | None,
    start: int | None,
    end: int | None,
) -> Iterator[Gap]:
    for row in batch.to_pylist():
        try:
            gap = Gap(
                stream=str(row["stream"]),
                start_ns=int(row["start_ns"]),
                end_ns=int(row["end_ns"]),
                kind=GapKind(row["kind"]),
                detail=str(row["detail"] or ""),
                recovered=bool(row["recovered"]),
            )
        except (TypeError, ValueError) as exc:
            raise CorruptDataError(f"corrupt gaps partition {path}: {_one_line(exc)}") from exc
        if wanted is not None and gap.stream != "*" and gap.stream not in wanted:
            continue
        if end is not None and gap.start_ns >= end:
            continue
        if start is not None and gap.end_ns < start:
            continue
        yield gap


__all__ = [
    "BASE_COLUMNS",
    "DEFAULT_BATCH_ROWS",
    "GAP_COLUMNS",
    "Archive",
    "Partition",
]
