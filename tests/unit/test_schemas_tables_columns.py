"""``build_batch_columns`` and ``hash_arrays``: the column-wise twins of ``build_batch`` and
``hash_rows`` give identical batches and digests (real fixture streams and generated rows)."""

from __future__ import annotations

import hashlib
import random

import pyarrow as pa
import pytest

from schemas.checksum import hash_arrays, hash_rows, rows_checksum
from schemas.message import Message, Source
from schemas.tables import build_batch, build_batch_columns
from tests.schemas_support import CASES, cryptofeed_messages, hftbacktest_messages

STREAMS = sorted({**hftbacktest_messages(), **cryptofeed_messages()}.items())


def _columns(msgs: list[Message]) -> list[pa.Array]:
    return [pa.array([m.recv_ns for m in msgs], pa.int64()),
            pa.array([m.conn_id for m in msgs], pa.int64()),
            pa.array([m.seq for m in msgs], pa.int64()),
            pa.array([m.source.value for m in msgs], pa.string()),
            pa.array([m.raw for m in msgs], pa.string())]


def _same(stream: str, msgs: list[Message]) -> None:
    expected = build_batch(stream, [Message(m.stream, m.recv_ns, m.raw, m.conn_id, m.seq,
                                            m.source) for m in msgs])
    got = build_batch_columns(stream, *_columns(msgs))
    assert got.schema == expected.schema
    for name in expected.schema.names:
        assert got.column(name).to_pylist() == expected.column(name).to_pylist(), name
    assert got.equals(expected)


@pytest.mark.parametrize(("stream", "messages"), STREAMS, ids=[s for s, _ in STREAMS])
def test_columns_batch_equals_build_batch_on_fixtures(stream: str,
                                                      messages: list[Message]) -> None:
    _same(stream, messages)


def _mutate(rng: random.Random, text: str) -> str:
    choice = rng.randrange(8)
    if choice == 0:
        return text[: rng.randrange(len(text) + 1)]  # truncated JSON
    if choice == 1:
        return text.replace('"s":"BTCUSDT"', '"s":"BTC\u00e9USDT"')  # non-ASCII
    if choice == 2:
        return text.replace('"E":', '"E":NaN,"x":', 1)
    if choice == 3:
        return "[" + text + "]"
    if choice == 4:
        return text.replace('":"', '":1', 1)  # a value of the wrong JSON type
    if choice == 5:
        return text + "\n"
    return text


@pytest.mark.parametrize("seed", range(6))
def test_columns_batch_equals_build_batch_on_generated_rows(seed: int) -> None:
    rng = random.Random(seed)
    for stream, text, _ in CASES:
        rows = []
        for i in range(rng.randrange(1, 40)):
            raw = _mutate(rng, text) if rng.random() < 0.3 else text
            rows.append(Message(stream, rng.randrange(1 << 62), raw, rng.randrange(1 << 31),
                                i, rng.choice((Source.WS, Source.REST))))
        _same(stream, rows)
    _same("no such stream", [Message("x", 1, "{}", 0, 0)])


def test_columns_batch_equals_build_batch_when_empty() -> None:
    _same("btcusdt@bookTicker", [])


def test_columns_batch_rejects_out_of_range_conn_id() -> None:
    msgs = [Message("btcusdt@bookTicker", 1, "{}", 1 << 40, 0)]
    with pytest.raises((pa.ArrowInvalid, OverflowError)):
        build_batch("btcusdt@bookTicker", msgs)
    with pytest.raises(pa.ArrowInvalid):
        build_batch_columns("btcusdt@bookTicker", *_columns(msgs))


def _digest(times: pa.Array, raws: pa.Array) -> str:
    h = hashlib.sha256()
    hash_arrays(h, times, raws)
    return h.hexdigest()


@pytest.mark.parametrize("seed", range(4))
def test_hash_arrays_equals_hash_rows(seed: int) -> None:
    rng = random.Random(seed)
    texts = [None, "", "{}", "caf\u00e9 \u20ac", "x" * 3000, '{"a":1}']
    rows = [(rng.randrange(-(1 << 63), 1 << 63), rng.choice(texts))
            for _ in range(rng.randrange(0, 500))]
    times = pa.array([r[0] for r in rows], pa.int64())
    raws = pa.array([r[1] for r in rows], pa.string())
    assert _digest(times, raws) == rows_checksum(rows)
    a, b = sorted(rng.randrange(len(rows) + 1) for _ in range(2))
    assert _digest(times.slice(a, b - a), raws.slice(a, b - a)) == rows_checksum(rows[a:b])
    # Fed in two parts, as row groups are: one running digest.
    h = hashlib.sha256()
    hash_arrays(h, times.slice(0, a), raws.slice(0, a))
    hash_rows(h, rows[a:])
    assert h.hexdigest() == rows_checksum(rows)


def test_hash_arrays_over_many_chunks_and_fixture_rows() -> None:
    msgs = [m for _, ms in STREAMS for m in ms]
    rows = [(m.recv_ns, m.raw) for m in msgs] * 17  # > one internal chunk of rows
    times = pa.array([r[0] for r in rows], pa.int64())
    raws = pa.array([r[1] for r in rows], pa.string())
    assert len(rows) > 1 << 16
    assert _digest(times, raws) == rows_checksum(rows)


def test_hash_arrays_rejects_unequal_columns() -> None:
    with pytest.raises(ValueError):
        hash_arrays(hashlib.sha256(), pa.array([1], pa.int64()), pa.array([], pa.string()))
