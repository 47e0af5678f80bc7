"""Replayer: merge order, gaps before the next message, filters, determinism, pacing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay import HashingHandler, Replayer
from replay._merge import merge_runs
from schemas.errors import ConfigError
from schemas.message import Event, Gap, GapKind, Message, Source
from tests.replay_support import (
    MS,
    SEC,
    T0,
    a_gap,
    agg_trades,
    book_tickers,
    write_gaps,
    write_partition,
)


def _two_stream_archive(root: Path) -> tuple[list[Message], list[Message]]:
    # Interleaved timestamps, ties across streams, two partitions per stream.
    trades = agg_trades("BTCUSDT", T0, 40, 7 * MS, conn_id=2)
    books = book_tickers("BTCUSDT", T0, 60, 5 * MS, conn_id=1)
    write_partition(root, "btcusdt@aggTrade", trades[:25])
    write_partition(root, "btcusdt@aggTrade", trades[25:])
    write_partition(root, "btcusdt@bookTicker", books[:10])
    write_partition(root, "btcusdt@bookTicker", books[10:])
    return trades, books


def _expected(*streams: list[Message]) -> list[Message]:
    names = sorted({m.stream for s in streams for m in s})
    return sorted((m for s in streams for m in s),
                  key=lambda m: (m.recv_ns, m.conn_id, m.seq, names.index(m.stream)))


async def _collect(replayer: Replayer) -> list[Event]:
    out: list[Event] = []
    await replayer.run(out.append)  # a plain sync callable is a handler too
    return out


async def test_merge_order_matches_archive_order(tmp_path: Path) -> None:
    trades, books = _two_stream_archive(tmp_path)
    got = await _collect(Replayer(tmp_path, speed=0))
    assert got == _expected(trades, books)
    assert all(isinstance(m, Message) and type(m) is Message for m in got)
    first = got[0]
    assert isinstance(first, Message) and first.source is Source.WS
    assert first.data["e"] in ("aggTrade", "bookTicker")
    assert list(Replayer(tmp_path, speed=0).events()) == got


async def test_gap_is_delivered_before_first_message_at_or_after_its_start(tmp_path: Path) -> None:
    trades, books = _two_stream_archive(tmp_path)
    gap_mid = a_gap("btcusdt@aggTrade", T0 + 70 * MS, T0 + 90 * MS)  # equals trades[10].recv_ns
    gap_first = a_gap("*", T0 - SEC, T0 + 1, GapKind.RECORDER_DOWN)
    gap_last = a_gap("btcusdt@bookTicker", T0 + 10 * SEC, T0 + 11 * SEC)
    other = a_gap("ethusdt@aggTrade", T0 + 50 * MS, T0 + 60 * MS)
    write_gaps(tmp_path, [gap_mid, gap_first, gap_last, other])
    got = await _collect(Replayer(tmp_path, speed=0))
    gaps = [e for e in got if isinstance(e, Gap)]
    assert gaps == [gap_first, gap_mid, gap_last]  # the ethusdt gap is not selected
    assert got[0] == gap_first and got[-1] == gap_last
    i = got.index(gap_mid)
    before, after = got[i - 1], got[i + 1]
    assert isinstance(before, Message) and before.recv_ns < gap_mid.start_ns
    assert isinstance(after, Message) and after.recv_ns == gap_mid.start_ns
    assert [e for e in got if isinstance(e, Message)] == _expected(trades, books)


async def test_filters_by_stream_start_and_end(tmp_path: Path) -> None:
    trades, books = _two_stream_archive(tmp_path)
    start, end = T0 + 50 * MS, T0 + 150 * MS
    got = await _collect(Replayer(tmp_path, streams="BTCUSDT@aggTrade",
                                  start=start, end=str(end), speed=0))
    assert got == [m for m in trades if start <= m.recv_ns < end]
    iso = await _collect(Replayer(tmp_path, streams=["btcusdt@bookTicker"],
                                  start="2024-08-09T00:00:00.050Z",
                                  end="2024-08-09T00:00:00.150", speed=0))
    assert iso == [m for m in books if start <= m.recv_ns < end]
    with pytest.raises(ConfigError):
        Replayer(tmp_path, start=end, end=start)
    with pytest.raises(ConfigError):
        Replayer(tmp_path, start="yesterday")


async def test_same_selection_same_hash(tmp_path: Path) -> None:
    _, books = _two_stream_archive(tmp_path)
    first = Replayer(tmp_path, speed=0).content_hash()
    assert Replayer(tmp_path, speed=0).content_hash() == first
    handler = HashingHandler()
    await Replayer(tmp_path, speed=0).run(handler)
    assert handler.hexdigest() == first and handler.messages == 100
    only = Replayer(tmp_path, streams="btcusdt@aggTrade", speed=0).content_hash()
    assert only != first
    # One changed byte changes the hash.
    (tmp_path / "streams" / "stream=btcusdt@bookTicker").rename(tmp_path / "bt")
    last = books[59]
    changed = Message(last.stream, last.recv_ns, last.raw.replace("0.2", "0.3"), last.conn_id,
                      last.seq)
    write_partition(tmp_path, "btcusdt@bookTicker", [*books[:59], changed])
    assert Replayer(tmp_path, speed=0).content_hash() != first


def test_overlapping_partitions_of_one_stream_merge_in_order(tmp_path: Path) -> None:
    # Two redundant recorders wrote overlapping files for the same stream.
    a = agg_trades("BTCUSDT", T0, 50, 2 * MS, conn_id=1)
    b = agg_trades("BTCUSDT", T0 + MS, 50, 2 * MS, conn_id=2)
    write_partition(tmp_path, "btcusdt@aggTrade", a)
    write_partition(tmp_path, "btcusdt@aggTrade", b)
    got = list(Replayer(tmp_path, speed=0).events())
    assert got == sorted(a + b, key=lambda m: m.sort_key)


def test_merge_runs_with_ties_across_batches() -> None:
    import pyarrow as pa

    def batch(recv: list[int], conn: int) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict({
            "recv_ns": pa.array(recv, pa.int64()), "conn_id": pa.array([conn] * len(recv)),
            "seq": pa.array(range(len(recv)), pa.int64())})

    runs = [(0, iter([batch([1, 5, 5], 2), batch([5, 5, 9], 2)])),
            (1, iter([batch([5], 1), batch([5, 6], 1)])),
            (2, iter([]))]
    out = pa.concat_tables(list(merge_runs(runs)))
    keys = list(zip(out.column("recv_ns").to_pylist(), out.column("conn_id").to_pylist(),
                    strict=True))
    assert keys == sorted(keys) and len(keys) == 9


async def test_speed_one_keeps_order_and_is_never_early(tmp_path: Path) -> None:
    # ~1 s of data at speed 1 (and 2 s at speed 4): every message is delivered at or after
    # its schedule deadline; lateness is measured, not asserted (see benchmarks/).
    msgs = agg_trades("BTCUSDT", T0, 200, 5 * MS)
    write_partition(tmp_path, "btcusdt@aggTrade", msgs)
    for speed, data in ((1.0, msgs), (4.0, msgs)):
        seen: list[tuple[int, int]] = []

        async def handler(event: Event) -> None:
            assert isinstance(event, Message)
            seen.append((event.recv_ns, time.perf_counter_ns()))  # noqa: B023

        replayer = Replayer(tmp_path, speed=speed)
        t0 = time.perf_counter_ns()  # at or before the schedule's anchor
        stats = await replayer.run(handler)
        assert [r for r, _ in seen] == [m.recv_ns for m in data]
        for recv, wall in seen:
            assert wall - t0 >= (recv - T0) / speed  # never early
        assert stats.pacing is not None and stats.pacing.events == len(data)
        assert stats.pacing.p50_ns >= 0


async def test_paced_run_delivers_the_same_sequence_as_unpaced(tmp_path: Path) -> None:
    _two_stream_archive(tmp_path)
    write_gaps(tmp_path, [a_gap("*", T0 - MS, T0 + MS),
                          a_gap("btcusdt@aggTrade", T0 + 70 * MS, T0 + 90 * MS),
                          a_gap("btcusdt@bookTicker", T0 + SEC, T0 + 2 * SEC)])
    unpaced = list(Replayer(tmp_path, speed=0).events())
    paced: list[Event] = []
    stats = await Replayer(tmp_path, speed=100).run(paced.append)
    assert paced == unpaced and stats.messages == 100 and stats.gaps == 3
    window: list[Event] = []
    await Replayer(tmp_path, start=T0 + 50 * MS, end=T0 + 60 * MS, speed=100).run(window.append)
    assert window == [e for e in unpaced if isinstance(e, Message)
                      and T0 + 50 * MS <= e.recv_ns < T0 + 60 * MS]


async def test_handler_error_propagates_and_replay_can_run_again(tmp_path: Path) -> None:
    _two_stream_archive(tmp_path)
    replayer = Replayer(tmp_path, speed=1000)

    async def boom(event: Event) -> None:
        raise RuntimeError("strategy failed")

    with pytest.raises(RuntimeError, match="strategy failed"):
        await replayer.run(boom)
    seen: list[Event] = []
    assert (await replayer.run(seen.append)).messages == 100 == len(seen)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3)), max_size=40),
                min_size=1, max_size=5),
       st.integers(1, 7), st.integers(1, 12))
def test_merge_runs_is_a_sorted_permutation(runs: list[list[tuple[int, int]]],
                                            batch: int, max_rows: int) -> None:
    import pyarrow as pa

    tables = []
    for index, rows in enumerate(runs):
        rows = sorted(rows)  # each run is sorted by recv_ns, as a partition chain is
        recv = [r for r, _ in rows]
        conn = [c for _, c in rows]
        seq = list(range(len(rows)))
        batches = [pa.RecordBatch.from_pydict({
            "recv_ns": pa.array(recv[i:i + batch], pa.int64()),
            "conn_id": pa.array(conn[i:i + batch], pa.int32()),
            "seq": pa.array(seq[i:i + batch], pa.int64())}) for i in range(0, len(rows), batch)]
        tables.append((index, iter(batches)))
    out = list(merge_runs(tables, max_rows=max_rows))
    got = [row for t in out for row in zip(t.column("recv_ns").to_pylist(),
                                           t.column("conn_id").to_pylist(),
                                           t.column("seq").to_pylist(),
                                           t.column("stream_idx").to_pylist(), strict=True)]
    expected = sorted((r, c, s, i) for i, rows in enumerate(runs)
                      for s, (r, c) in enumerate(sorted(rows)))
    assert got == expected


def test_merged_tables_are_cut_to_about_max_rows() -> None:
    import pyarrow as pa

    def run(offset: int) -> list[pa.RecordBatch]:
        recv = list(range(offset, 3 * 3_000, 3))  # three streams, evenly interleaved
        return [pa.RecordBatch.from_pydict({
            "recv_ns": pa.array(recv[i:i + 1_000], pa.int64()),
            "conn_id": pa.array([0] * len(recv[i:i + 1_000]), pa.int32()),
            "seq": pa.array(recv[i:i + 1_000], pa.int64())}) for i in range(0, 3_000, 1_000)]

    out = list(merge_runs([(i, iter(run(i))) for i in range(3)], max_rows=500))
    sizes = [t.num_rows for t in out]
    assert sum(sizes) == 9_000 and max(sizes) <= 500 + 3
    assert pa.concat_tables(out).column("recv_ns").to_pylist() == list(range(9_000))
    uncapped = [t.num_rows for t in merge_runs([(i, iter(run(i))) for i in range(3)])]
    assert max(uncapped) > 500  # the default bound is larger than these batches
