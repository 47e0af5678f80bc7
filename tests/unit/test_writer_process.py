"""The partition writer process: round trip, counted drops, errors, lock, no orphans."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from recorder._journal import list_segments
from recorder._spill import SPILL_FILE
from recorder._storage import LOCK_FILE, Storage
from recorder._writer import WriterConfig
from recorder._writer_proc import ProcessWriter
from schemas import layout
from schemas.errors import ArchiveError
from schemas.message import Gap, GapKind, Message, Source

S = 1_000_000_000
T0 = 1_771_200_000 * S
STREAMS = ("btcusdt@aggTrade", "btcusdt@depth@100ms", "ethusdt@bookTicker")


def msg(i: int, pad: int = 0) -> Message:
    raw = orjson.dumps({"e": "x", "i": i, "pad": "é" * (i % 3) + "z" * pad}).decode()
    return Message(STREAMS[i % 3], T0 + i * 1_000_000, raw, 1 + i % 2, i,
                   Source.REST if i % 7 == 0 else Source.WS)


def archive_rows(root: Path) -> Counter[tuple[str, int, int, int, str, str]]:
    found: Counter[tuple[str, int, int, int, str, str]] = Counter()
    for p in (root / layout.STREAMS_DIR).glob("stream=*/date=*/*.parquet"):
        stream = layout.parse_stream_dir(p.parent.parent.name) or ""
        t = pq.read_table(p, columns=["recv_ns", "conn_id", "seq", "raw", "source"])
        cols = [t.column(i).to_pylist() for i in range(5)]
        found.update((stream, *row) for row in zip(*cols, strict=True))
    return found


def expected(msgs: list[Message]) -> Counter[tuple[str, int, int, int, str, str]]:
    return Counter((m.stream, m.recv_ns, m.conn_id, m.seq, m.raw, m.source.value)
                   for m in msgs)


def archive_gaps(root: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for p in sorted((root / layout.GAPS_DIR).glob("date=*/*.parquet")):
        out += pq.read_table(p).to_pylist()
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def writer_pid(st: Storage) -> int:
    writer = st._writer
    assert isinstance(writer, ProcessWriter) and writer.pid is not None
    return writer.pid


def test_process_writer_is_the_default_and_round_trips(tmp_path: Path) -> None:
    st = Storage(tmp_path, rotate_s=1, batch_max=50, queue_max=1000)  # no drops here
    st.open()
    pid = writer_pid(st)
    msgs = [msg(i) for i in range(600)]
    gap = Gap("*", T0, T0 + S, GapKind.RECORDER_DOWN, "détail")
    for k in range(0, 600, 37):
        st.append(msgs[k:k + 37])
        st.flush(msgs[min(k + 36, 599)].recv_ns)
    st.add_gap(gap)
    st.close()
    assert not alive(pid)  # reaped: no orphan
    assert archive_rows(tmp_path) == expected(msgs)
    gaps = archive_gaps(tmp_path)
    assert [(g["kind"], g["detail"]) for g in gaps] == [("recorder_down", "détail")]
    assert list_segments(st.journal_dir) == []
    stats = st.stats
    assert stats.sealed_files == 0  # not open any more
    assert stats.writer_peak_rss_kb > 0


def test_queue_full_drops_in_the_process_writer_are_counted_and_restored(
        tmp_path: Path) -> None:
    st = Storage(tmp_path, batch_max=10, writer=WriterConfig(queue_max=1))
    st.open()
    pid = writer_pid(st)
    os.kill(pid, signal.SIGSTOP)  # a writer that cannot keep up: pipe and queue fill
    msgs: list[Message] = []
    try:
        for k in range(5000):
            batch = [msg(k * 10 + j, pad=400) for j in range(10)]
            msgs += batch
            st.append(batch)
            if st.stats.dropped_messages >= 100:
                break
        stats = st.stats
        assert stats.dropped_messages >= 100
        assert stats.queue_depth >= 1
    finally:
        os.kill(pid, signal.SIGCONT)
    st.close()
    assert archive_rows(tmp_path) == expected(msgs)  # restored from the journal, no dups
    gaps = archive_gaps(tmp_path)
    assert {g["kind"] for g in gaps} == {"rejected"}
    counts = [int(str(g["detail"]).split(": ")[1].split()[0]) for g in gaps]
    assert sum(counts) == stats.dropped_messages
    assert all(g["recovered"] for g in gaps)


@pytest.mark.parametrize("damage", [False, True])
def test_drops_are_restored_from_the_spill_or_else_the_journal(tmp_path: Path,
                                                               damage: bool) -> None:
    st = Storage(tmp_path, batch_max=10, writer=WriterConfig(queue_max=1))
    st.open()
    pid = writer_pid(st)
    os.kill(pid, signal.SIGSTOP)
    msgs: list[Message] = []
    try:
        for k in range(5000):
            batch = [msg(k * 10 + j, pad=400) for j in range(10)]
            msgs += batch
            st.append(batch)
            if st.stats.dropped_messages >= 50:
                break
        spill = st.journal_dir / SPILL_FILE
        assert spill.stat().st_size > 0  # exactly the dropped batches
        if damage:
            with spill.open("r+b") as f:
                f.truncate(spill.stat().st_size - 7)
    finally:
        os.kill(pid, signal.SIGCONT)
    report = st.close()
    assert report is not None and report.written_messages == st.stats.dropped_messages
    assert archive_rows(tmp_path) == expected(msgs)
    assert not spill.exists()
    assert list_segments(st.journal_dir) == []


def test_an_error_in_the_child_reaches_the_parent_as_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / layout.stream_dir(STREAMS[0])
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where a directory belongs")
    st = Storage(tmp_path, batch_max=1, rotate_s=1)
    st.open()
    pid = writer_pid(st)
    with pytest.raises(ArchiveError, match=r"not a directory|exists") as err:
        for i in range(200):  # the error arrives asynchronously, then every call raises
            st.append([msg(3 * i)])
            st.flush(T0 + (i + 1) * 2 * S)  # seals the window: the child hits the file
            time.sleep(0.01)
    assert "\n" not in str(err.value)
    with pytest.raises(ArchiveError, match=r"not a directory|exists"):
        st.close()
    assert not alive(pid)
    assert not list(tmp_path.rglob("*.tmp"))
    assert list_segments(st.journal_dir)  # the rows stay journaled for the next start


def test_handover_interval_keeps_small_batches_until_due_but_journals_at_once(
        tmp_path: Path) -> None:
    st = Storage(tmp_path, batch_max=100, handover_interval_s=3600)
    st.open()
    msgs = [msg(i) for i in range(150)]
    st.flush(T0)  # the first flush hands over (nothing yet); the next ones are not due
    st.append(msgs[:50])
    st.flush(T0 + S)
    assert st.stats.journal_unflushed_bytes == 0  # on its way to disk every flush
    assert st._batch == msgs[:50]  # not handed over: not due, not full
    st.append(msgs[50:])  # full: handed over at once
    assert st._batch == []
    st.close()
    assert archive_rows(tmp_path) == expected(msgs)


def test_archive_lock_refuses_a_second_recorder(tmp_path: Path) -> None:
    st = Storage(tmp_path)
    st.open()
    try:
        with pytest.raises(ArchiveError, match="in use by another recorder") as err:
            Storage(tmp_path, lock_timeout_s=0.2).open()
        assert "\n" not in str(err.value)
    finally:
        st.close()
    again = Storage(tmp_path)
    again.open()
    again.close()


def test_lock_is_held_while_the_writer_runs_and_released_after(tmp_path: Path) -> None:
    st = Storage(tmp_path, writer=WriterConfig(mode="thread"))
    st.open()
    fd = os.open(st.journal_dir / LOCK_FILE, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        st.close()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free after close
    finally:
        os.close(fd)
