"""Smoke test of the benchmark harness: tiny sizes, keys present, values numbers or null.

No timing is asserted (benchmarks measure, tests do not). The pieces run here are the cheap,
in-process ones (storage, replay at speed 0 and 1, OHLCV); the subprocess pieces (feeder,
clients, recorder, serve) are exercised by ``python -m benchmarks --quick``. The websocket
frame helpers of the feeder are checked byte for byte against RFC 6455 examples.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from benchmarks import REQUIRED_KEYS
from benchmarks import __main__ as bench_main
from benchmarks import _wsproto as ws
from benchmarks._feed import STREAMS, FeedGenerator, cached
from benchmarks.storage import ndjson_gzip_bytes, to_messages
from schemas.streams import parse_stream


def _number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def test_tiny_run_writes_every_key_as_number_or_null(tmp_path: Path) -> None:
    console = Console(file=open(tmp_path / "out.txt", "w"), width=160)  # noqa: SIM115
    try:
        doc = bench_main.run(["storage", "replay", "replay1x", "ohlcv"], quick=True,
                             console=console, tiny=True, cache=tmp_path / "cache")
    finally:
        console.file.close()
    for key in REQUIRED_KEYS:
        assert key in doc, key
        if key == "bytes_per_msg":
            assert doc[key] is None or all(_number_or_null(v) for v in doc[key].values())
        else:
            assert _number_or_null(doc[key]), (key, doc[key])
    # The pieces that ran in-process produced figures, not "not measured".
    for key in ("ndjson_gzip_bytes_per_msg", "storage_ratio_live", "replay_max_msgs_per_s",
                "replay_read_baseline_msgs_per_s", "replay_1x_lateness_p99_us",
                "ohlcv_10m_s", "ohlcv_flat_baseline_s"):
        assert isinstance(doc[key], int | float), (key, doc[key], doc["notes"])
    assert set(doc["bytes_per_msg"]) == {"aggTrade", "depth", "bookTicker", "markPrice"}
    assert doc["storage_raw_exact"] is True
    orjson.dumps(doc)  # JSON-serialisable


def test_feed_is_valid_and_sequenced(tmp_path: Path) -> None:
    msgs = cached(3000, directory=tmp_path)
    assert cached(3000, directory=tmp_path) == msgs  # the cache round-trips
    assert {m.stream for m in msgs} == set(STREAMS)
    last_agg: dict[str, int] = {}
    last_u: dict[str, int] = {}
    offsets = [m.offset_ns for m in msgs]
    assert offsets == sorted(offsets)
    for m in msgs:
        data = orjson.loads(m.payload)
        assert data["s"] == parse_stream(m.stream).symbol
        env = orjson.loads(m.envelope)
        assert env == {"stream": m.stream, "data": data}
        if data["e"] == "aggTrade":
            # BINANCE.md section 6: aggregate ids rise by one per symbol.
            if m.stream in last_agg:
                assert data["a"] == last_agg[m.stream] + 1
            last_agg[m.stream] = data["a"]
        elif data["e"] == "depthUpdate":
            # BINANCE.md section 4: each pu equals the previous u.
            if m.stream in last_u:
                assert data["pu"] == last_u[m.stream]
            assert data["U"] <= data["u"]
            last_u[m.stream] = data["u"]


def test_agg_trades_cover_the_span() -> None:
    trades = list(FeedGenerator(seed=1).agg_trades("btcusdt", 100, 1_000_000_000))
    assert len(trades) == 100
    assert trades[-1].offset_ns < 1_000_000_000
    ids = [orjson.loads(t.payload)["a"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + 100))


def test_ndjson_baseline_is_gzip_of_tardis_lines(tmp_path: Path) -> None:
    msgs = to_messages(cached(200, directory=tmp_path))
    size = ndjson_gzip_bytes(msgs)
    assert 0 < size < sum(len(m.raw) for m in msgs)
    body = "".join(f"{m.recv_ns} {{\"stream\":\"{m.stream}\",\"data\":{m.raw}}}\n" for m in msgs)
    assert len(gzip.compress(body.encode(), compresslevel=6)) == size


def test_ws_accept_key_rfc6455_example() -> None:
    # RFC 6455 section 1.3.
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536])
def test_ws_frame_lengths(size: int) -> None:
    payload = b"x" * size
    frame = ws.encode_frame(payload)
    assert frame[0] == 0x81
    parsed = ws.parse_frame(frame)
    assert parsed == (ws.OP_TEXT, payload, len(frame))
    assert ws.parse_frame(frame[:-1] if size else frame[:1]) is None


def test_ws_masked_client_frame() -> None:
    # RFC 6455 section 5.7: a masked "Hello" from a client.
    frame = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    assert ws.parse_frame(frame) == (ws.OP_TEXT, b"Hello", len(frame))
    req = ws.parse_request(b"GET /public/stream?streams=a HTTP/1.1\r\nUpgrade: websocket\r\n"
                           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
    assert req.is_upgrade and req.target == "/public/stream?streams=a"
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in ws.upgrade_response(
        req.headers["sec-websocket-key"])
