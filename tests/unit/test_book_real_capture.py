"""OrderBook on a real Binance capture: after sync, best bid/ask == bookTicker with same u."""

from __future__ import annotations

from pathlib import Path

from replay._book_check import check_book_tickers
from tests.replay_support import load_capture

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURE = DATA / "book_btcusdt_20240808_head6000_depth_bookticker.txt.gz"


def test_book_matches_every_comparable_book_ticker() -> None:
    msgs = load_capture(CAPTURE)
    diffs = [m for m in msgs if m.stream == "btcusdt@depth@0ms"]
    snapshot = next(m for m in msgs if m.stream == "btcusdt@depthSnapshot")
    # The capture's snapshot is older than the diffs around it: the bridging diff precedes it.
    bridge = next(m for m in diffs
                  if m.data["U"] <= snapshot.data["lastUpdateId"] <= m.data["u"])
    assert bridge.recv_ns < snapshot.recv_ns
    result = check_book_tickers(msgs, "BTCUSDT")
    assert result.resyncs == 0
    assert result.diffs_applied == sum(
        1 for m in diffs if m.data["u"] >= snapshot.data["lastUpdateId"])
    assert result.comparable > 40
    assert result.mismatches == []
    assert result.matched == result.comparable
