"""Journal record codec: message, gap and batch records (no I/O).

A record is ``[u32 len][u32 crc32(body)][body]``; bodies:

    batch body    [u8 3][u8 flags][u32 n][u16 s][u32 b] s x ([u16 len] stream)
                  recv_ns i64[n] conn_id i64[n] seq i64[n] raw_len u32[n] stream u16[n]
                  source u8[n] raw bytes (b)
    message body  [u8 1][u8 source][i64 recv_ns][i64 conn_id][i64 seq][u16 n] stream raw
    gap body      [u8 2][u8 recovered][i64 start][i64 end][u16 n][u16 k] stream kind detail

The journal (:mod:`recorder._journal`) writes batch and gap records since segment format 2
(message records: format 1, still read); the writer process is fed the same records.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

from schemas.message import Gap, GapKind, Message, Source

_REC = struct.Struct("<II")
_MSG = struct.Struct("<BBqqqH")
_GAP = struct.Struct("<BBqqHH")
_BATCH = struct.Struct("<BBIHI")
_T_MSG = 1
_T_GAP = 2
_T_BATCH = 3
_F_ASCII = 1
_LITTLE = sys.byteorder == "little"
_SOURCES = (Source.WS, Source.REST)
_SOURCE_CODE = {Source.WS: 0, Source.REST: 1}


def encode_message(m: Message, stream_bytes: bytes) -> bytes:
    """One framed message record (exposed for tests and benchmarks)."""
    body = b"".join((_MSG.pack(_T_MSG, _SOURCE_CODE[m.source], m.recv_ns, m.conn_id, m.seq,
                               len(stream_bytes)), stream_bytes, m.raw.encode()))
    return _REC.pack(len(body), zlib.crc32(body)) + body


def encode_gap(g: Gap) -> bytes:
    """One framed gap record."""
    s, k, d = g.stream.encode(), g.kind.value.encode(), g.detail.encode()
    body = b"".join((_GAP.pack(_T_GAP, int(g.recovered), g.start_ns, g.end_ns, len(s), len(k)),
                     s, k, d))
    return _REC.pack(len(body), zlib.crc32(body)) + body


def encode_batch(msgs: Sequence[Message], cache: dict[str, bytes] | None = None) -> bytes:
    """One framed batch record of ``msgs`` (columns, one CRC); ``cache`` maps stream names
    to their UTF-8 bytes across calls."""
    if cache is None:
        cache = {}
    index: dict[str, int] = {}
    names: list[bytes] = []
    idx: list[int] = []
    put = idx.append
    for m in msgs:
        s = m.stream
        i = index.get(s)
        if i is None:
            i = index[s] = len(names)
            sb = cache.get(s)
            if sb is None:
                sb = cache[s] = s.encode()
            names.append(sb)
        put(i)
    raws = [m.raw for m in msgs]
    text = "".join(raws)
    data = text.encode()
    ascii_ = len(data) == len(text)
    lens = array("I", map(len, raws) if ascii_ else [len(r.encode()) for r in raws])
    codes = _SOURCE_CODE
    cols = [array("q", [m.recv_ns for m in msgs]), array("q", [m.conn_id for m in msgs]),
            array("q", [m.seq for m in msgs]), lens, array("H", idx)]
    if not _LITTLE:
        for c in cols:
            c.byteswap()
    head = [_BATCH.pack(_T_BATCH, _F_ASCII if ascii_ else 0, len(msgs), len(names), len(data))]
    for sb in names:
        head.append(struct.pack("<H", len(sb)))
        head.append(sb)
    body = b"".join((*head, *(c.tobytes() for c in cols),
                     bytes([codes[m.source] for m in msgs]), data))
    return _REC.pack(len(body), zlib.crc32(body)) + body


def _column(code: str, view: memoryview, pos: int, n: int) -> tuple[array[int], int]:
    col = array(code)
    end = pos + col.itemsize * n
    col.frombytes(view[pos:end])
    if len(col) != n:
        raise ValueError("batch record lengths do not add up")
    if not _LITTLE:  # the record is little-endian; arrays are native
        col.byteswap()
    return col, end


@dataclass(frozen=True, slots=True)
class BatchColumns:
    """The columns of one batch record body, integers in native byte order."""

    flags: int
    names: list[str]
    recv: array[int]
    conn: array[int]
    seq: array[int]
    lens: array[int]
    idx: array[int]
    src: bytes
    data: memoryview


def batch_columns(body: bytes | memoryview) -> BatchColumns:
    """Split a batch record body (as :func:`encode_batch` made it) into its columns.

    Raises ``ValueError`` (or ``struct.error``) when its lengths do not add up."""
    view = memoryview(body)
    _, flags, n, k, nbytes = _BATCH.unpack_from(view)
    pos = _BATCH.size
    names = []
    for _ in range(k):
        (size,) = struct.unpack_from("<H", view, pos)
        names.append(bytes(view[pos + 2:pos + 2 + size]).decode())
        pos += 2 + size
    recv, pos = _column("q", view, pos, n)
    conn, pos = _column("q", view, pos, n)
    seq, pos = _column("q", view, pos, n)
    lens, pos = _column("I", view, pos, n)
    idx, pos = _column("H", view, pos, n)
    src = bytes(view[pos:pos + n])
    pos += n
    if len(view) != pos + nbytes or len(src) != n or sum(lens) != nbytes:
        raise ValueError("batch record lengths do not add up")
    return BatchColumns(flags, names, recv, conn, seq, lens, idx, src, view[pos:])


def _decode_batch(body: bytes | memoryview) -> list[Message]:
    b = batch_columns(body)
    flags, names, n, data, src = b.flags, b.names, len(b.recv), b.data, b.src
    recv, conn, seq, idx = b.recv.tolist(), b.conn.tolist(), b.seq.tolist(), b.idx.tolist()
    ends = list(accumulate(b.lens))
    starts = [0, *ends[:-1]]
    if flags & _F_ASCII:
        text = str(data, "ascii")
        raws = [text[a:b] for a, b in zip(starts, ends, strict=True)]
    else:
        raws = [bytes(data[a:b]).decode() for a, b in zip(starts, ends, strict=True)]
    streams = list(map(names.__getitem__, idx))
    sources = [Source.WS] * n if src.count(0) == n else [_SOURCES[c] for c in src]
    return list(map(Message, streams, recv, raws, conn, seq, sources))


def decode_batch(record: bytes | memoryview) -> list[Message]:
    """The messages of one framed batch record (as :func:`encode_batch` made it).

    Raises ``ValueError`` on a wrong checksum or inconsistent lengths."""
    view = memoryview(record)
    n, crc = _REC.unpack_from(view)
    body = view[_REC.size:_REC.size + n]
    if len(body) != n or zlib.crc32(body) != crc or not n or body[0] != _T_BATCH:
        raise ValueError("bad batch record")
    try:
        return _decode_batch(body)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"bad batch record: {exc}") from exc


def _decode(body: bytes | memoryview) -> Message | Gap | list[Message]:
    if body[0] == _T_BATCH:
        return _decode_batch(body)
    body = bytes(body)
    if body[0] == _T_MSG:
        _, src, recv_ns, conn_id, seq, n = _MSG.unpack_from(body)
        o = _MSG.size
        return Message(body[o:o + n].decode(), recv_ns, body[o + n:].decode(), conn_id, seq,
                       _SOURCES[src])
    if body[0] == _T_GAP:
        _, rec, start, end, n, k = _GAP.unpack_from(body)
        o = _GAP.size
        return Gap(body[o:o + n].decode(), start, end, GapKind(body[o + n:o + n + k].decode()),
                   body[o + n + k:].decode(), bool(rec))
    raise ValueError(f"unknown record type {body[0]}")


def record_bodies(plain: bytes | memoryview) -> Iterator[memoryview]:
    """The checksummed body of every framed record of a decompressed block (or a writer pipe
    payload), in order.

    Raises ``ValueError`` at the first truncated or damaged record."""
    view = memoryview(plain)
    pos, size = 0, len(view)
    while pos < size:
        if pos + _REC.size > size:
            raise ValueError("truncated record header")
        n, crc = _REC.unpack_from(view, pos)
        body = view[pos + _REC.size:pos + _REC.size + n]
        if len(body) != n or n == 0 or zlib.crc32(body) != crc:
            raise ValueError("record checksum mismatch")
        yield body
        pos += _REC.size + n


def decode_body(body: memoryview) -> Message | Gap | list[Message]:
    """One record body (from :func:`record_bodies`) decoded; ``ValueError`` if it cannot be."""
    try:
        return _decode(body)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"undecodable record: {exc}") from exc


def decode_records(plain: bytes | memoryview) -> list[Message | Gap]:
    """Every record of a decompressed block (or a writer pipe payload), in order.

    Raises ``ValueError`` at the first damaged record."""
    out: list[Message | Gap] = []
    for body in record_bodies(plain):
        rec = decode_body(body)
        if isinstance(rec, list):
            out.extend(rec)
        else:
            out.append(rec)
    return out


__all__ = ["decode_batch", "decode_records", "encode_batch", "encode_gap", "encode_message"]
