"""Replay internals: slice-wise conversion with gaps, lazy raw restore, the GIL setting."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay import Archive, Replayer
from replay._merge import STREAM_INDEX
from replay._rows import EventChunker, prepare, prepared
from replay._schedule import READER_NICE, _lower_priority, gil_handoff
from schemas.errors import ArchiveError
from schemas.message import Event, Gap, GapKind, Message, Source
from tests.replay_support import MS, T0, agg_trades, write_partition

NAMES = ["a@trade", "b@trade", "c@trade"]


def _table(rows: list[tuple[int, int, int, int, str]]) -> pa.Table:
    """A merged table of ``(recv_ns, conn_id, seq, stream_idx, source)`` rows."""
    return pa.table({
        "recv_ns": pa.array([r[0] for r in rows], pa.int64()),
        "conn_id": pa.array([r[1] for r in rows], pa.int32()),
        "seq": pa.array([r[2] for r in rows], pa.int64()),
        "source": [r[4] for r in rows],
        "raw": [f'{{"i":{i}}}' for i in range(len(rows))],
        STREAM_INDEX: pa.array([r[3] for r in rows], pa.int32()),
    })


def _expected(rows: list[tuple[int, int, int, int, str]], gaps: list[Gap]) -> list[Event]:
    out: list[Event] = []
    pending = list(gaps)
    for i, (recv, conn, seq, idx, source) in enumerate(rows):
        while pending and pending[0].start_ns <= recv:
            out.append(pending.pop(0))
        out.append(Message(NAMES[idx], recv, f'{{"i":{i}}}', conn, seq, Source(source)))
    return [*out, *pending]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.sampled_from(["ws", "rest"])),
                min_size=1, max_size=60),
       st.lists(st.integers(-2, 40), max_size=6),
       st.integers(1, 17), st.booleans())
def test_chunks_of_any_size_give_the_events_in_order(
    steps: list[tuple[int, int, str]], gap_starts: list[int], size: int, constant: bool
) -> None:
    # Columns holding one value throughout (conn, stream, source) take a shortcut: cover both.
    rows, recv = [], 0
    for seq, (step, idx, source) in enumerate(steps):
        recv += step
        rows.append((recv, 7 if constant else seq % 3, seq,
                     0 if constant else idx, "ws" if constant else source))
    gaps = [Gap("*", g, g + 1, GapKind.SILENCE) for g in sorted(gap_starts)]
    chunker = EventChunker(NAMES, gaps)
    got: list[Event] = []
    half = len(rows) // 2
    for part in (rows[:half], rows[half:]):  # two tables, as the merge yields them
        if not part:
            continue
        chunker.feed(prepare(_table(part), NAMES))
        while chunker.has_rows:
            got.extend(chunker.chunk(size))
    got.extend(chunker.tail())
    # Messages keep their row's text: renumber the expected raw per table.
    want = _expected(rows, gaps)
    texts = [f'{{"i":{i}}}' for part in (rows[:half], rows[half:]) for i in range(len(part))]
    msgs = iter(texts)
    want = [Message(e.stream, e.recv_ns, next(msgs), e.conn_id, e.seq, e.source)
            if isinstance(e, Message) else e for e in want]
    assert got == want
    assert all(type(e) is Message and e.source in Source for e in got if isinstance(e, Message))


def test_a_row_without_raw_is_an_error_naming_the_stream() -> None:
    table = _table([(1, 0, 0, 1, "ws"), (2, 0, 1, 1, "ws")])
    table = table.set_column(table.schema.get_field_index("raw"), "raw",
                             pa.array(['{"i":0}', None], pa.string()))
    with pytest.raises(ArchiveError, match="b@trade"):
        prepare(table, NAMES)


def test_raw_null_on_some_rows_is_restored_from_any_batch_on(tmp_path: Path) -> None:
    # DESIGN.md storage budget: raw may be null on some rows only (dropped where the typed
    # columns re-encode to it). The reader reads just the asked columns until the first
    # null, then every column: each row must come back exact, across batch borders.
    from schemas.formatters import drop_derivable_raw
    from schemas.layout import partition_path
    from schemas.tables import build_batch

    stream = "btcusdt@aggTrade"
    msgs = agg_trades("BTCUSDT", T0, 50, MS)
    dropped = drop_derivable_raw(stream, build_batch(stream, msgs))
    assert dropped.column("raw").null_count == 50
    keep = [i < 10 or i >= 30 for i in range(50)]  # raw, then null, then raw again
    raw = pa.array([m.raw if k else None for m, k in zip(msgs, keep, strict=True)], pa.string())
    mixed = dropped.set_column(dropped.schema.get_field_index("raw"), "raw", raw)
    path = tmp_path / partition_path(stream, T0, T0 + 49 * MS)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_batches([mixed]), path, row_group_size=16)
    archive = Archive(tmp_path, batch_rows=8)
    batches = list(archive.read_stream(stream))
    assert all(b.column_names == ["recv_ns", "conn_id", "seq", "source", "raw"] for b in batches)
    assert pa.concat_arrays([b.column("raw") for b in batches]).to_pylist() == [
        m.raw for m in msgs]
    assert list(Replayer(archive, speed=0).events()) == msgs
    inside = list(archive.read_stream(stream, T0 + 12 * MS, T0 + 33 * MS, columns=["raw"]))
    assert [r for b in inside for r in b.column("raw").to_pylist()] == [
        m.raw for m in msgs[12:33]]


def test_gil_handoff_lowers_the_switch_interval_and_restores_it() -> None:
    before = sys.getswitchinterval()
    with gil_handoff(0.0002):
        assert sys.getswitchinterval() == pytest.approx(0.0002)
        with gil_handoff(0.001):  # a concurrent replay shares the setting
            assert sys.getswitchinterval() == pytest.approx(0.0002)
        assert sys.getswitchinterval() == pytest.approx(0.0002)
    assert sys.getswitchinterval() == before


async def test_replay_restores_the_switch_interval_after_an_error(tmp_path: Path) -> None:
    write_partition(tmp_path, "btcusdt@aggTrade", agg_trades("BTCUSDT", T0, 20, MS))
    before = sys.getswitchinterval()

    async def boom(event: Event) -> None:
        raise RuntimeError("strategy failed")

    for speed in (0.0, 1000.0):
        with pytest.raises(RuntimeError):
            await Replayer(tmp_path, speed=speed).run(boom)
        assert sys.getswitchinterval() == before


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread nice is Linux-only")
def test_paced_reader_thread_runs_at_a_lower_priority_than_the_loop() -> None:
    seen: list[tuple[int, int]] = []

    def probe() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        _lower_priority()
        seen.append((before, os.getpriority(os.PRIO_PROCESS, tid)))

    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
    before, after = seen[0]
    assert after == min(19, before + READER_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # not ours


def test_prepared_tables_close_the_merge_when_closed() -> None:
    closed: list[bool] = []

    def tables() -> Iterator[pa.Table]:
        try:
            yield _table([(1, 0, 0, 0, "ws")])
            yield _table([(2, 0, 1, 0, "ws")])
        finally:
            closed.append(True)

    feed = prepared(tables(), NAMES)
    assert next(feed).rows == 1
    feed.close()
    assert closed == [True]


async def test_a_corrupt_partition_read_ahead_fails_the_replay_and_releases_everything(
    tmp_path: Path,
) -> None:
    # At speed 0 partitions are read ahead in worker threads: the error must still surface
    # (naming the file), the threads must be gone and the GIL setting restored.
    from schemas.errors import CorruptDataError
    from tests.replay_support import book_tickers

    write_partition(tmp_path, "btcusdt@bookTicker", book_tickers("BTCUSDT", T0, 300, MS))
    bad = write_partition(tmp_path, "btcusdt@aggTrade", agg_trades("BTCUSDT", T0, 300, MS))
    bad.write_bytes(bad.read_bytes()[:300])  # a torn copy
    before = sys.getswitchinterval()
    seen: list[Event] = []
    with pytest.raises(CorruptDataError, match=bad.name):
        await Replayer(tmp_path, speed=0).run(seen.append)
    assert sys.getswitchinterval() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("ticktape-read")]
