"""``verify`` finds each kind of damage, reports it clearly and never changes the archive."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replay._verify import verify
from schemas.layout import partition_path
from schemas.tables import build_batch
from tests.tools_support import T0, agg_trades, mark_price_arr, quarter_hours, write_partition

SEC = 1_000_000_000


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "arc"
    quarter_hours(root, agg_trades("btcusdt", T0, 2400, SEC), "btcusdt@aggTrade")
    write_partition(root, "!markPrice@arr@1s", mark_price_arr(T0, 30))
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(
        p.read_bytes()).hexdigest()) for p in sorted(root.rglob("*")) if p.is_file()}


def _kinds(root: Path) -> set[str]:
    return {p.kind for p in verify(root).problems}


def _first_file(root: Path) -> Path:
    return sorted((root / "streams" / "stream=btcusdt@aggTrade").rglob("*.parquet"))[0]


def test_clean_archive_passes(archive: Path) -> None:
    report = verify(archive)
    assert report.ok, report.problems
    assert report.files == 4 and report.rows == 2430
    assert report.as_dict()["ok"] is True


def _dictionary_middles(path: Path) -> dict[str, int]:
    """Byte offsets in the middle of each column's dictionary page: bytes every row depends on.

    (Bytes such as page-header statistics or bit-packing padding change no row.)
    """
    md = pq.ParquetFile(path).metadata
    out = {}
    for i in range(md.num_columns):
        col = md.row_group(0).column(i)
        if col.dictionary_page_offset:
            out[col.path_in_schema] = (col.dictionary_page_offset + col.data_page_offset) // 2
    return out


@pytest.mark.parametrize("column", ["recv_ns", "raw", "price", "agg_trade_id", "event_time_ns"])
def test_flipped_byte_is_found(archive: Path, column: str) -> None:
    path = _first_file(archive)
    offset = _dictionary_middles(path)[column]
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify(archive)
    assert not report.ok
    assert {p.kind for p in report.problems} <= {"checksum", "unreadable", "order", "name"}
    assert all(str(path.relative_to(archive)) == p.path for p in report.problems)


def test_truncated_file_is_found(archive: Path) -> None:
    path = _first_file(archive)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    problems = verify(archive).problems
    assert [(p.kind, p.path) for p in problems] == [("unreadable",
                                                     str(path.relative_to(archive)))]
    assert "cannot open" in problems[0].detail


def test_out_of_order_rows_are_found(tmp_path: Path) -> None:
    msgs = agg_trades("btcusdt", T0, 100, SEC)
    msgs[40], msgs[41] = msgs[41], msgs[40]
    table = pa.Table.from_batches([build_batch("btcusdt@aggTrade", msgs)])
    path = tmp_path / partition_path("btcusdt@aggTrade", T0, T0 + 99 * SEC)
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    problems = verify(tmp_path).problems
    assert [(p.kind, p.detail) for p in problems] == [("order", "recv_ns decreases at row 41")]


def test_stray_tmp_and_stray_files_are_found(archive: Path) -> None:
    day = _first_file(archive).parent
    (day / f"{T0}-open.parquet.tmp").write_bytes(b"half a file")
    (day / "notes.txt").write_text("hello")
    problems = verify(archive).problems
    assert sorted(p.kind for p in problems) == ["stray", "tmp"]


def test_overlapping_partitions_are_found(archive: Path) -> None:
    write_partition(archive, "btcusdt@aggTrade",
                    agg_trades("btcusdt", T0 + 100 * SEC + 1, 1000, SEC))
    assert _kinds(archive) == {"overlap"}


def test_unsealed_journal_is_found(archive: Path) -> None:
    (archive / "journal").mkdir()
    (archive / "journal" / "000000000007.wal").write_bytes(b"TTWAL\x01\n\x00")
    problems = verify(archive).problems
    assert [p.kind for p in problems] == ["journal"]
    assert "000000000007.wal" in problems[0].detail


def test_schema_and_name_mismatch_are_found(tmp_path: Path) -> None:
    path = tmp_path / partition_path("btcusdt@aggTrade", T0, T0 + SEC)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"recv_ns": [T0, T0 + SEC], "raw": ["{}", "{}"]}), path)
    problems = verify(tmp_path).problems
    assert [p.kind for p in problems] == ["schema"]
    assert "missing conn_id" in problems[0].detail
    other = write_partition(tmp_path, "ethusdt@aggTrade", agg_trades("ethusdt", T0, 3, SEC))
    os.rename(other, other.with_name(f"{T0}-{T0 + 5 * SEC}.parquet"))
    assert {p.kind for p in verify(tmp_path).problems} == {"schema", "name"}


def test_verify_never_modifies_the_archive(archive: Path) -> None:
    day = _first_file(archive).parent
    (day / f"{T0}-open.parquet.tmp").write_bytes(b"x")
    path = _first_file(archive)
    path.write_bytes(path.read_bytes()[:-100])
    before = _snapshot(archive)
    assert not verify(archive).ok
    assert _snapshot(archive) == before


def test_live_mode_accepts_the_recorders_open_files(archive: Path) -> None:
    day = _first_file(archive).parent
    (day / f"{T0 + 5}-open.parquet.tmp").write_bytes(b"being written")
    (archive / "journal").mkdir()
    (archive / "journal" / "000000000001.wal").write_bytes(b"TTWAL\x01\n\x00")
    assert _kinds(archive) == {"tmp", "journal"}
    live = verify(archive, live=True)
    assert live.ok and len(live.notes) == 2
    (day / "crashed.parquet.tmp").write_bytes(b"x")
    assert {p.kind for p in verify(archive, live=True).problems} == {"tmp"}
