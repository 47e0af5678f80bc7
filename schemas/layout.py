"""The archive layout (DESIGN.md): pure path arithmetic, no I/O.

::

    <archive>/streams/stream=<name>/date=YYYY-MM-DD/<first_recv_ns>-<last_recv_ns>.parquet
    <archive>/gaps/date=YYYY-MM-DD/<first_start_ns>-<last_start_ns>.parquet
    <archive>/journal/<segment>.wal

Paths are POSIX strings relative to (or joined onto) an archive root, so the same functions
serve a local directory and any ``pyarrow.fs`` filesystem. Every stream component goes through
:func:`schemas.streams.parse_stream`, so no stream name can leave the archive.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from schemas.errors import ArchiveError
from schemas.streams import parse_stream

STREAMS_DIR = "streams"
GAPS_DIR = "gaps"
JOURNAL_DIR = "journal"
PARTITION_SUFFIX = ".parquet"
TMP_SUFFIX = ".tmp"
SCHEMA_VERSION = 1
"""Bumped whenever a stored table's columns change incompatibly."""

_PARTITION_RE = re.compile(r"(\d{1,20})-(\d{1,20})\.parquet")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def date_of_ns(ns: int) -> str:
    """UTC calendar date ``YYYY-MM-DD`` of an epoch-ns instant (the ``date=`` partition)."""
    return time.strftime("%Y-%m-%d", time.gmtime(ns // 1_000_000_000))


def day_bounds_ns(date: str) -> tuple[int, int]:
    """``[start, end)`` epoch ns of a ``YYYY-MM-DD`` UTC day."""
    if not _DATE_RE.fullmatch(date):
        raise ArchiveError(f"bad date {date!r}: expected YYYY-MM-DD")
    start = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC)
    start_ns = int(start.timestamp()) * 1_000_000_000
    return start_ns, start_ns + 86_400 * 1_000_000_000


def join(*parts: str) -> str:
    """Join POSIX path parts, ignoring empty ones."""
    return "/".join(p.rstrip("/") for p in parts if p)


def stream_dir(stream: str) -> str:
    """``streams/stream=<canonical name>`` (validated)."""
    return join(STREAMS_DIR, f"stream={parse_stream(stream).name}")


def partition_dir(stream: str, date: str) -> str:
    """``streams/stream=<name>/date=<date>``."""
    if not _DATE_RE.fullmatch(date):
        raise ArchiveError(f"bad date {date!r}: expected YYYY-MM-DD")
    return join(stream_dir(stream), f"date={date}")


def partition_name(first_ns: int, last_ns: int) -> str:
    """``<first_recv_ns>-<last_recv_ns>.parquet``."""
    if first_ns < 0 or last_ns < first_ns:
        raise ArchiveError(f"bad partition range {first_ns}-{last_ns}")
    return f"{first_ns}-{last_ns}{PARTITION_SUFFIX}"


def partition_path(stream: str, first_ns: int, last_ns: int) -> str:
    """Relative path of a stream partition; its date is that of ``first_ns``."""
    return join(partition_dir(stream, date_of_ns(first_ns)), partition_name(first_ns, last_ns))


def gaps_path(first_ns: int, last_ns: int) -> str:
    """Relative path of a gaps partition, dated by ``first_ns``."""
    return join(GAPS_DIR, f"date={date_of_ns(first_ns)}", partition_name(first_ns, last_ns))


def parse_partition_name(name: str) -> tuple[int, int] | None:
    """``(first_ns, last_ns)`` of a partition file name, or ``None`` if it is not one."""
    m = _PARTITION_RE.fullmatch(name)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2))


def parse_stream_dir(component: str) -> str | None:
    """Canonical stream of a ``stream=<name>`` directory component, else ``None``."""
    if not component.startswith("stream="):
        return None
    try:
        return parse_stream(component[len("stream="):]).name
    except ValueError:
        return None


__all__ = [
    "GAPS_DIR",
    "JOURNAL_DIR",
    "PARTITION_SUFFIX",
    "SCHEMA_VERSION",
    "STREAMS_DIR",
    "TMP_SUFFIX",
    "date_of_ns",
    "day_bounds_ns",
    "gaps_path",
    "join",
    "parse_partition_name",
    "parse_stream_dir",
    "partition_dir",
    "partition_name",
    "partition_path",
    "stream_dir",
]
