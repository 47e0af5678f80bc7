"""A recorded session on disk: the standard 8-stream mix written as the live writer does.

Replay, timing and serve benchmarks read the same archive. It is written with
``recorder._writer.PartitionSet`` (the writer thread's synchronous core, default rotation),
so its files are what a recorder leaves behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks._common import Config, missing
from benchmarks._feed import cached
from benchmarks.storage import to_messages, write_live


def session_archive(cfg: Config, count: int, rate_per_s: float = 2_000.0) -> Path | str:
    """Path of an archive holding ``count`` messages (built once per run), or why not."""
    reason = missing("recorder._writer")
    if reason:
        return reason
    root = cfg.workdir / f"session-{count}-{int(rate_per_s)}"
    if (root / "streams").is_dir():
        return root
    shutil.rmtree(root, ignore_errors=True)
    feed = cached(count, rate_per_s=rate_per_s, directory=cfg.cache)
    write_live(root, to_messages(feed))
    return root


def parquet_files(root: Path) -> list[Path]:
    """Every stream partition file under ``root``."""
    return sorted((root / "streams").glob("stream=*/date=*/*.parquet"))


__all__ = ["parquet_files", "session_archive"]
