"""Partition writer: rotation (time, size, UTC day), row groups, metadata, gaps, import path."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from recorder._partition import CHECKSUM_ALGO, GAP_SCHEMA, write_gaps_file
from recorder._writer import PartitionSet, PartitionWriter, WriterConfig, write_partition
from schemas import layout
from schemas.checksum import rows_checksum as content_checksum
from schemas.errors import ArchiveError
from schemas.message import Gap, GapKind, Message, Source

S = 1_000_000_000
DAY = 86_400 * S
T0 = 1_771_200_000 * S  # 2026-02-16 00:00:00 UTC
AGG = "btcusdt@aggTrade"
BOOK = "ethusdt@bookTicker"


def agg(i: int, t: int, pad: int = 0) -> Message:
    raw = orjson.dumps({"e": "aggTrade", "E": t // 1_000_000, "a": i, "s": "BTCUSDT",
                        "p": f"{60000 + i % 100}.10", "q": "0.001", "f": i, "l": i,
                        "T": t // 1_000_000, "m": bool(i % 2), "x": "y" * pad}).decode()
    return Message(AGG, t, raw, 1, i, Source.WS)


def book(i: int, t: int) -> Message:
    raw = orjson.dumps({"e": "bookTicker", "u": i, "s": "ETHUSDT", "b": "3000.1", "B": "1.5",
                        "a": "3000.2", "A": "2.5", "T": 1, "E": 1}).decode()
    return Message(BOOK, t, raw, 2, i)


def files(root: Path, stream: str) -> list[Path]:
    return sorted((root / layout.stream_dir(stream)).glob("date=*/*.parquet"))


def rows_of(paths: list[Path]) -> list[tuple[int, int, int, str]]:
    out = []
    for p in paths:
        t = pq.read_table(p, columns=["recv_ns", "conn_id", "seq", "raw"])
        out += list(zip(*(t.column(i).to_pylist() for i in range(4)), strict=True))
    return out


def key(m: Message) -> tuple[int, int, int, str]:
    return (m.recv_ns, m.conn_id, m.seq, m.raw)


def test_time_rotation_aligned_windows_and_tick(tmp_path: Path) -> None:
    parts = PartitionSet(tmp_path, WriterConfig(rotate_s=60))
    msgs = [agg(i, T0 + i * 10 * S) for i in range(15)]  # 0..140 s
    parts.add(msgs, 0)
    assert len(files(tmp_path, AGG)) == 2  # windows [0,60) and [60,120) sealed by rotation
    parts.tick(T0 + 179 * S)
    assert len(files(tmp_path, AGG)) == 2 and parts.low_segment() == 0
    parts.tick(T0 + 180 * S)
    assert parts.low_segment() is None
    names = [layout.parse_partition_name(p.name) for p in files(tmp_path, AGG)]
    assert names == [(T0, T0 + 50 * S), (T0 + 60 * S, T0 + 110 * S), (T0 + 120 * S, T0 + 140 * S)]
    assert rows_of(files(tmp_path, AGG)) == [key(m) for m in msgs]
    assert not list(tmp_path.rglob("*.tmp"))


def test_size_rotation_never_splits_equal_recv_ns(tmp_path: Path) -> None:
    parts = PartitionSet(tmp_path, WriterConfig(max_partition_bytes=2000))
    msgs = [agg(i, T0 + (i // 4) * S) for i in range(80)]  # 4 rows share each recv_ns
    parts.add(msgs, 0)
    parts.seal_all()
    paths = files(tmp_path, AGG)
    assert len(paths) > 3
    ranges = [layout.parse_partition_name(p.name) for p in paths]
    for (_, last), (first, _) in itertools.pairwise(ranges):
        assert last is not None and first > last
    assert rows_of(paths) == [key(m) for m in msgs]


@pytest.mark.parametrize("rotate_s", [900, 7000])
def test_partitions_never_cross_a_utc_day(tmp_path: Path, rotate_s: int) -> None:
    parts = PartitionSet(tmp_path, WriterConfig(rotate_s=rotate_s))
    start = T0 + DAY - 30 * S
    msgs = [agg(i, start + i * S) for i in range(60)]
    parts.add(msgs, 0)
    parts.seal_all()
    paths = files(tmp_path, AGG)
    assert len(paths) == 2
    for p in paths:
        first, last = layout.parse_partition_name(p.name) or (0, 0)
        assert layout.date_of_ns(first) == layout.date_of_ns(last)
        assert p.parent.name == f"date={layout.date_of_ns(first)}"
    assert rows_of(paths) == [key(m) for m in msgs]


def test_metadata_and_content_checksum(tmp_path: Path) -> None:
    parts = PartitionSet(tmp_path, WriterConfig(row_group_bytes=3000))
    msgs = [agg(i, T0 + i * S, pad=i % 5) for i in range(100)]
    msgs.insert(50, Message(AGG, T0 + 50 * S + 1, '{"e":"aggTrade","a":"weird"}', 9, 9,
                            Source.REST))
    parts.add(msgs, 0)
    parts.seal_all()
    (path,) = files(tmp_path, AGG)
    md = pq.read_metadata(path)
    assert md.num_row_groups > 1  # flushed as row groups filled
    kv = {k.decode(): v.decode() for k, v in (md.metadata or {}).items()}
    assert kv["ticktape.schema_version"] == str(layout.SCHEMA_VERSION)
    assert kv["ticktape.stream"] == AGG
    assert kv["ticktape.first_recv_ns"] == str(T0)
    assert kv["ticktape.last_recv_ns"] == str(T0 + 99 * S)
    assert kv["ticktape.rows"] == "101" == str(md.num_rows)
    assert kv["ticktape.version"]
    assert kv["ticktape.checksum_algo"] == CHECKSUM_ALGO
    t = pq.read_table(path, columns=["recv_ns", "raw", "source"])
    assert kv["ticktape.content_sha256"] == content_checksum(
        zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
    assert kv["ticktape.content_sha256"] == content_checksum((m.recv_ns, m.raw) for m in msgs)
    assert t.column(2).to_pylist().count("rest") == 1
    typed = pq.read_table(path, columns=["agg_trade_id"]).column(0).to_pylist()
    assert typed[:3] == [0, 1, 2] and typed[50] is None  # typed columns; bad payload -> null
    assert md.row_group(0).column(0).compression == "ZSTD"


def test_memory_stays_bounded_per_stream(tmp_path: Path) -> None:
    cfg = WriterConfig(row_group_bytes=20_000, memory_budget_bytes=30_000)
    parts = PartitionSet(tmp_path, cfg)
    for k in range(20):
        parts.add([agg(k * 50 + i, T0 + (k * 50 + i) * 1000) for i in range(50)]
                  + [book(k * 50 + i, T0 + (k * 50 + i) * 1000) for i in range(50)], 0)
        assert parts.pending_bytes <= cfg.memory_budget_bytes
    assert max(parts.peak_pending.values()) <= cfg.row_group_bytes + 1000
    parts.seal_all()
    assert len(rows_of(files(tmp_path, AGG))) == 1000
    assert len(rows_of(files(tmp_path, BOOK))) == 1000


def test_open_file_cap_seals_early_instead_of_opening_more(tmp_path: Path) -> None:
    parts = PartitionSet(tmp_path, WriterConfig(row_group_bytes=500, max_open_files=1))
    msgs = [m for i in range(40) for m in (agg(i, T0 + i * S), book(i, T0 + i * S))]
    parts.add(msgs, 0)
    assert sum(1 for p in parts._open.values() if p.has_file) <= 1
    parts.seal_all()
    assert len(rows_of(files(tmp_path, AGG))) == 40
    assert len(rows_of(files(tmp_path, BOOK))) == 40


def test_gaps_go_to_the_gaps_table_by_start_date(tmp_path: Path) -> None:
    parts = PartitionSet(tmp_path, WriterConfig(rotate_s=60))
    gaps = [Gap(AGG, T0 + 5 * S, T0 + 9 * S, GapKind.SEQUENCE, "aggTrade ids missing: "
                "first=5 count=2"),
            Gap("*", T0 - 10 * S, T0 + S, GapKind.RECORDER_DOWN, "restart", False),
            Gap(BOOK, T0 + S, T0 + 2 * S, GapKind.DISCONNECT, "1006", True)]
    parts.add([agg(1, T0 + 30 * S)], 0)
    parts.add_gaps(gaps, 3)
    assert parts.low_segment() == 0
    parts.tick(T0 + 60 * S)
    paths = sorted((tmp_path / layout.GAPS_DIR).glob("date=*/*.parquet"))
    assert [p.parent.name for p in paths] == ["date=2026-02-15", "date=2026-02-16"]
    t = pq.read_table(paths[1])
    assert t.schema.equals(GAP_SCHEMA, check_metadata=False)
    assert t.to_pylist() == [g.as_dict() for g in sorted(gaps[::2], key=lambda g: g.start_ns)]
    assert paths[1].name == layout.partition_name(T0 + S, T0 + 5 * S)


def test_gaps_file_of_same_name_is_merged_not_lost(tmp_path: Path) -> None:
    g1 = Gap(AGG, T0, T0 + S, GapKind.SILENCE, "a")
    g2 = Gap(BOOK, T0, T0 + 2 * S, GapKind.DISCONNECT, "b")
    p1 = write_gaps_file(tmp_path, [g1])
    p2 = write_gaps_file(tmp_path, [g2])
    assert p1 == p2
    assert sorted(r["stream"] for r in pq.read_table(p1).to_pylist()) == [AGG, BOOK]


def test_write_partition_is_atomic_and_never_overwrites(tmp_path: Path) -> None:
    msgs = [agg(i, T0 + i * S) for i in range(10)]
    path = write_partition(tmp_path, AGG, msgs)
    assert path == tmp_path / layout.partition_path(AGG, T0, T0 + 9 * S)
    before = path.read_bytes()
    with pytest.raises(ArchiveError, match="already exists"):
        write_partition(tmp_path, AGG, msgs)
    assert path.read_bytes() == before
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(ArchiveError, match="UTC days"):
        write_partition(tmp_path, AGG, [agg(1, T0), agg(2, T0 + DAY)])


def test_writer_thread_drops_nothing_silently_and_seals_on_close(tmp_path: Path) -> None:
    w = PartitionWriter(tmp_path, WriterConfig(queue_max=2))
    assert w.submit([agg(1, T0)], 0) and w.submit([agg(2, T0 + S)], 0)
    assert not w.submit([agg(3, T0 + 2 * S)], 0)  # thread not started: the queue is full
    assert w.queue_depth == 2
    w.start()
    w.close()
    assert rows_of(files(tmp_path, AGG)) == [key(agg(1, T0)), key(agg(2, T0 + S))]
    assert w.safe_segment == 0


def test_writer_error_surfaces_as_archive_error_and_keeps_sealed_files(tmp_path: Path) -> None:
    w = PartitionWriter(tmp_path, WriterConfig(rotate_s=60))
    w.start()
    w.submit([agg(1, T0)], 0)
    w.submit([agg(2, T0 + 61 * S)], 1)  # seals the first window
    w.tick(T0 + 61 * S)
    blocker = tmp_path / layout.stream_dir(BOOK)
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where a directory belongs")
    w.submit([book(1, T0 + 62 * S)], 2)
    with pytest.raises(ArchiveError, match=r"not a directory|exists"):
        w.close()
    # The failing stream does not stop the others from sealing; its rows stay journaled.
    assert rows_of(files(tmp_path, AGG)) == [key(agg(1, T0)), key(agg(2, T0 + 61 * S))]
    assert w.safe_segment is not None and w.safe_segment < 2
    assert not list(tmp_path.rglob("*.tmp"))


def test_invalid_stream_names_never_become_paths_but_a_counted_gap(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    parts = PartitionSet(root, WriterConfig())
    evil = [Message("../../evil", T0 + i * S, "{}") for i in range(3)]
    parts.add([agg(1, T0), *evil, agg(2, T0 + 5 * S)], 0)
    parts.seal_all()
    assert not (tmp_path / "evil").exists()
    assert sorted(p.relative_to(root).parts[0] for p in root.rglob("*.parquet")) == [
        "gaps", "streams"]
    assert len(rows_of(files(root, AGG))) == 2
    (gap_file,) = (root / layout.GAPS_DIR).glob("date=*/*.parquet")
    (row,) = pq.read_table(gap_file).to_pylist()
    assert row["kind"] == "rejected" and row["stream"] == "*"
    assert "'../../evil': 3 messages" in row["detail"]
    assert (row["start_ns"], row["end_ns"]) == (T0, T0 + 2 * S)
