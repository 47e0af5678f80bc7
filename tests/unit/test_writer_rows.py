"""The writer process's column path: pipe payloads decoded straight into per-stream Arrow
columns (``recorder._rows``) and written by ``PartitionSet.add_rows`` give the same messages,
files, rows and checksums as the message path (``decode_records`` + ``PartitionSet.add``)."""

from __future__ import annotations

import random
import struct
import zlib
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recorder._partition import COMPACT_CHUNKS
from recorder._records import decode_records, encode_batch, encode_message
from recorder._rows import decode_stream_rows
from recorder._writer import PartitionSet, WriterConfig
from schemas.message import Message, Source
from tests.schemas_support import CASES, hftbacktest_messages

SEC = 1_000_000_000
T0 = 1_723_161_255 * SEC


def _feed(n: int, seed: int = 3) -> list[Message]:
    """Real and table-case payloads on several streams, REST rows and non-ASCII text."""
    rng = random.Random(seed)
    pool = [(m.stream, m.raw) for ms in hftbacktest_messages().values() for m in ms]
    pool += [(s, raw) for s, raw, _ in CASES]
    pool.append(("btcusdt@aggTrade", '{"e":"aggTrade","s":"BTC\u00e9USDT","bad'))
    out = []
    t = T0
    for i in range(n):
        stream, raw = rng.choice(pool)
        t += rng.randrange(0, 40_000_000)  # ~n * 20 ms: crosses rotation windows
        out.append(Message(stream, t, raw, rng.randrange(3), i,
                           Source.REST if rng.random() < 0.05 else Source.WS))
    return out


def _by_stream(msgs: list[Message]) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = defaultdict(list)
    for m in msgs:
        out[m.stream].append(m)
    return dict(out)


def test_decoded_rows_are_the_batch_messages_per_stream() -> None:
    msgs = _feed(900)
    payload = b"".join(encode_batch(msgs[a:a + 300]) for a in range(0, 900, 300))
    payload += encode_message(Message("x@aggTrade", 7, "caf\u00e9", 1, 2, Source.REST),
                              b"x@aggTrade")
    runs = decode_stream_rows(payload)
    got: dict[str, list[Message]] = defaultdict(list)
    for run in runs:
        rows = run.messages()
        got[run.stream] += rows
        assert run.first_ns == min(m.recv_ns for m in rows)
        assert run.last_ns == max(m.recv_ns for m in rows)
        assert run.raw_bytes == sum(len(m.raw.encode()) for m in rows)
        assert {m.stream for m in rows} == {run.stream}
    expected = [r for r in decode_records(payload) if isinstance(r, Message)]
    assert dict(got) == _by_stream(expected)
    assert sum(map(len, runs)) == len(expected) == 901


def test_single_stream_and_empty_batches() -> None:
    msgs = [m for m in _feed(300) if m.stream == "btcusdt@depth@0ms"]
    [run] = decode_stream_rows(encode_batch(msgs))
    assert run.messages() == msgs
    assert decode_stream_rows(encode_batch([])) == []


def _reframe(body: bytes) -> bytes:
    return struct.pack("<II", len(body), zlib.crc32(body)) + body


@pytest.mark.parametrize("damage", ["crc", "length", "source", "stream index", "utf8"])
def test_damaged_records_raise_value_error(damage: str) -> None:
    msgs = [Message("a@aggTrade", 1, "ab", 0, 0), Message("b@aggTrade", 2, "cd", 0, 1)]
    record = bytearray(encode_batch(msgs))
    body = bytearray(record[8:])
    n = 2
    tail = len(body) - 4  # texts: 4 bytes
    if damage == "crc":
        record[-1] ^= 0xFF
        payload = bytes(record)
    elif damage == "length":
        payload = _reframe(bytes(body[:-1]))
    elif damage == "source":
        body[tail - 1] = 7
        payload = _reframe(bytes(body))
    elif damage == "stream index":
        body[tail - n - 2] = 9  # last row's u16 stream index
        payload = _reframe(bytes(body))
    else:
        body[tail] = 0xFF
        payload = _reframe(bytes(body))
    with pytest.raises(ValueError):
        decode_stream_rows(payload)
    with pytest.raises(ValueError):
        decode_records(payload)


