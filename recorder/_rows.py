"""Journal batch records decoded straight into per-stream Arrow columns (writer side).

The writer process is fed the journal's batch records (:mod:`recorder._records`), whose
body is already columnar. :func:`decode_stream_rows` turns one pipe payload (any number of
records) into :class:`StreamRows`, one per stream, holding the
:data:`schemas.tables.COMMON_FIELDS` columns as Arrow arrays: the records' columns are
gathered with ``array``/``bytes`` copies and turned into Arrow once per payload; no
``Message`` object and no Python string per row. Rows of a stream keep their order. Format 1
message records are decoded as messages and appended the same way.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from recorder._records import _F_ASCII, _T_BATCH, batch_columns, decode_body, record_bodies
from schemas.message import Message, Source

ROWS_SCHEMA = pa.schema([
    pa.field("recv_ns", pa.int64(), nullable=False),
    pa.field("conn_id", pa.int64(), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("source", pa.dictionary(pa.uint8(), pa.string()), nullable=False),
    pa.field("raw", pa.string(), nullable=False),
])
"""The columns of :attr:`StreamRows.batch`: :data:`schemas.tables.COMMON_FIELDS` as the
journal record holds them (``conn_id`` int64, ``source`` as its record code); cast to the
stored types once per row group by :func:`schemas.tables.build_batch_columns`."""

_SOURCES = (Source.WS, Source.REST)  # record codes 0, 1 (recorder._records)
_SOURCE_TEXT = pa.array([s.value for s in _SOURCES], pa.string())
_SOURCE_CODE = {s: i for i, s in enumerate(_SOURCES)}


@dataclass(frozen=True, slots=True)
class StreamRows:
    """Consecutive rows of one stream: ``batch`` has :data:`ROWS_SCHEMA`, ``first_ns`` and
    ``last_ns`` bound its ``recv_ns`` values, ``raw_bytes`` is the UTF-8 size of its texts."""

    stream: str
    batch: pa.RecordBatch
    first_ns: int
    last_ns: int
    raw_bytes: int

    def __len__(self) -> int:
        return self.batch.num_rows

    def messages(self) -> list[Message]:
        """The rows as messages (the writer's row-by-row path: rotation, row-group cuts)."""
        b = self.batch
        n = b.num_rows
        cols: list[Any] = [b.column(i).to_pylist() for i in (0, 1, 2, 4)]
        codes: list[int] = cast(Any, b.column(3)).indices.to_pylist()
        return Message.from_columns([self.stream] * n, cols[0], cols[3], cols[1], cols[2],
                                    [_SOURCES[c] for c in codes])


def _source_array(codes: bytes) -> pa.Array[Any]:
    indices = pa.Array.from_buffers(pa.uint8(), len(codes), [None, pa.py_buffer(codes)])
    return pa.DictionaryArray.from_arrays(indices, _SOURCE_TEXT)


def messages_batch(msgs: Sequence[Message]) -> pa.RecordBatch:
    """The :data:`ROWS_SCHEMA` columns of ``msgs``."""
    return pa.RecordBatch.from_arrays([
        pa.array([m.recv_ns for m in msgs], pa.int64()),
        pa.array([m.conn_id for m in msgs], pa.int64()),
        pa.array([m.seq for m in msgs], pa.int64()),
        _source_array(bytes([_SOURCE_CODE[m.source] for m in msgs])),
        pa.array([m.raw for m in msgs], pa.string()),
    ], schema=ROWS_SCHEMA)


def _column(code: str, view: memoryview, pos: int, n: int) -> tuple[array[int], int]:
    col = array(code)
    end = pos + col.itemsize * n
    col.frombytes(view[pos:end])
    if len(col) != n:
        raise ValueError("batch record lengths do not add up")
    return col, end


def _arrow(typ: pa.DataType, col: array[int]) -> pa.Array[Any]:
    return pa.Array.from_buffers(typ, len(col), [None, pa.py_buffer(col)])


class _Columns:
    """The rows of a payload's records, gathered column by column (one Arrow build)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.recv = array("q")
        self.conn = array("q")
        self.seq = array("q")
        self.lens = array("I")
        self.idx = array("H")
        self.src = bytearray()
        self.data: list[bytes] = []

    def stream(self, name: str) -> int:
        i = self.index.get(name)
        if i is None:
            if len(self.names) >= 1 << 16:
                raise ValueError("too many streams in one payload")
            i = self.index[name] = len(self.names)
            self.names.append(name)
        return i

    def add_batch(self, body: memoryview) -> None:
        """Append the rows of one batch record body (as ``recorder._records`` made it)."""
        b = batch_columns(body)
        local = [self.stream(name) for name in b.names]
        recv, conn, seq, lens, idx, src = b.recv, b.conn, b.seq, b.lens, b.idx, b.src
        n = len(recv)
        if src.count(0) + src.count(1) != n:
            raise ValueError("unknown source code")
        data = bytes(b.data)
        if not (b.flags & _F_ASCII and data.isascii()):
            data.decode()  # UnicodeDecodeError on a damaged text, as decode_batch
        if len(local) == 1 and idx.count(0) == n:
            self.idx.extend(array("H", local) * n)
        else:
            self.idx.extend(array("H", [local[i] for i in idx]))  # IndexError: bad index
        self.recv.extend(recv)
        self.conn.extend(conn)
        self.seq.extend(seq)
        self.lens.extend(lens)
        self.src += src
        self.data.append(data)

    def add_messages(self, msgs: Sequence[Message]) -> None:
        """Append message rows (format 1 message records)."""
        for m in msgs:
            raw = m.raw.encode()
            self.idx.append(self.stream(m.stream))
            self.recv.append(m.recv_ns)
            self.conn.append(m.conn_id)
            self.seq.append(m.seq)
            self.lens.append(len(raw))
            self.src.append(_SOURCE_CODE[m.source])
            self.data.append(raw)

    def rows(self) -> list[StreamRows]:
        """One :class:`StreamRows` per stream, in first-appearance order."""
        n = len(self.recv)
        if not n:
            return []
        offsets = array("i", accumulate(self.lens, initial=0))  # OverflowError past 2 GiB
        raw = pa.StringArray.from_buffers(n, pa.py_buffer(offsets),
                                          pa.py_buffer(b"".join(self.data)))
        batch = pa.RecordBatch.from_arrays(
            [_arrow(pa.int64(), self.recv), _arrow(pa.int64(), self.conn),
             _arrow(pa.int64(), self.seq), _source_array(bytes(self.src)), raw],
            schema=ROWS_SCHEMA)
        if len(self.names) == 1:
            return [StreamRows(self.names[0], batch, min(self.recv), max(self.recv),
                               offsets[-1])]
        counts = [self.idx.count(i) for i in range(len(self.names))]
        # A stable sort: each stream's rows keep their order. The streams' slices share the
        # sorted buffers; OpenPartition compacts what it buffers, so they are not pinned.
        ordered = batch.take(pc.sort_indices(_arrow(pa.uint16(), self.idx)))
        times, _ = _column("q", _buffer(ordered, 0), 0, n)
        ends, _ = _column("i", _buffer(ordered, 4), 0, n + 1)
        out = []
        start = 0
        for name, count in zip(self.names, counts, strict=True):
            stop = start + count
            span = times[start:stop]
            out.append(StreamRows(name, ordered.slice(start, count), min(span), max(span),
                                  ends[stop] - ends[start]))
            start = stop
        return out


def _buffer(batch: pa.RecordBatch, column: int) -> memoryview:
    """The values (offsets for ``raw``) buffer of a column fresh from ``take``."""
    buf: Any = batch.column(column).buffers()[1]
    return memoryview(buf)


def decode_stream_rows(plain: bytes | memoryview) -> list[StreamRows]:
    """The rows of every message and batch record of a writer pipe payload, one
    :class:`StreamRows` per stream (rows in payload order); Arrow arrays are built once
    per payload, however many records it holds.

    Raises ``ValueError`` at the first damaged record (as :func:`decode_records`)."""
    cols = _Columns()
    for body in record_bodies(plain):
        if body[0] != _T_BATCH:
            rec = decode_body(body)
            cols.add_messages([rec] if isinstance(rec, Message) else [])
            continue
        try:
            cols.add_batch(body)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"undecodable record: {exc}") from exc
    try:
        return cols.rows()
    except (OverflowError, pa.ArrowException) as exc:
        raise ValueError(f"undecodable payload: {exc}") from exc


__all__ = ["ROWS_SCHEMA", "StreamRows", "decode_stream_rows", "messages_batch"]
