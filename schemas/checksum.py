"""The content checksum of stored rows, shared by the writer, ``verify`` and ``compact``.

Pure hashing, no I/O: the recorder writes it into every partition's metadata
(``ticktape.content_sha256``) and the replay side recomputes it to prove a file unchanged.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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


_CHUNK_ROWS = 1 << 16
_LITTLE = sys.byteorder == "little"


def _fixed_as_binary(values: pa.Array[Any], width: int) -> pa.Array[Any]:
    """Each ``width``-byte value of a fixed-width numeric array as its native bytes."""
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(values), [None, values.buffers()[1]], offset=values.offset
    ).cast(pa.binary())


def hash_arrays(h: Any, recv_ns: pa.Array[Any], raw: pa.Array[Any]) -> None:
    """Feed rows given as Arrow columns (``int64`` ``recv_ns``, ``string`` ``raw``) into a
    ``hashlib`` object: the same bytes as :func:`hash_rows` of the rows as tuples.

    The packed row stream is built by Arrow kernels (the 12-byte row headers are the
    columns' little-endian values, joined to each text element-wise), so no per-row Python;
    ``hashlib`` is fed once per chunk of rows. A null ``recv_ns`` is an error.
    """
    if len(recv_ns) != len(raw):
        raise ValueError("hash_arrays: columns differ in length")
    if not _LITTLE or recv_ns.null_count:
        # Big-endian buffers would hash other bytes; null times are not rows.
        times: list[Any] = recv_ns.to_pylist()
        hash_rows(h, zip(times, raw.to_pylist(), strict=True))
        return
    recv_ns = recv_ns.cast(pa.int64())
    for start in range(0, len(raw), _CHUNK_ROWS):
        t = recv_ns.slice(start, _CHUNK_ROWS)
        text: Any = raw.slice(start, _CHUNK_ROWS)
        if text.null_count:
            text = pc.fill_null(text, "")
        lens = pc.binary_length(text).cast(pa.uint32())
        joined: Any = pc.binary_join_element_wise(
            _fixed_as_binary(t, 8), _fixed_as_binary(lens, 4), text.cast(pa.binary()), b""
        )
        offsets = array("i")
        offsets.frombytes(joined.buffers()[1])
        first, last = offsets[joined.offset], offsets[joined.offset + len(joined)]
        h.update(memoryview(joined.buffers()[2])[first:last])


def rows_checksum(rows: Iterable[tuple[int, str | None]]) -> str:
    """Hex sha256 of ``(recv_ns, raw)`` rows, as stored in ``ticktape.content_sha256``."""
    h = hashlib.sha256()
    hash_rows(h, rows)
    return h.hexdigest()


__all__ = ["RAW_CHECKSUM_ALGO", "hash_arrays", "hash_rows", "rows_checksum"]
