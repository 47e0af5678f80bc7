"""Archive reader: listing, window pruning (files and row groups), columns, corrupt files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from replay import Archive
from schemas.errors import ArchiveError, CorruptDataError
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


class _CountingReader(io.RawIOBase):
    def __init__(self, owner: CountingHandler, path: str) -> None:
        self.owner = owner
        self.file = open(path, "rb")  # noqa: SIM115  closed by close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def readinto(self, buf: Any) -> int:
        n = self.file.readinto(buf)
        self.owner.bytes_read += n
        return n

    def close(self) -> None:
        self.file.close()
        super().close()


class CountingHandler(pafs.FileSystemHandler):
    """Delegates to the local filesystem and counts files opened and bytes read."""

    def __init__(self) -> None:
        self.fs = pafs.LocalFileSystem()
        self.opened: list[str] = []
        self.bytes_read = 0

    def open_input_file(self, path: str) -> Any:
        self.opened.append(path)
        return pa.PythonFile(_CountingReader(self, path), mode="r")

    def open_input_stream(self, path: str) -> Any:
        return self.open_input_file(path)

    def get_type_name(self) -> str:
        return "counting"

    def equals(self, other: Any) -> bool:
        return other is self

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self.fs.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.fs.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        raise NotImplementedError

    delete_dir = delete_dir_contents = delete_root_dir_contents = delete_file = create_dir
    move = copy_file = open_output_stream = open_append_stream = create_dir


def _hour_archive(root: Path, per_s: int = 1, row_group_size: int | None = None) -> None:
    """Four 15-minute partitions of aggTrade (``per_s`` msgs/s) plus one bookTicker partition."""
    n = 900 * per_s
    for q in range(4):
        start = T0 + q * 900 * SEC
        write_partition(root, "btcusdt@aggTrade",
                        agg_trades("BTCUSDT", start, n, SEC // per_s, first_id=q * n,
                                   first_seq=q * n),
                        row_group_size=row_group_size)
    write_partition(root, "btcusdt@bookTicker", book_tickers("BTCUSDT", T0, 100, 10 * MS))


def test_lists_streams_and_ranges(tmp_path: Path) -> None:
    _hour_archive(tmp_path)
    (tmp_path / "streams" / "stream=btcusdt@aggTrade" / "date=2024-08-09" / "x.parquet.tmp")\
        .write_bytes(b"half a file")
    archive = Archive(tmp_path)
    assert archive.streams() == ["btcusdt@aggTrade", "btcusdt@bookTicker"]
    ranges = archive.time_ranges()
    assert ranges["btcusdt@aggTrade"] == (T0, T0 + 3599 * SEC)
    assert ranges["btcusdt@bookTicker"] == (T0, T0 + 99 * 10 * MS)
    assert len(archive.partitions("BTCUSDT@aggTrade")) == 4  # canonicalised, tmp ignored


def test_reads_only_overlapping_partitions(tmp_path: Path) -> None:
    _hour_archive(tmp_path)
    handler = CountingHandler()
    archive = Archive(tmp_path, filesystem=pafs.PyFileSystem(handler))
    start, end = T0 + 3540 * SEC, T0 + 3600 * SEC  # the last minute
    batches = list(archive.read_stream("btcusdt@aggTrade", start, end, columns=["recv_ns"]))
    rows = pa.Table.from_batches(batches)
    assert rows.column_names == ["recv_ns"]
    assert rows.column("recv_ns").to_pylist() == [T0 + s * SEC for s in range(3540, 3600)]
    assert len(handler.opened) == 1 and handler.opened[0].endswith(
        f"{T0 + 2700 * SEC}-{T0 + 3599 * SEC}.parquet")


def test_last_minute_of_an_hour_reads_under_a_tenth_of_the_bytes(tmp_path: Path) -> None:
    _hour_archive(tmp_path, per_s=10, row_group_size=600)  # one row group a minute
    total = sum(p.stat().st_size for p in (tmp_path / "streams").rglob("*.parquet"))
    handler = CountingHandler()
    archive = Archive(tmp_path, filesystem=pafs.PyFileSystem(handler))
    start = T0 + 3540 * SEC
    got = pa.Table.from_batches(list(archive.read_stream("btcusdt@aggTrade", start)))
    assert got.column("recv_ns").to_pylist() == [
        T0 + i * SEC // 10 for i in range(35400, 36000)]
    assert got.column_names == ["recv_ns", "conn_id", "seq", "source", "raw"]
    assert 0 < handler.bytes_read < total / 10, (handler.bytes_read, total)
    one = list(archive.read_batches(archive.partitions("btcusdt@aggTrade")[0],
                                    ["recv_ns"], T0 + 10 * SEC, T0 + 11 * SEC))
    assert [b.column("recv_ns").to_pylist() for b in one] == [
        [T0 + 10 * SEC + i * SEC // 10 for i in range(10)]]


def test_corrupt_partition_names_the_file(tmp_path: Path) -> None:
    _hour_archive(tmp_path)
    part = Archive(tmp_path).partitions("btcusdt@aggTrade")[1]
    Path(part.path).write_bytes(Path(part.path).read_bytes()[:300])  # torn copy
    archive = Archive(tmp_path)
    with pytest.raises(CorruptDataError) as info:
        list(archive.read_stream("btcusdt@aggTrade"))
    assert part.path in str(info.value) and "\n" not in str(info.value)


def test_missing_archive_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        Archive(tmp_path / "nope")


def test_gaps_filtered_by_stream_and_window(tmp_path: Path) -> None:
    write_gaps(tmp_path, [
        a_gap("btcusdt@aggTrade", T0 + 10 * SEC, T0 + 20 * SEC),
        a_gap("*", T0 + 30 * SEC, T0 + 31 * SEC),
        a_gap("ethusdt@aggTrade", T0 + 40 * SEC, T0 + 41 * SEC),
    ])
    (tmp_path / "streams").mkdir()
    archive = Archive(tmp_path)
    got = archive.gaps(["btcusdt@aggTrade"], start=T0 + 15 * SEC, end=T0 + 35 * SEC)
    assert [(g.stream, g.start_ns) for g in got] == [
        ("btcusdt@aggTrade", T0 + 10 * SEC), ("*", T0 + 30 * SEC)]
    assert len(archive.gaps()) == 3


def test_raw_dropped_by_the_formatter_is_restored(tmp_path: Path) -> None:
    # DESIGN.md storage budget: raw may be stored as null where the typed columns re-encode
    # to the received bytes; replay must still deliver the exact text.
    import pyarrow.parquet as pq

    from replay import Replayer
    from schemas.formatters import drop_derivable_raw
    from schemas.layout import partition_path
    from schemas.tables import build_batch

    msgs = agg_trades("BTCUSDT", T0, 50, MS)
    batch = drop_derivable_raw("btcusdt@aggTrade", build_batch("btcusdt@aggTrade", msgs))
    assert batch.column("raw").null_count > 0
    path = tmp_path / partition_path("btcusdt@aggTrade", T0, T0 + 49 * MS)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_batches([batch]), path)
    got = list(Replayer(tmp_path, speed=0).events())
    assert got == msgs and [m.raw for m in got] == [m.raw for m in msgs]  # type: ignore[union-attr]
    window = list(Archive(tmp_path).read_stream("btcusdt@aggTrade", T0 + 10 * MS, T0 + 12 * MS,
                                                columns=["raw"]))
    assert [b.column_names for b in window] == [["raw"]]
    assert window[0].column("raw").to_pylist() == [msgs[10].raw, msgs[11].raw]


@pytest.mark.parametrize("statistics", [True, False])
def test_row_groups_with_and_without_raw_are_read_by_their_statistics(
        tmp_path: Path, statistics: bool) -> None:
    # A compacted file can hold row groups that store raw next to groups that dropped it:
    # groups proven by their statistics to store raw on every row are read with just the
    # asked columns, the others with the typed columns too. Either way every row comes back
    # with its exact text.
    import pyarrow.parquet as pq

    from replay._rowgroups import _runs_by_raw
    from schemas.formatters import drop_derivable_raw
    from schemas.layout import partition_path
    from schemas.tables import build_batch

    stream = "btcusdt@aggTrade"
    msgs = agg_trades("BTCUSDT", T0, 60, MS)
    full = build_batch(stream, msgs)
    dropped = drop_derivable_raw(stream, full)
    assert dropped.column("raw").null_count == 60
    table = pa.Table.from_batches([full.slice(0, 20), dropped.slice(20, 20), full.slice(40, 20)])
    path = tmp_path / partition_path(stream, T0, T0 + 59 * MS)
    path.parent.mkdir(parents=True)
    pq.write_table(table, path, row_group_size=20, write_statistics=statistics)
    with pq.ParquetFile(path) as pf:
        runs = _runs_by_raw(pf.metadata, [0, 1, 2])
    # Without statistics a group whose raw chunk is too small to hold text is read with
    # every column at once, the others batch by batch.
    assert runs == ([([0], True), ([1], False), ([2], True)] if statistics
                    else [([0], None), ([1], False), ([2], None)])
    for batch_rows in (7, 64):
        archive = Archive(tmp_path, batch_rows=batch_rows)
        texts = [t for b in archive.read_stream(stream) for t in b.column("raw").to_pylist()]
        assert texts == [m.raw for m in msgs]
        window = archive.read_stream(stream, T0 + 15 * MS, T0 + 45 * MS, columns=["raw"])
        assert [t for b in window for t in b.column("raw").to_pylist()] == \
            [m.raw for m in msgs[15:45]]
