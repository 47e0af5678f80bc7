"""``compact``: 96 quarter-hour partitions become one file per stream-day, row for row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replay._catalog import connect
from replay._checksum import content_checksum, logical_batch, logical_schema
from replay._compact import compact
from replay._partitions import list_archive
from replay._verify import CHECKSUM_KEY, STAGING_DIR, verify
from schemas.tables import table_for
from tests.tools_support import T0, agg_trades, mark_price_arr, quarter_hours

SEC = 1_000_000_000
DAY = 86_400 * SEC
STREAMS = ("btcusdt@aggTrade", "!markPrice@arr@1s")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compact") / "arc"
    # One message every 60 s (aggTrade) / 90 s (markPrice) for a whole day: 96 files each.
    quarter_hours(root, agg_trades("btcusdt", T0, 1440, 60 * SEC), STREAMS[0])
    quarter_hours(root, mark_price_arr(T0, 960, step_ns=90 * SEC), STREAMS[1])
    return root


@pytest.fixture()
def archive(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "arc"))


def _files(root: Path, stream: str) -> list[Path]:
    return sorted((root / "streams" / f"stream={stream}").rglob("*.parquet"))


def _content(paths: list[Path], stream: str) -> tuple[pa.Table, str]:
    """The rows as received (raw rendered back where stored null) and their checksum."""
    schema = table_for(stream).schema
    batches = [logical_batch(stream, pq.read_table(p, schema=schema)) for p in paths]
    table = pa.Table.from_batches(batches, logical_schema(stream))
    return table, content_checksum([table], logical_schema(stream))


def test_96_partitions_become_one_file_with_identical_content(archive: Path) -> None:
    before = {s: _content(_files(archive, s), s) for s in STREAMS}
    assert all(len(_files(archive, s)) == 96 for s in STREAMS)
    report = compact(archive, now_ns=T0 + 2 * DAY)
    assert sorted((m.stream, m.inputs) for m in report.merges) == sorted(
        (s, 96) for s in STREAMS)
    for s in STREAMS:
        files = _files(archive, s)
        assert len(files) == 1
        table, checksum = _content(files, s)
        assert checksum == before[s][1]
        assert table.equals(before[s][0])
        merge = next(m for m in report.merges if m.stream == s)
        assert merge.checksum == checksum and merge.rows == table.num_rows
        stored = pq.ParquetFile(files[0]).metadata.metadata[CHECKSUM_KEY].decode()
        assert stored == checksum
    assert verify(archive).ok
    con = connect(archive)
    assert con.execute("SELECT count(*) FROM agg_trades").fetchone() == (1440,)
    assert con.execute("SELECT count(*) FROM mark_prices").fetchone() == (1920,)
    # Storage: raw texts the typed columns re-render are not stored again.
    assert con.execute("SELECT count(raw) FROM messages").fetchone() == (0,)


def test_open_hour_is_left_alone(archive: Path) -> None:
    now = T0 + DAY - 30 * 60 * SEC  # 23:30 on the recorded day
    report = compact(archive, now_ns=now)
    for s in STREAMS:
        files = _files(archive, s)
        # 23:00-23:15, 23:15-23:30 and 23:30-23:45, 23:45-24:00 stay; 92 are merged.
        assert len(files) == 5
        assert next(m for m in report.merges if m.stream == s).inputs == 92
    assert any("open hour" in s for s in report.skipped)
    assert verify(archive).ok


def test_size_cap_splits_the_day_and_a_rerun_is_a_no_op(archive: Path) -> None:
    total = sum(p.stat().st_size for p in _files(archive, STREAMS[0]))
    report = compact(archive, now_ns=T0 + 2 * DAY, max_bytes=total // 3, streams=[STREAMS[0]])
    files = _files(archive, STREAMS[0])
    merged = report.merges
    assert 3 <= len(merged) <= len(files) <= 4
    # A single file left at the end of the day is not rewritten.
    assert sum(m.inputs for m in merged) + len(files) - len(merged) == 96
    assert len(_files(archive, STREAMS[1])) == 96
    # Merged files are smaller than their inputs, so a rerun may merge again, until it cannot.
    for _ in range(4):
        again = compact(archive, now_ns=T0 + 2 * DAY, max_bytes=total // 3,
                        streams=[STREAMS[0]])
        if not again.merges:
            break
    assert again.merges == [] and again.cleaned == []
    assert all(p.stat().st_size <= total // 3 for p in _files(archive, STREAMS[0]))
    assert verify(archive).ok
    con = connect(archive)
    assert con.execute("SELECT count(*) FROM agg_trades").fetchone() == (1440,)


def test_interrupted_run_leftovers_are_cleaned_and_never_double_counted(
        archive: Path, tmp_path: Path) -> None:
    originals = _files(archive, STREAMS[0])
    saved = tmp_path / "saved"
    saved.mkdir()
    for p in originals[:10]:
        shutil.copy2(p, saved / p.name)
    compact(archive, now_ns=T0 + 2 * DAY, streams=[STREAMS[0]])
    # As if killed after the rename but before deleting the inputs, with a staged file too.
    for p in originals[:10]:
        shutil.copy2(saved / p.name, p)
    (archive / STAGING_DIR / "x.parquet.tmp").write_bytes(b"partial")
    assert len(list_archive(archive).superseded) == 10
    report = verify(archive)
    assert report.ok and len(report.notes) == 11
    con = connect(archive)
    assert con.execute("SELECT count(*), count(DISTINCT recv_ns) FROM agg_trades"
                       ).fetchone() == (1440, 1440)
    again = compact(archive, now_ns=T0 + 2 * DAY, streams=[STREAMS[0]])
    assert len(again.cleaned) == 11 and again.merges == []
    assert len(_files(archive, STREAMS[0])) == 1 and verify(archive).notes == []


def test_corrupt_input_is_not_merged(archive: Path) -> None:
    victim = _files(archive, STREAMS[0])[5]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 50])
    report = compact(archive, now_ns=T0 + 2 * DAY, streams=[STREAMS[0]])
    assert report.merges == []
    assert len(report.skipped) == 1 and victim.name in report.skipped[0]
    assert len(_files(archive, STREAMS[0])) == 96
    assert not (archive / STAGING_DIR).exists() or not any((archive / STAGING_DIR).iterdir())


def test_replay_counts_leftovers_of_an_interrupted_compact_once(archive: Path,
                                                                tmp_path: Path) -> None:
    """A kill between publishing the merged file and deleting its inputs leaves both on disk;
    the replay reader (like the catalog) must deliver each row once."""
    from replay import Replayer

    before = Replayer(archive, streams=STREAMS[0], speed=0).content_hash()
    inputs = _files(archive, STREAMS[0])
    saved = tmp_path / "saved"
    saved.mkdir()
    for f in inputs[:5]:
        shutil.copy2(f, saved / f.name)
    compact(archive, now_ns=T0 + 2 * DAY)
    assert len(_files(archive, STREAMS[0])) == 1
    for f in saved.iterdir():  # put back what a crash would have left behind
        shutil.copy2(f, inputs[0].parent / f.name)
    assert len(_files(archive, STREAMS[0])) == 6
    assert Replayer(archive, streams=STREAMS[0], speed=0).content_hash() == before


def test_a_lone_uncompacted_file_is_rewritten_once(tmp_path: Path) -> None:
    """A day already in one live file still gets the compacted plan (raw dropped where
    derivable), with identical content; a second run leaves it alone."""
    from replay import Replayer

    root = tmp_path / "arc"
    quarter_hours(root, agg_trades("btcusdt", T0, 10, 60 * SEC), STREAMS[0])
    (live,) = _files(root, STREAMS[0])
    before = Replayer(root, speed=0).content_hash()
    assert pq.read_table(live, columns=["raw"]).column("raw").null_count == 0
    first = compact(root, now_ns=T0 + 2 * DAY)
    (done,) = _files(root, STREAMS[0])
    assert done == live and len(first.merges) == 1
    assert pq.read_table(done, columns=["raw"]).column("raw").null_count == 10
    assert Replayer(root, speed=0).content_hash() == before
    assert verify(root).ok
    assert compact(root, now_ns=T0 + 2 * DAY).merges == []
