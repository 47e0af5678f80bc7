"""Listing the sealed partitions of an archive, and the rule that hides superseded ones.

Layout (DESIGN.md): ``<archive>/streams/stream=<name>/date=YYYY-MM-DD/<first>-<last>.parquet``
where ``first``/``last`` are the first and last ``recv_ns`` of the file.

**Supersede rule.** ``compact`` writes the merged file of a day under a name whose range
covers every file it merged, lists the merged file names in its Parquet metadata
(:data:`COMPACTED_INPUTS_KEY`), and deletes the small files only after the merged one is
durable. A crash in between leaves both. A file whose ``[first, last]`` range lies inside
another file's range in the same directory, *and* whose name that file lists as one of its
inputs, is such a leftover: it is *superseded*, every reader (the DuckDB catalog, ``stats``,
``verify``, the next ``compact``) ignores it and ``compact`` deletes it. So no row is ever
counted twice, whatever moment a ``kill -9`` hits. Only nested ranges cost a footer read,
and a nested file that the cover does not list (e.g. a second recorder's) stays live.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.layout import (
    GAPS_DIR,
    PARTITION_SUFFIX,
    STREAMS_DIR,
    TMP_SUFFIX,
    parse_partition_name,
    parse_stream_dir,
)

COMPACTED_INPUTS_KEY = b"ticktape.compacted_inputs"
"""Parquet metadata of a compacted file: the names of the files merged into it, one a line."""


@dataclass(frozen=True, slots=True)
class Partition:
    """One sealed Parquet file of a stream (or of the gaps table when ``stream`` is ``""``)."""

    stream: str
    date: str
    path: Path
    first_ns: int
    last_ns: int
    size: int

    @property
    def key(self) -> tuple[int, int]:
        """Sort key: by first ``recv_ns``, wider range first."""
        return (self.first_ns, -self.last_ns)


def compacted_inputs(path: Path) -> frozenset[str]:
    """File names a compacted partition lists as merged into it (empty if none/unreadable)."""
    try:
        return listed_inputs(pq.read_metadata(path).metadata)
    except (OSError, pa.ArrowException):
        return frozenset()


def listed_inputs(metadata: dict[bytes, bytes] | None) -> frozenset[str]:
    """File names listed under :data:`COMPACTED_INPUTS_KEY` in a Parquet footer's metadata."""
    meta = metadata or {}
    return frozenset(meta.get(COMPACTED_INPUTS_KEY, b"").decode(errors="replace").split())


class PartitionLike(Protocol):
    """Anything with a file path and the ``recv_ns`` range of its name."""

    @property
    def path(self) -> Any: ...
    @property
    def first_ns(self) -> int: ...
    @property
    def last_ns(self) -> int: ...


P = TypeVar("P", bound=PartitionLike)


def _local_inputs(q: PartitionLike) -> frozenset[str]:
    return compacted_inputs(Path(os.fspath(q.path)))


def split_superseded(
    parts: Iterable[P],
    inputs_of: Callable[[P], frozenset[str]] = _local_inputs,
) -> tuple[list[P], list[P]]:
    """``(live, superseded)`` of one stream-day directory, by the supersede rule.

    Works for any partition type with ``path``, ``first_ns`` and ``last_ns`` (e.g. the
    replay reader's, with an ``inputs_of`` that reads the footer through its filesystem).
    ``inputs_of(cover)`` is only called for files that cover another one. Both lists are
    sorted by ``first_ns``.
    """
    live: list[P] = []
    superseded: list[P] = []
    max_last = -1
    listed: dict[str, frozenset[str]] = {}
    for p in sorted(parts, key=lambda q: (q.first_ns, -q.last_ns)):
        # Sorted by first_ns: only when some earlier file reaches past p can p be covered.
        if p.last_ns <= max_last:
            covers = [q for q in live if q.first_ns <= p.first_ns and q.last_ns >= p.last_ns]
            for q in covers:
                listed.setdefault(str(q.path), inputs_of(q))
            name = os.path.basename(str(p.path))
            if any(name in listed[str(q.path)] for q in covers):
                superseded.append(p)
                continue
        live.append(p)
        max_last = max(max_last, p.last_ns)
    return live, superseded


def _date_of(component: str) -> str | None:
    return component[len("date="):] if component.startswith("date=") else None


def _files(day_dir: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(day_dir) as it:
            yield from (e for e in it if e.is_file())
    except FileNotFoundError:
        return


@dataclass(slots=True)
class ArchiveListing:
    """Everything found under an archive root, grouped for readers and for ``verify``."""

    root: Path
    live: dict[tuple[str, str], list[Partition]]
    """``(stream, date)`` -> live partitions, sorted by ``first_ns``."""
    superseded: list[Partition]
    gaps: list[Partition]
    tmp_files: list[Path]
    stray_files: list[Path]
    """Files in partition directories that are neither partitions nor ``.tmp``."""

    @property
    def streams(self) -> list[str]:
        """Canonical names of the streams with at least one live partition."""
        return sorted({s for s, _ in self.live})

    def partitions(self, stream: str | None = None) -> list[Partition]:
        """Live partitions (of one stream, or all), in stream, date, time order."""
        return [p for (s, _), ps in sorted(self.live.items())
                if stream is None or s == stream for p in ps]


def list_archive(root: Path | str) -> ArchiveListing:
    """Scan ``root`` (no file is opened) and apply the supersede rule per stream-day."""
    root = Path(root)
    listing = ArchiveListing(root, {}, [], [], [], [])
    streams_root = root / STREAMS_DIR
    if streams_root.is_dir():
        for sdir in sorted(streams_root.iterdir()):
            stream = parse_stream_dir(sdir.name)
            if stream is None or not sdir.is_dir():
                _stray(listing, sdir)
                continue
            for ddir in sorted(sdir.iterdir()):
                date = _date_of(ddir.name)
                if date is None or not ddir.is_dir():
                    _stray(listing, ddir)
                    continue
                parts = list(_day(listing, ddir, stream, date))
                live, old = split_superseded(parts)
                if live:
                    listing.live[(stream, date)] = live
                listing.superseded.extend(old)
    gaps_root = root / GAPS_DIR
    if gaps_root.is_dir():
        for ddir in sorted(gaps_root.iterdir()):
            date = _date_of(ddir.name)
            if date is None or not ddir.is_dir():
                _stray(listing, ddir)
                continue
            listing.gaps.extend(sorted(_day(listing, ddir, "", date), key=lambda q: q.key))
    return listing


def _stray(listing: ArchiveListing, path: Path) -> None:
    if path.name.endswith(TMP_SUFFIX):
        listing.tmp_files.append(path)
    else:
        listing.stray_files.append(path)


def _day(listing: ArchiveListing, ddir: Path, stream: str, date: str) -> Iterator[Partition]:
    for entry in _files(ddir):
        path = Path(entry.path)
        rng = parse_partition_name(entry.name)
        if rng is None:
            _stray(listing, path)
            continue
        yield Partition(stream, date, path, rng[0], rng[1], entry.stat().st_size)


__all__ = ["COMPACTED_INPUTS_KEY", "PARTITION_SUFFIX", "ArchiveListing", "Partition",
           "PartitionLike", "compacted_inputs", "list_archive", "split_superseded"]
