"""Storage facade: journal-then-writer, recovery with de-duplication, drops, archive errors."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from recorder._journal import Journal, JournalConfig, list_segments
from recorder._storage import LAST_RECV_FILE, Storage
from recorder._writer import PartitionWriter, WriterConfig, write_partition
from schemas import layout
from schemas.errors import ArchiveError
from schemas.message import Gap, GapKind, Message

S = 1_000_000_000
T0 = 1_771_200_000 * S
STREAMS = ("btcusdt@aggTrade", "btcusdt@depth@100ms", "ethusdt@bookTicker")
ROOT = Path(__file__).resolve().parents[2]


def msg(i: int, t: int | None = None, stream: str | None = None) -> Message:
    s = stream or STREAMS[i % 3]
    raw = orjson.dumps({"e": "x", "i": i, "u": i, "pu": i - 1, "a": i}).decode()
    return Message(s, T0 + i * 1_000_000 if t is None else t, raw, 1, i)


def archive_rows(root: Path) -> Counter[tuple[str, int, int, int, str]]:
    found: Counter[tuple[str, int, int, int, str]] = Counter()
    for p in (root / layout.STREAMS_DIR).glob("stream=*/date=*/*.parquet"):
        stream = layout.parse_stream_dir(p.parent.parent.name) or ""
        t = pq.read_table(p, columns=["recv_ns", "conn_id", "seq", "raw"])
        cols = [t.column(i).to_pylist() for i in range(4)]
        found.update((stream, *row) for row in zip(*cols, strict=True))
    return found


def expected(msgs: list[Message]) -> Counter[tuple[str, int, int, int, str]]:
    return Counter((m.stream, m.recv_ns, m.conn_id, m.seq, m.raw) for m in msgs)


def archive_gaps(root: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for p in sorted((root / layout.GAPS_DIR).glob("date=*/*.parquet")):
        out += pq.read_table(p).to_pylist()
    return out


def test_round_trip_and_clean_close(tmp_path: Path) -> None:
    st = Storage(tmp_path / "a", rotate_s=60)
    report = st.open()
    assert report.segments == 0 and report.last_recv_ns is None
    msgs = [msg(i) for i in range(3000)]
    for k in range(0, 3000, 70):
        st.append(msgs[k:k + 70])
    gap = Gap("*", T0 - S, T0, GapKind.RECORDER_DOWN, "test")
    st.add_gap(gap)
    st.flush(T0)
    stats = st.stats
    assert stats.messages == 3000 and stats.gaps == 1 and stats.bytes > 0
    st.close()
    assert archive_rows(tmp_path / "a") == expected(msgs)
    assert [g["kind"] for g in archive_gaps(tmp_path / "a")] == ["recorder_down"]
    journal = tmp_path / "a" / layout.JOURNAL_DIR
    assert list_segments(journal) == []
    assert (journal / LAST_RECV_FILE).read_text() == str(msgs[-1].recv_ns)
    assert Storage(tmp_path / "a").open().last_recv_ns == msgs[-1].recv_ns


def test_sealed_segments_are_deleted_while_running(tmp_path: Path) -> None:
    st = Storage(tmp_path, journal=JournalConfig(segment_bytes=1), rotate_s=1)
    st.open()
    for i in range(10):
        st.append([msg(i, T0 + i * S)])
        st.flush(T0 + i * S)
    for _ in range(200):
        st.flush(T0 + 20 * S)
        if len(list_segments(st.journal_dir)) <= 2:
            break
        threading.Event().wait(0.01)
    assert len(list_segments(st.journal_dir)) <= 2
    # A crash now must still find where recording stopped (start of recorder_down).
    assert (st.journal_dir / LAST_RECV_FILE).read_text() == str(T0 + 9 * S)
    st.close()
    assert archive_rows(tmp_path) == expected([msg(i, T0 + i * S) for i in range(10)])


def test_open_recovers_exactly_what_is_missing(tmp_path: Path) -> None:
    root = tmp_path
    jdir = root / layout.JOURNAL_DIR
    jdir.mkdir(parents=True)
    msgs = [msg(i) for i in range(900)]
    down = Gap("*", T0 - 5 * S, T0, GapKind.DISCONNECT, "x")
    j = Journal(jdir, 4, JournalConfig())
    j.append(msgs[:500])
    j.append_gap(down)
    j.roll()
    j.append(msgs[500:])
    j.flush()
    j._close_fd()
    # Some rows were sealed before the crash (their segment not yet deleted) ...
    sealed = [m for m in msgs[:300] if m.stream == STREAMS[0]]
    write_partition(root, STREAMS[0], sealed)
    # ... a half-written partition and a torn journal tail were left behind.
    tmp = root / layout.partition_dir(STREAMS[1], layout.date_of_ns(T0)) / "1-open.parquet.tmp"
    tmp.parent.mkdir(parents=True)
    tmp.write_bytes(b"PAR1 half")
    last_seg = list_segments(jdir)[-1][1]
    with open(last_seg, "ab") as f:
        f.write(b"\x10\x00\x00\x00garbage")

    st = Storage(root)
    report = st.open()
    assert report.segments == 2
    assert report.journaled_messages == 900
    assert report.already_sealed == len(sealed)
    assert report.written_messages == 900 - len(sealed)
    assert report.torn_bytes == 11 and report.dropped_records == 1
    assert len(report.damaged) == 1 and last_seg.name in report.damaged[0]
    assert report.tmp_removed == 1 and not tmp.exists()
    assert report.last_recv_ns == msgs[-1].recv_ns
    assert report.last_by_stream[STREAMS[2]] == msgs[-1]
    assert report.journaled_gaps == report.written_gaps == 1
    assert [i for i, _ in list_segments(jdir)] == [6]  # recovered ones deleted, new one open
    st.close()
    assert archive_rows(root) == expected(msgs)
    assert len(archive_gaps(root)) == 1
    # A second open finds nothing left to do and still knows where the recorder stopped.
    again = Storage(root).open()
    assert again.written_messages == 0 and again.last_recv_ns == msgs[-1].recv_ns


def test_queue_full_drops_are_counted_gapped_and_restored(tmp_path: Path) -> None:
    # The thread writer (a slow disk simulated inside it); the process writer's version is
    # in test_writer_process.py.
    st = Storage(tmp_path, batch_max=10, writer=WriterConfig(queue_max=1, mode="thread"))
    st.open()
    writer = st._writer
    assert isinstance(writer, PartitionWriter)
    gate = threading.Event()
    real = writer._handle

    def slow_disk(item: object) -> None:
        gate.wait(10)
        real(item)  # type: ignore[arg-type]

    writer._handle = slow_disk  # type: ignore[method-assign]
    msgs = [msg(i) for i in range(200)]
    for k in range(0, 200, 10):
        st.append(msgs[k:k + 10])
    stats = st.stats
    assert stats.dropped_messages >= 170  # at most the in-flight and one queued batch got in
    gate.set()
    st.close()
    assert archive_rows(tmp_path) == expected(msgs)  # restored from the journal, no duplicates
    gaps = archive_gaps(tmp_path)
    assert {g["kind"] for g in gaps} == {"rejected"}
    counts = [int(str(g["detail"]).split(": ")[1].split()[0]) for g in gaps]
    assert sum(counts) == stats.dropped_messages
    assert all(g["recovered"] for g in gaps)
    assert list_segments(st.journal_dir) == []


def test_archive_path_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "archive"
    f.write_text("x")
    with pytest.raises(ArchiveError, match="is a file, not a directory") as err:
        Storage(f).open()
    assert "\n" not in str(err.value)


def test_not_open_is_an_archive_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="not open"):
        Storage(tmp_path).append([msg(1)])


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write to: chmod, or a read-only tmpfs as root."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        return target
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)],
                      capture_output=True).returncode != 0:
        pytest.skip("running as root without mount: cannot make a read-only directory")
    return target


def test_read_only_archive_is_refused_and_sealed_files_untouched(tmp_path: Path) -> None:
    root = _read_only_dir(tmp_path)
    try:
        path = write_partition(root, STREAMS[0], [msg(0), msg(3)])
        before = path.read_bytes()
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        else:
            for d in [root, *root.rglob("*")]:
                if d.is_dir():
                    d.chmod(0o555)
        with pytest.raises(ArchiveError, match=r"read-only|permission denied") as err:
            Storage(root).open()
        assert "\n" not in str(err.value)
        assert path.read_bytes() == before
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(root)], capture_output=True)
        else:
            for d in [root, *root.rglob("*")]:
                if d.is_dir():
                    d.chmod(0o755)
