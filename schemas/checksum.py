"""The content checksum of stored rows, shared by the writer, ``verify`` and ``compact``.

Pure hashing, no I/O: the recorder writes it into every partition's metadata
(``ticktape.content_sha256``) and the replay side recomputes it to prove a file unchanged.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import Any

RAW_CHECKSUM_ALGO = "sha256 over rows in file order of i64le(recv_ns) u32le(len(raw)) raw(utf-8)"
"""What ``ticktape.checksum_algo`` names; a NULL ``raw`` counts as empty text."""

_ROW = struct.Struct("<qI")


def hash_rows(h: Any, rows: Iterable[tuple[int, str | None]]) -> None:
    """Feed ``(recv_ns, raw)`` rows into a ``hashlib`` object per :data:`RAW_CHECKSUM_ALGO`."""
    pack = _ROW.pack
    parts: list[bytes] = []
    for recv_ns, raw in rows:
        b = raw.encode() if raw is not None else b""
        parts.append(pack(recv_ns, len(b)))
        parts.append(b)
    h.update(b"".join(parts))


def rows_checksum(rows: Iterable[tuple[int, str | None]]) -> str:
    """Hex sha256 of ``(recv_ns, raw)`` rows, as stored in ``ticktape.content_sha256``."""
    h = hashlib.sha256()
    hash_rows(h, rows)
    return h.hexdigest()


__all__ = ["RAW_CHECKSUM_ALGO", "hash_rows", "rows_checksum"]
