"""Atomic file helpers and the one place where ``OSError`` becomes :class:`ArchiveError`.

A sealed archive file is written as ``<name>.tmp``, fsynced, renamed onto its final name and
its directory fsynced: a reader (or a crash) never sees half a file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

from schemas.errors import ArchiveError

_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (size limit reached)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a path component is a file, not a directory",
    errno.EEXIST: "already exists",
    errno.EISDIR: "is a directory",
    errno.ENOENT: "no such file or directory",
}


# pyarrow reports I/O failures as OSError subclasses without errno: match the C text.
_TEXTS = (
    ("No space left", errno.ENOSPC),
    ("Read-only file system", errno.EROFS),
    ("Permission denied", errno.EACCES),
    ("File too large", errno.EFBIG),
    ("quota exceeded", errno.EDQUOT),
)


def archive_error(exc: BaseException, doing: str, path: Path | str) -> ArchiveError:
    """One-line :class:`ArchiveError` for ``exc`` raised while ``doing`` ``path``."""
    if isinstance(exc, ArchiveError):
        return exc
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if not code:
        code = next((c for t, c in _TEXTS if t in text), None)
    reason = _REASONS.get(code or -1)
    if reason is None:
        strerror = exc.strerror if isinstance(exc, OSError) else None
        first = text.strip().splitlines()[0][:200] if text.strip() else ""
        reason = strerror or first or type(exc).__name__
    return ArchiveError(f"cannot {doing} {path}: {reason}")


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename or unlink inside it is durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path, root: Path) -> None:
    """Create ``path`` (and parents up to ``root``), fsyncing each new directory's parent."""
    if path.is_dir():
        return
    missing: list[Path] = []
    cur = path
    while not cur.is_dir():
        missing.append(cur)
        if cur == root or cur.parent == cur:
            break
        cur = cur.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
        fsync_dir(d.parent)


def tmp_path_for(final: Path) -> Path:
    """The ``.tmp`` sibling a sealed file is written as."""
    return final.with_name(final.name + ".tmp")


def publish(tmp: Path, final: Path, *, overwrite: bool = False) -> None:
    """fsync ``tmp``, rename it onto ``final`` and fsync the directory.

    Unless ``overwrite`` (an atomic replace by a superset), refuses to replace an existing
    file: a sealed partition is never overwritten.
    """
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if not overwrite and final.exists():
        raise FileExistsError(errno.EEXIST, "already exists", str(final))
    os.rename(tmp, final)
    fsync_dir(final.parent)


def remove_quietly(path: Path) -> None:
    """Unlink ``path`` if it exists (cleanup on an error path; never raises)."""
    with contextlib.suppress(OSError):
        path.unlink()


def sweep_tmp(root: Path) -> int:
    """Delete every ``*.parquet.tmp`` left under ``root`` by a crash; return how many."""
    count = 0
    if not root.is_dir():
        return 0
    for tmp in root.rglob("*.parquet.tmp"):
        tmp.unlink()
        count += 1
    return count


def lock_archive(path: Path, timeout_s: float) -> int:
    """Open ``path`` and take an exclusive ``flock`` on it, waiting up to ``timeout_s``.

    Returns the descriptor (the lock lives as long as any process holds a copy of it: the
    partition writer process inherits one, so a writer left behind by a killed recorder
    keeps the archive locked until it has exited). Raises :class:`ArchiveError` on timeout.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise archive_error(exc, "create lock file", path) from exc
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ArchiveError(f"archive {path.parent.parent} is in use by another "
                                   f"recorder (lock {path} held for {timeout_s:g} s)") from None
            time.sleep(0.02)
        except OSError as exc:
            os.close(fd)
            raise archive_error(exc, "lock", path) from exc


__all__ = [
    "archive_error",
    "ensure_dir",
    "fsync_dir",
    "lock_archive",
    "publish",
    "remove_quietly",
    "sweep_tmp",
    "tmp_path_for",
]
