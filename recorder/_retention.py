"""Retention: delete whole ``date=`` partitions older than the configured retention.

Only complete UTC days that ended more than ``retention_s`` ago are removed, for stream
partitions and the gaps table alike, so a reader never sees part of a day disappear.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from recorder._fs import archive_error
from schemas import layout
from schemas.errors import ArchiveError

log = logging.getLogger("ticktape.recorder")


def expired_dirs(archive: Path, now_ns: int, retention_s: float) -> list[Path]:
    """``date=YYYY-MM-DD`` directories whose whole day ended before ``now - retention``."""
    cutoff = now_ns - int(retention_s * 1e9)
    out: list[Path] = []
    roots = [archive / layout.GAPS_DIR]
    streams = archive / layout.STREAMS_DIR
    if streams.is_dir():
        roots.extend(p for p in sorted(streams.iterdir())
                     if p.is_dir() and layout.parse_stream_dir(p.name) is not None)
    for root in roots:
        if not root.is_dir():
            continue
        for day in sorted(root.iterdir()):
            if not (day.is_dir() and day.name.startswith("date=")):
                continue
            try:
                _, end_ns = layout.day_bounds_ns(day.name[len("date="):])
            except ArchiveError:
                continue
            if end_ns <= cutoff:
                out.append(day)
    return out


def apply_retention(archive: Path, now_ns: int, retention_s: float) -> int:
    """Delete expired day directories; returns how many were removed."""
    removed = 0
    for day in expired_dirs(archive, now_ns, retention_s):
        try:
            shutil.rmtree(day)
        except OSError as exc:
            raise archive_error(exc, "delete expired partition", day) from exc
        removed += 1
        log.info("retention: deleted %s", day.relative_to(archive))
    return removed


__all__ = ["apply_retention", "expired_dirs"]
