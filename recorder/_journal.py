"""Write-ahead journal: every message (and gap) is appended here before anything else.

Segment file ``<archive>/journal/<index:012d>.wal``::

    header  b"TTWAL\\x02\\n\\x00"                         (8 bytes; \\x01: version 1)
    block*  [u32 clen][u32 crc32(frame)][zstd frame of clen bytes]

A block's decompressed frame is a run of records ``[u32 len][u32 crc32(body)][body]``:

    batch body    [u8 3][u8 flags][u32 n][u16 s][u32 b] s x ([u16 len] stream)
                  recv_ns i64[n] conn_id i64[n] seq i64[n] raw_len u32[n] stream u16[n]
                  source u8[n] raw bytes (b)                  (version 2: one per append)
    message body  [u8 1][u8 source][i64 recv_ns][i64 conn_id][i64 seq][u16 n] stream raw
    gap body      [u8 2][u8 recovered][i64 start][i64 end][u16 n][u16 k] stream kind detail

Version 2 writes one batch record (columns, one checksum) per :meth:`Journal.append` instead
of one record per message; the reader takes both versions. The batch record is also what the
partition writer process is fed (:func:`encode_batch` / :func:`decode_batch`).

Appends are buffered in memory and written to the OS as one block per flush (the owner calls
:meth:`Journal.maybe_flush` at least every 100 ms); fsync follows :data:`FsyncPolicy`. A crash
can only tear the last block of a segment: :class:`SegmentReader` stops at the first block
whose length or checksum is wrong, reports what it dropped and :func:`truncate_segment` cuts it.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import zstandard

from recorder._fs import archive_error, fsync_dir
from recorder._records import (
    _REC,
    _decode,
    decode_batch,
    decode_records,
    encode_batch,
    encode_gap,
    encode_message,
)
from schemas.errors import ArchiveError
from schemas.message import Gap, Message

FsyncPolicy = Literal["never", "interval", "every-flush"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("never", "interval", "every-flush")

MAGIC = b"TTWAL\x02\n\x00"
MAGIC_V1 = b"TTWAL\x01\n\x00"
"""Header of segments written before batch records (still read)."""
SEGMENT_SUFFIX = ".wal"
MAX_BLOCK = 256 << 20
"""Largest frame accepted on read: a bigger length field can only be corruption."""

_BLOCK = struct.Struct("<II")


LAST_RECV_FILE = "last_recv_ns"
"""In the journal directory: the last journaled recv_ns as of the latest segment deletion or
clean close, so the next ``recorder_down`` gap has a start even when no segment is left."""


def read_last_recv(directory: Path) -> int | None:
    """The recv_ns stored in ``directory``'s :data:`LAST_RECV_FILE`, if any."""
    try:
        text = (directory / LAST_RECV_FILE).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def write_last_recv(directory: Path, last_recv_ns: int) -> None:
    """Store ``last_recv_ns`` atomically (written before journal segments are deleted)."""
    if not last_recv_ns:
        return
    path = directory / LAST_RECV_FILE
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write(str(last_recv_ns))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise archive_error(exc, "write", path) from exc


def segment_name(index: int) -> str:
    """File name of segment ``index``."""
    return f"{index:012d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """``(index, path)`` of every segment in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        stem = path.name[: -len(SEGMENT_SUFFIX)]
        if path.name.endswith(SEGMENT_SUFFIX) and stem.isdigit():
            found.append((int(stem), path))
    return sorted(found)


