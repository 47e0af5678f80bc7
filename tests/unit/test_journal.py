"""Journal: framing round trip, damage handling (hypothesis), fsync policies, segment roll."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder._journal import (
    MAGIC,
    Journal,
    JournalConfig,
    SegmentReader,
    encode_message,
    list_segments,
    segment_name,
    truncate_segment,
)
from schemas.errors import ArchiveError
from schemas.message import Gap, GapKind, Message, Source

T0 = 1_771_263_510_000_000_000


def make_messages(n: int, start: int = 0) -> list[Message]:
    streams = ("btcusdt@aggTrade", "btcusdt@depth@100ms", "ethusdt@bookTicker")
    out = []
    for i in range(start, start + n):
        raw = f'{{"e":"x","i":{i},"pad":"{"é" * (i % 7)}"}}'
        src = Source.REST if i % 11 == 0 else Source.WS
        out.append(Message(streams[i % 3], T0 + i * 1_000, raw, i % 4, i, src))
    return out


def read_all(directory: Path) -> tuple[list[Message | Gap], list[SegmentReader]]:
    records: list[Message | Gap] = []
    readers = []
    for _, path in list_segments(directory):
        reader = SegmentReader(path)
        records.extend(reader.records())
        readers.append(reader)
    return records, readers


def test_round_trip_messages_and_gaps_in_order(tmp_path: Path) -> None:
    j = Journal(tmp_path, 0, JournalConfig(fsync="every-flush"))
    msgs = make_messages(500)
    gap = Gap("*", T0, T0 + 5, GapKind.RECORDER_DOWN, "détail", recovered=True)
    j.append(msgs[:200])
    j.flush()
    j.append_gap(gap)
    j.append(msgs[200:])
    j.close()
    records, readers = read_all(tmp_path)
    assert records == [*msgs[:200], gap, *msgs[200:]]
    assert all(r.torn_bytes == 0 and r.dropped_records == 0 for r in readers)
    assert [m.source for m in records if isinstance(m, Message)] == [m.source for m in msgs]


def test_nothing_reaches_the_file_before_flush(tmp_path: Path) -> None:
    j = Journal(tmp_path, 0, JournalConfig(flush_interval_s=0.1))
    j.append(make_messages(10))
    path = tmp_path / segment_name(0)
    assert path.stat().st_size == len(MAGIC)
    assert j.unflushed_bytes > 0
    assert not j.maybe_flush(now=j._last_flush + 0.05)
    assert j.maybe_flush(now=j._last_flush + 0.11)
    assert j.unflushed_bytes == 0
    assert path.stat().st_size > len(MAGIC)
    j.close()


def test_buffer_is_flushed_when_it_reaches_flush_bytes(tmp_path: Path) -> None:
    j = Journal(tmp_path, 0, JournalConfig(flush_bytes=4096, flush_interval_s=3600))
    j.append(make_messages(200))
    assert (tmp_path / segment_name(0)).stat().st_size > len(MAGIC)
    j.close()


@pytest.mark.parametrize("policy", ["never", "interval", "every-flush"])
def test_fsync_policies(tmp_path: Path, policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    j = Journal(tmp_path, 0, JournalConfig(fsync=policy, fsync_interval_s=10.0))  # type: ignore[arg-type]
    monkeypatch.setattr(os, "fsync", counting)
    base = j._last_fsync
    for k in range(5):
        j.append(make_messages(3, k * 3))
        j.flush(now=base + k * 0.1)
    during = len(calls)
    j.close()
    if policy == "never":
        assert calls == []
    elif policy == "interval":
        assert during == 0 and len(calls) == 1  # only the close
    else:
        assert during == 5


def test_bad_fsync_policy_is_an_archive_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="fsync policy"):
        Journal(tmp_path, 0, JournalConfig(fsync="sometimes"))  # type: ignore[arg-type]


def test_segments_roll_by_size_and_age(tmp_path: Path) -> None:
    j = Journal(tmp_path, 7, JournalConfig(segment_bytes=2000, segment_age_s=3600))
    msgs = make_messages(300)
    for k in range(0, 300, 30):
        j.append(msgs[k:k + 30])
        j.flush()
    by_size = j.index
    assert by_size > 7
    j.append(make_messages(1, 300))
    j.flush(now=j._opened + 3601)
    assert j.index == by_size + 1
    j.close()
    records, _ = read_all(tmp_path)
    assert records == [*msgs, *make_messages(1, 300)]
    assert next(i for i, _ in list_segments(tmp_path)) == 7


def test_delete_before_keeps_the_current_segment(tmp_path: Path) -> None:
    j = Journal(tmp_path, 0, JournalConfig())
    for _ in range(3):
        j.append(make_messages(5))
        j.roll()
    assert [i for i, _ in list_segments(tmp_path)] == [0, 1, 2, 3]
    assert j.delete_before(2) == 2
    assert j.delete_before(99) == 1  # 2 goes, 3 is being written
    assert [i for i, _ in list_segments(tmp_path)] == [3]
    j.close()


def test_failed_write_leaves_no_torn_block_and_fails_fast(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = Journal(tmp_path, 0, JournalConfig())
    good = make_messages(20)
    j.append(good)
    j.flush()
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_enospc)
    j.append(make_messages(20, 20))
    with pytest.raises(ArchiveError, match="disk full"):
        j.flush()
    monkeypatch.setattr(os, "write", real_write)
    with pytest.raises(ArchiveError):
        j.append(good)
    j.close()
    records, readers = read_all(tmp_path)
    assert records == good
    assert readers[0].torn_bytes == 0


def _write_segment(directory: Path, batches: list[list[Message]]) -> Path:
    j = Journal(directory, 0, JournalConfig(fsync="never"))
    for b in batches:
        j.append(b)
        j.flush()
    j.close()
    return directory / segment_name(0)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
       cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)),
                                           max_size=3))
def test_damaged_segment_yields_a_prefix_and_reports_it(
        tmp_path_factory: pytest.TempPathFactory, sizes: list[int], cut: float,
        flips: list[tuple[float, int]]) -> None:
    directory = tmp_path_factory.mktemp("seg")
    batches, start = [], 0
    for n in sizes:
        batches.append(make_messages(n, start))
        start += n
    written = [m for b in batches for m in b]
    path = _write_segment(directory, batches)
    data = bytearray(path.read_bytes())
    ends, pos = [len(MAGIC)], len(MAGIC)  # block boundaries of the intact segment
    while pos < len(data):
        pos += 8 + struct.unpack_from("<I", data, pos)[0]
        ends.append(pos)
    data = data[: int(len(data) * cut)] if cut < 1 else data
    for where, bit in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    path.write_bytes(bytes(data))

    reader = SegmentReader(path)
    got = list(reader.records())  # never raises
    assert got == written[: len(got)]
    assert reader.valid_bytes + reader.torn_bytes == len(data)
    if reader.torn_bytes and len(data) > len(MAGIC):
        assert reader.dropped_records >= 1 and reader.error
    if not flips:
        whole = [e for e in ends if e <= len(data)]
        expect_valid = whole[-1] if whole else 0
        assert reader.valid_bytes == expect_valid
        assert got == written[: sum(sizes[: max(0, len(whole) - 1)])]
        assert reader.torn_bytes == len(data) - expect_valid
    truncate_segment(path, reader.valid_bytes)
    again = list(SegmentReader(path).records()) if path.exists() else []
    assert again == got


def test_corrupt_record_inside_a_valid_frame_is_caught_by_its_crc(tmp_path: Path) -> None:
    # Re-frame a block whose record CRC is wrong but whose block CRC matches.
    msgs = make_messages(3)
    good = _write_segment(tmp_path, [msgs])
    recs = [bytearray(encode_message(m, m.stream.encode())) for m in msgs]
    recs[1][-1] ^= 0x01
    frame = zstandard.ZstdCompressor().compress(b"".join(bytes(r) for r in recs))
    good.write_bytes(MAGIC + struct.pack("<II", len(frame), zlib.crc32(frame)) + frame)
    reader = SegmentReader(good)
    assert list(reader.records()) == msgs[:1]
    assert reader.dropped_records == 1 and "record checksum" in reader.error