def _archive(root: Path) -> dict[str, tuple[dict[bytes, bytes], list[dict[str, object]]]]:
    out = {}
    for path in sorted(root.rglob("*.parquet")):
        f = pq.ParquetFile(path)
        meta = dict(f.schema_arrow.metadata or {})
        meta.pop(b"ticktape.version", None)
        out[str(path.relative_to(root))] = (meta, f.read().to_pylist())
    return out


@pytest.mark.parametrize("config", [
    WriterConfig(rotate_s=5, row_group_bytes=20_000, memory_budget_bytes=60_000),
    WriterConfig(rotate_s=900, max_partition_bytes=150_000, row_group_bytes=30_000,
                 max_open_files=2),
])
def test_column_path_writes_the_same_archive(tmp_path: Path, config: WriterConfig) -> None:
    msgs = _feed(1500)
    payloads = [encode_batch(msgs[a:a + 97]) for a in range(0, len(msgs), 97)]
    by_msgs = PartitionSet(tmp_path / "msgs", config)
    by_rows = PartitionSet(tmp_path / "rows", config)
    for i, payload in enumerate(payloads):
        by_msgs.add([r for r in decode_records(payload) if isinstance(r, Message)], i)
        by_rows.add_rows(decode_stream_rows(payload), i)
        if i % 5 == 4:
            now = msgs[min(len(msgs) - 1, 97 * (i + 1))].recv_ns
            by_msgs.tick(now)
            by_rows.tick(now)
        assert by_rows.pending_bytes == by_msgs.pending_bytes
        assert by_rows.low_segment() == by_msgs.low_segment()
    by_msgs.seal_all()
    by_rows.seal_all()
    expected = _archive(tmp_path / "msgs")
    assert len(expected) > 3
    assert _archive(tmp_path / "rows") == expected
    assert (by_rows.sealed_rows, by_rows.sealed_files) == (by_msgs.sealed_rows,
                                                           by_msgs.sealed_files)


def test_messages_and_columns_mixed_in_one_partition(tmp_path: Path) -> None:
    msgs = [m for m in _feed(600) if m.stream == "btcusdt@bookTicker"]
    cfg = WriterConfig(rotate_s=86_400)
    mixed = PartitionSet(tmp_path / "mixed", cfg)
    plain = PartitionSet(tmp_path / "plain", cfg)
    third = len(msgs) // 3
    mixed.add(msgs[:third], 0)  # opens the partition: message rows
    mixed.add_rows(decode_stream_rows(encode_batch(msgs[third:2 * third])), 0)  # columns
    mixed.add(msgs[2 * third:], 0)  # messages again, after the columns
    plain.add(msgs, 0)
    mixed.seal_all()
    plain.seal_all()
    got, expected = _archive(tmp_path / "mixed"), _archive(tmp_path / "plain")
    assert len(expected) == 1
    assert got == expected


def test_many_small_payloads_are_compacted_and_written_the_same(tmp_path: Path) -> None:
    msgs = _feed(2000, seed=5)
    cfg = WriterConfig(rotate_s=86_400)
    by_msgs = PartitionSet(tmp_path / "msgs", cfg)
    by_rows = PartitionSet(tmp_path / "rows", cfg)
    for a in range(0, len(msgs), 20):
        payload = b"".join(encode_batch(msgs[b:b + 5]) for b in range(a, a + 20, 5))
        by_msgs.add([r for r in decode_records(payload) if isinstance(r, Message)], 0)
        by_rows.add_rows(decode_stream_rows(payload), 0)
    open_ = by_rows._open.values()
    assert max(p.pending_rows for p in open_) > 200  # one stream kept > 16 payloads' rows
    assert max(len(p._chunks) for p in open_) <= COMPACT_CHUNKS
    by_msgs.seal_all()
    by_rows.seal_all()
    assert _archive(tmp_path / "rows") == _archive(tmp_path / "msgs")
