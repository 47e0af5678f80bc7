"""``import``: hftbacktest and Tardis-style captures into the archive, bytes kept exactly."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from recorder._import import detect_format, import_file, parse_timestamp, read_capture
from replay._catalog import connect
from replay._verify import verify
from schemas.errors import ArchiveError
from schemas.wire import make_envelope

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURE = DATA / "hftbacktest_btcusdt_20240808_head2500.txt.gz"


def _lines() -> list[tuple[int, str]]:
    with gzip.open(CAPTURE, "rt", encoding="utf-8", newline="\n") as f:
        out = []
        for line in f:
            ts, _, frame = line.rstrip("\n").partition(" ")
            out.append((int(ts), frame))
    return out


def _stored(root: Path) -> list[tuple[str, int, str, str]]:
    """``(stream, recv_ns, raw, source)`` of every stored message, raw as received (restored
    where storage dropped it as re-derivable, see schemas.storage)."""
    from replay import Replayer
    from schemas.message import Message

    return [(e.stream, e.recv_ns, e.raw, str(e.source))
            for e in Replayer(root, speed=0, gaps=False).events() if isinstance(e, Message)]


def _iso(ns: int) -> str:
    """Tardis-style local timestamp: ISO-8601 with 7 fractional digits."""
    s, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac // 100:07d}Z"


def test_hftbacktest_capture_round_trips_byte_exact(tmp_path: Path) -> None:
    lines = _lines()
    expected = Counter(orjson.loads(f)["stream"] if f.startswith('{"stream"')
                       else "btcusdt@depthSnapshot" for _, f in lines)
    result = import_file(tmp_path, CAPTURE)
    assert result.format == "hftbacktest"
    assert result.messages == dict(expected)
    assert verify(tmp_path).ok
    con = connect(tmp_path)
    stored = _stored(tmp_path)
    assert len(stored) == len(lines)
    rebuilt = sorted(
        (recv, make_envelope(stream, raw) if source == "ws" else raw)
        for stream, recv, raw, source in stored)
    assert rebuilt == sorted(lines)
    snap = con.execute("SELECT symbol, source, last_update_id, len(bid_prices) "
                       "FROM depth_snapshots").fetchall()
    bare = [orjson.loads(f) for _, f in lines if f.startswith('{"lastUpdateId"')]
    assert snap == [("BTCUSDT", "rest", bare[0]["lastUpdateId"], len(bare[0]["bids"]))]


def test_tardis_style_capture_gives_the_same_rows(tmp_path: Path) -> None:
    lines = _lines()[:300]
    src = tmp_path / "binance-futures_2024-08-08.txt"
    src.write_text("".join(f"{_iso(t)} {f}\n" for t, f in lines), encoding="utf-8")
    assert detect_format(src) == "tardis"
    result = import_file(tmp_path / "arc", src, fmt="auto")
    assert result.format == "tardis" and result.total == 300
    got = sorted((recv, raw) for _, recv, raw, source in _stored(tmp_path / "arc")
                 if source == "ws")
    want = sorted((t // 100 * 100, orjson.loads(f)["data"]) for t, f in lines
                  if f.startswith('{"stream"'))
    assert [r[0] for r in got] == [w[0] for w in want]
    assert [orjson.loads(r[1]) for r in got] == [w[1] for w in want]


def test_time_window_and_reimport_refusal(tmp_path: Path) -> None:
    lines = _lines()
    cut = lines[1000][0]
    first = import_file(tmp_path, CAPTURE, end_ns=cut)
    assert first.total == 1000
    with pytest.raises(ArchiveError, match="imported before"):
        import_file(tmp_path, CAPTURE)
    second = import_file(tmp_path, CAPTURE, fmt="hftbacktest", start_ns=cut)
    assert first.total + second.total == len(lines)
    assert verify(tmp_path).ok


def test_snapshot_symbol_comes_from_the_file_name_when_ambiguous(tmp_path: Path) -> None:
    body = '{"lastUpdateId":7,"E":1,"T":1,"bids":[["1.0","2.0"]],"asks":[]}'
    trade = ('{"stream":"%s@trade","data":{"e":"trade","E":1,"T":1,"s":"%s","t":1,'
             '"p":"1.0","q":"1.0","X":"MARKET","m":false}}')
    text = (f"1723161255000000000 {trade % ('btcusdt', 'BTCUSDT')}\n"
            f"1723161255000000001 {trade % ('ethusdt', 'ETHUSDT')}\n"
            f"1723161255000000002 {body}\n"
            '1723161255000000003 {"result":null,"id":1}\n')
    named = tmp_path / "ethusdt_20240808.txt"
    named.write_text(text)
    streams, skipped, fmt = read_capture(named)
    assert fmt == "hftbacktest" and skipped == 1
    assert [m.raw for m in streams["ethusdt@depthSnapshot"]] == [body]
    anonymous = tmp_path / "capture.txt"
    anonymous.write_text(text)
    with pytest.raises(ArchiveError, match="none can be inferred"):
        read_capture(anonymous)


@pytest.mark.parametrize("content", [b"", b"hello world\n", b"123 not json\n",
                                     b"\x1f\x8b\x08broken gzip"])
def test_bad_files_give_one_line_errors(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.gz"
    bad.write_bytes(content)
    with pytest.raises(ArchiveError) as info:
        import_file(tmp_path / "arc", bad)
    assert "\n" not in str(info.value) and "bad.gz" in str(info.value)
    assert not (tmp_path / "arc" / "streams").exists()


def test_timestamp_forms() -> None:
    assert parse_timestamp("1723161255030314667", "auto") == 1723161255030314667
    assert parse_timestamp("1723161255030", "hftbacktest") == 1723161255030000000
    assert parse_timestamp("2024-08-08T23:54:15.0303146Z", "tardis") == 1723161255030314600
    assert parse_timestamp("2024-08-08T23:54:15Z", "auto") == 1723161255000000000
    assert parse_timestamp("2024-08-08T23:54:15Z", "hftbacktest") is None


def test_tardis_generated_snapshot_is_kept_byte_exact(tmp_path: Path) -> None:
    body = '{"lastUpdateId":9,"E":1723161255000,"T":1723161254999,"bids":[["1.10","2"]],"asks":[]}'
    src = tmp_path / "tardis.txt"
    src.write_text(f'2024-08-08T23:54:15.0000001Z {{"stream":"btcusdt@depthSnapshot",'
                   f'"generated":true,"data":{body}}}\n')
    streams, _, fmt = read_capture(src)
    (msg,) = streams["btcusdt@depthSnapshot"]
    assert fmt == "tardis" and msg.raw == body and msg.source.value == "rest"
    assert msg.recv_ns == 1723161255000000100


def test_streamed_in_chunks_and_rolled_back_on_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import recorder._import as imp

    monkeypatch.setattr(imp, "CHUNK_MESSAGES", 700)
    lines = _lines()
    result = import_file(tmp_path / "ok", CAPTURE)
    assert result.total == len(lines) and len(result.paths) > 4
    assert verify(tmp_path / "ok").ok
    con = connect(tmp_path / "ok")
    assert con.execute("SELECT count(*) FROM messages").fetchone() == (len(lines),)
    broken = tmp_path / "broken.txt"
    broken.write_text("".join(f"{t} {f}\n" for t, f in lines[:2000]) + "oops\n")
    with pytest.raises(ArchiveError, match=r"broken.txt:2001: expected"):
        import_file(tmp_path / "bad", broken)
    assert list((tmp_path / "bad").rglob("*.parquet")) == []