class SegmentReader:
    """Iterate the records of one segment, stopping at the first damage.

    After iteration, ``valid_bytes`` is the length of the intact prefix, ``torn_bytes`` what
    follows it, and ``dropped_records`` the records known lost (a damaged block whose frame
    still decompresses counts its unreadable records; an undecodable block counts as one).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.valid_bytes = 0
        self.torn_bytes = 0
        self.dropped_records = 0
        self.error = ""

    def records(self) -> Iterator[Message | Gap]:
        """Yield every intact record in order; never raises on damaged content."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise archive_error(exc, "read journal segment", self.path) from exc
        if data[: len(MAGIC)] not in (MAGIC, MAGIC_V1):
            self._damage(data, 0, "bad segment header")
            return
        pos = len(MAGIC)
        dctx = zstandard.ZstdDecompressor()
        while pos < len(data):
            if pos + _BLOCK.size > len(data):
                self._damage(data, pos, "truncated block header")
                return
            clen, crc = _BLOCK.unpack_from(data, pos)
            end = pos + _BLOCK.size + clen
            if clen > MAX_BLOCK or end > len(data):
                self._damage(data, pos, "truncated block")
                return
            frame = data[pos + _BLOCK.size:end]
            if zlib.crc32(frame) != crc:
                self._damage(data, pos, "block checksum mismatch")
                return
            try:
                plain = dctx.decompress(frame, max_output_size=MAX_BLOCK)
            except zstandard.ZstdError:
                self._damage(data, pos, "undecodable block")
                return
            parsed, ok = self._parse_block(plain)
            yield from parsed
            if not ok:
                self._damage(data, pos, "record checksum mismatch")
                return
            pos = end
            self.valid_bytes = pos
        self.valid_bytes = pos

    def _parse_block(self, plain: bytes) -> tuple[list[Message | Gap], bool]:
        out: list[Message | Gap] = []
        pos, size = 0, len(plain)
        while pos < size:
            if pos + _REC.size > size:
                self.dropped_records += 1
                return out, False
            n, crc = _REC.unpack_from(plain, pos)
            body = plain[pos + _REC.size:pos + _REC.size + n]
            if len(body) != n or n == 0 or zlib.crc32(body) != crc:
                self.dropped_records += 1
                return out, False
            try:
                rec = _decode(body)
            except (ValueError, struct.error, IndexError, UnicodeDecodeError):
                self.dropped_records += 1
                return out, False
            if isinstance(rec, list):
                out.extend(rec)
            else:
                out.append(rec)
            pos += _REC.size + n
        return out, True

    def _damage(self, data: bytes, pos: int, why: str) -> None:
        self.valid_bytes = pos
        self.torn_bytes = len(data) - pos
        if len(data) > len(MAGIC) and self.dropped_records == 0 and self.torn_bytes:
            self.dropped_records = 1  # at least the block that was being written
        self.error = why


def truncate_segment(path: Path, valid_bytes: int) -> None:
    """Cut a torn tail off ``path`` so that new appends never follow garbage."""
    try:
        if valid_bytes < len(MAGIC):
            path.unlink()
        else:
            with open(path, "r+b") as f:
                f.truncate(valid_bytes)
                f.flush()
                os.fsync(f.fileno())
        fsync_dir(path.parent)
    except OSError as exc:
        raise archive_error(exc, "truncate journal segment", path) from exc


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """Tunables of a :class:`Journal`."""

    fsync: FsyncPolicy = "interval"
    fsync_interval_s: float = 1.0
    flush_interval_s: float = 0.0
    """Buffer appended records at most this long before writing them to the OS. 0 (default):
    every :meth:`Journal.append` batch (one event-loop turn of the recorder) is written at
    once, so a ``kill -9`` loses only frames the recorder had not yet read."""
    flush_bytes: int = 1 << 20
    segment_bytes: int = 64 << 20
    segment_age_s: float = 300.0
    level: int = -1
    """zstd level of journal blocks: a fast negative level (about 4 us instead of 12 us per
    small block; the journal is short-lived, its CPU matters more than its size)."""


