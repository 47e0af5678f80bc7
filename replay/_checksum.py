"""A content checksum of a table that does not depend on how it is split into batches or files.

``compact`` proves with it that the merged file holds exactly the rows of the files it
replaces, in the same order; ``verify`` compares it with the one stored in a file's metadata.

Definition (stable across pyarrow versions, independent of batching, file layout and
compression): for every column, in order, three byte streams are hashed with BLAKE2b-256:
the validity of each value (one byte 0/1), the value bytes (little-endian fixed-width values,
nulls as zero; for strings the UTF-8 bytes, nulls as empty) and, for variable-length values,
each length as little-endian int64. A list column hashes its lengths and its flattened items
as a child column. The checksum is the SHA-256 of the column names, types and these digests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from schemas.checksum import RAW_CHECKSUM_ALGO, hash_rows
from schemas.formatters import restore_raw_column
from schemas.tables import RAW_FMT, table_for

CHECKSUM_ALGORITHM = "ticktape-content-v1"


def logical_schema(stream: str) -> pa.Schema:
    """The columns a stream's content checksum covers: the stored ones but ``raw_fmt``."""
    schema = table_for(stream).schema
    i = schema.get_field_index(RAW_FMT)
    return schema if i < 0 else schema.remove(i)


def logical_batch(stream: str, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    """The rows as received: ``raw`` restored where it is stored null, ``raw_fmt`` dropped.

    Storage may null a ``raw`` text that the typed columns re-render exactly
    (:mod:`schemas.formatters`); checksums cover the text, not its physical form, so a file
    written with or without ``raw`` has the same content checksum.
    Raises :class:`~schemas.errors.CorruptDataError` if a null ``raw`` cannot be rendered.
    """
    rb = batch if isinstance(batch, pa.RecordBatch) else pa.RecordBatch.from_arrays(
        [c.combine_chunks() for c in batch.columns], schema=batch.schema)
    if rb.column("raw").null_count:
        i_raw = rb.schema.get_field_index("raw")
        rb = rb.set_column(i_raw, rb.schema.field(i_raw), restore_raw_column(stream, rb))
    i_fmt = rb.schema.get_field_index(RAW_FMT)
    return rb if i_fmt < 0 else rb.remove_column(i_fmt)


def update_raw_checksum(h: Any, batch: pa.RecordBatch | pa.Table) -> None:
    """Feed the ``recv_ns``/``raw`` rows of ``batch`` into ``h`` per :data:`RAW_CHECKSUM_ALGO`.

    A null ``raw`` counts as empty text.
    """
    recv = cast(list[int], batch.column("recv_ns").to_pylist())  # recv_ns is NOT NULL
    raw = cast(list[str | None], batch.column("raw").to_pylist())
    hash_rows(h, zip(recv, raw, strict=True))


class _ColumnHash:
    """Running hashes of one column (and, for lists, of its items)."""

    __slots__ = ("child", "lengths", "type", "validity", "values")

    def __init__(self, typ: pa.DataType) -> None:
        self.type = typ
        self.validity = hashlib.blake2b(digest_size=32)
        self.values = hashlib.blake2b(digest_size=32)
        self.lengths = hashlib.blake2b(digest_size=32)
        self.child: _ColumnHash | None = None
        if pa.types.is_list(typ) or pa.types.is_large_list(typ):
            self.child = _ColumnHash(typ.value_type)

    def update(self, arr: Any) -> None:
        if len(arr) == 0:
            return
        self.validity.update(_fixed(pc.cast(pc.is_valid(arr), pa.uint8())))
        typ = arr.type
        if self.child is not None:
            lengths = pc.fill_null(pc.list_value_length(arr), 0)
            self.lengths.update(_fixed(pc.cast(lengths, pa.int64())))
            self.child.update(arr.flatten())
        elif _is_text(typ):
            empty = "" if pa.types.is_string(typ) or pa.types.is_large_string(typ) else b""
            filled = pc.fill_null(arr, empty) if arr.null_count else arr
            self.lengths.update(_fixed(pc.cast(pc.binary_length(filled), pa.int64())))
            self.values.update(_string_bytes(filled))
        elif pa.types.is_boolean(typ):
            self.values.update(_fixed(pc.cast(pc.fill_null(arr, pa.scalar(False)), pa.uint8())))
        elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_temporal(typ):
            self.values.update(_fixed(pc.fill_null(arr, pa.scalar(0, typ))
                                      if arr.null_count else arr))
        else:
            raise TypeError(f"no content checksum for column type {typ}")

    def digest(self) -> bytes:
        out = self.validity.digest() + self.values.digest() + self.lengths.digest()
        return out + (self.child.digest() if self.child is not None else b"")


def _type_name(typ: pa.DataType) -> str:
    """Type text without list item names (Parquet round trips rename ``item`` to ``element``)."""
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return f"list<{_type_name(typ.value_type)}>"
    return str(typ)


def _is_text(typ: pa.DataType) -> bool:
    return bool(pa.types.is_string(typ) or pa.types.is_binary(typ)
                or pa.types.is_large_string(typ) or pa.types.is_large_binary(typ))


def _fixed(arr: Any) -> bytes | memoryview:
    """The value bytes of a fixed-width array (Arrow stores them little-endian here)."""
    width = arr.type.bit_width // 8
    data = arr.buffers()[1]
    if data is None:
        return b""
    return memoryview(data)[arr.offset * width:(arr.offset + len(arr)) * width]


def _string_bytes(arr: Any) -> bytes | memoryview:
    """The UTF-8 bytes of a null-free string/binary array, honouring its slice offset."""
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    bufs = arr.buffers()
    offsets = memoryview(bufs[1]).cast("q" if large else "i")
    start, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    data = bufs[2]
    return b"" if data is None or end == start else memoryview(data)[start:end]


class ContentHasher:
    """Feed record batches (or tables) of one schema in order; :meth:`hexdigest` at the end."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self._cols = [_ColumnHash(f.type) for f in schema]
        self.rows = 0

    def update(self, data: pa.RecordBatch | pa.Table) -> None:
        """Hash the next rows. Their columns must be named and typed as the schema's."""
        if data.schema.names != self.schema.names or list(map(_type_name, data.schema.types)) \
                != list(map(_type_name, self.schema.types)):
            raise ValueError("batch schema differs from the hasher's schema")
        columns: list[Any] = list(data.columns)
        for h, column in zip(self._cols, columns, strict=True):
            chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
            for chunk in chunks:
                h.update(chunk)
        self.rows += data.num_rows

    def hexdigest(self) -> str:
        """SHA-256 (hex) of the schema and every column's digests."""
        final = hashlib.sha256(CHECKSUM_ALGORITHM.encode())
        for f, h in zip(self.schema, self._cols, strict=True):
            final.update(f"{f.name}:{_type_name(f.type)}\n".encode())
            final.update(h.digest())
        return final.hexdigest()


def content_checksum(batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema) -> str:
    """The content checksum of the rows of ``batches`` in order (module docstring)."""
    hasher = ContentHasher(schema)
    for b in batches:
        hasher.update(b)
    return hasher.hexdigest()


__all__ = ["CHECKSUM_ALGORITHM", "RAW_CHECKSUM_ALGO", "ContentHasher", "content_checksum",
           "logical_batch", "logical_schema", "update_raw_checksum"]