class Journal:
    """Appender of the current segment; one instance per archive, used from one thread."""

    def __init__(self, directory: Path, first_index: int, config: JournalConfig) -> None:
        if config.fsync not in FSYNC_POLICIES:
            raise ArchiveError(f"bad fsync policy {config.fsync!r}: one of {FSYNC_POLICIES}")
        self.directory = directory
        self.config = config
        self._cctx = zstandard.ZstdCompressor(level=config.level, write_content_size=True)
        self._parts: list[bytes] = []
        self._buffered = 0
        self._stream_bytes: dict[str, bytes] = {}
        self._fd = -1
        self._size = 0
        self._opened = 0.0
        self._last_flush = time.monotonic()
        self._last_fsync = self._last_flush
        self._failed: ArchiveError | None = None
        self.index = first_index
        self.written_bytes = 0
        self.appended_bytes = 0
        """Record bytes appended (uncompressed), for metrics."""
        self.last_recv_ns = 0
        self._open_segment()

    @property
    def unflushed_bytes(self) -> int:
        """Bytes appended but not yet handed to the OS."""
        return self._buffered

    def append(self, msgs: Sequence[Message]) -> int:
        """Buffer ``msgs``; return the index of the segment they will land in."""
        if not msgs:
            if self._failed is not None:
                raise self._failed
            return self.index
        return self.append_record(encode_batch(msgs, self._stream_bytes),
                                  msgs[-1].recv_ns)

    def append_record(self, record: bytes, last_recv_ns: int) -> int:
        """Buffer one framed record (:func:`encode_batch`) whose newest message was received
        at ``last_recv_ns``; return the index of the segment it will land in."""
        if self._failed is not None:
            raise self._failed
        self._parts.append(record)
        if last_recv_ns > self.last_recv_ns:
            self.last_recv_ns = last_recv_ns
        added = len(record)
        self._buffered += added
        self.appended_bytes += added
        if self._buffered >= self.config.flush_bytes:
            self.flush()
        return self.index

    def append_gap(self, gap: Gap) -> int:
        """Buffer a gap record; return its segment index."""
        if self._failed is not None:
            raise self._failed
        rec = encode_gap(gap)
        self._parts.append(rec)
        self._buffered += len(rec)
        return self.index

    def maybe_flush(self, now: float | None = None) -> bool:
        """Flush if the flush interval has passed; return whether a block was written."""
        now = time.monotonic() if now is None else now
        if now - self._last_flush < self.config.flush_interval_s:
            return False
        self.flush(now)
        return True

    def flush(self, now: float | None = None) -> None:
        """Write buffered records as one block, fsync per policy, roll the segment if due."""
        if self._failed is not None:
            raise self._failed
        now = time.monotonic() if now is None else now
        self._last_flush = now
        if self._parts:
            plain = b"".join(self._parts)
            self._parts.clear()
            self._buffered = 0
            frame = self._cctx.compress(plain)
            self._write(_BLOCK.pack(len(frame), zlib.crc32(frame)) + frame)
            policy = self.config.fsync
            due = now - self._last_fsync >= self.config.fsync_interval_s
            if policy == "every-flush" or (policy == "interval" and due):
                self._fsync(now)
        if self._size > len(MAGIC) and (self._size >= self.config.segment_bytes
                                        or now - self._opened >= self.config.segment_age_s):
            self.roll()

    def roll(self) -> None:
        """Close the current segment (flushing it) and start the next one."""
        if self._parts:
            self.flush()
        self._close_fd()
        self.index += 1
        self._open_segment()

    def close(self) -> None:
        """Flush, fsync (unless the policy is ``never``) and close the segment file."""
        try:
            if self._failed is None and self._fd >= 0:
                self.flush()
        finally:
            self._close_fd()

    def delete_before(self, index: int) -> int:
        """Delete every closed segment older than ``index``; return how many were deleted."""
        deleted = 0
        for idx, path in list_segments(self.directory):
            if idx >= min(index, self.index):
                break
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise archive_error(exc, "delete journal segment", path) from exc
            deleted += 1
        if deleted:
            try:
                fsync_dir(self.directory)
            except OSError as exc:
                raise archive_error(exc, "sync journal directory", self.directory) from exc
        return deleted

    def _open_segment(self) -> None:
        path = self.directory / segment_name(self.index)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            os.write(self._fd, MAGIC)
            fsync_dir(self.directory)
        except OSError as exc:
            self._close_fd()
            self._failed = archive_error(exc, "create journal segment", path)
            raise self._failed from exc
        self._size = len(MAGIC)
        self._opened = time.monotonic()

    def _write(self, block: bytes) -> None:
        view = memoryview(block)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            # A partial block would hide every later block from recovery: cut it off.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            self._failed = archive_error(exc, "append to journal",
                                         self.directory / segment_name(self.index))
            raise self._failed from exc
        self._size += len(block)
        self.written_bytes += len(block)

    def _fsync(self, now: float) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._failed = archive_error(exc, "fsync journal",
                                         self.directory / segment_name(self.index))
            raise self._failed from exc
        self._last_fsync = now

    def _close_fd(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            if self.config.fsync != "never" and self._failed is None:
                os.fsync(fd)
        except OSError as exc:
            self._failed = archive_error(exc, "fsync journal",
                                         self.directory / segment_name(self.index))
            raise self._failed from exc
        finally:
            os.close(fd)


__all__ = [
    "FSYNC_POLICIES",
    "LAST_RECV_FILE",
    "MAGIC",
    "MAGIC_V1",
    "FsyncPolicy",
    "Journal",
    "JournalConfig",
    "SegmentReader",
    "decode_batch",
    "decode_records",
    "encode_batch",
    "encode_gap",
    "encode_message",
    "list_segments",
    "read_last_recv",
    "segment_name",
    "truncate_segment",
    "write_last_recv",
]
