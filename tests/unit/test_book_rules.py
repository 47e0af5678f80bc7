"""OrderBook: Binance's snapshot + diff sync rules (BINANCE.md section 4) on synthetic events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from replay import BookState, OrderBook
from schemas.message import Message, Source


def snap(last: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {"lastUpdateId": last, "E": 1, "T": 1, "bids": bids, "asks": asks}


def diff(first: int, last: int, prev: int, b: list[list[str]] | None = None,
         a: list[list[str]] | None = None) -> dict[str, Any]:
    return {"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": first, "u": last,
            "pu": prev, "b": b or [], "a": a or []}


D = Decimal


def test_buffered_diffs_before_an_older_snapshot_are_bridged() -> None:
    book = OrderBook("BTCUSDT")
    assert not book.on_diff(diff(90, 95, 80, b=[["10", "9"]]))  # u < lastUpdateId: dropped
    assert not book.on_diff(diff(96, 105, 95, b=[["10", "1"], ["9", "2"]]))  # bridges 100
    assert not book.on_diff(diff(107, 110, 105, a=[["12", "0"], ["13", "4"]]))
    assert book.state is BookState.WAITING_SNAPSHOT
    assert book.on_snapshot(snap(100, [["10", "5"]], [["11", "1"], ["12", "3"]]))
    assert book.state is BookState.LIVE and book.last_update_id == 110
    assert book.best_bid() == (D("10"), D("1"))
    assert book.best_ask() == (D("11"), D("1"))
    assert book.top(5) == ([(D("10"), D("1")), (D("9"), D("2"))],
                           [(D("11"), D("1")), (D("13"), D("4"))])  # "0" deleted 12


def test_first_event_must_bracket_last_update_id() -> None:
    book = OrderBook()
    book.on_snapshot(snap(100, [["10", "1"]], [["11", "1"]]))
    assert book.state is BookState.SYNCING
    assert not book.on_diff(diff(101, 105, 99))  # U > lastUpdateId: snapshot unusable
    assert book.state is BookState.WAITING_SNAPSHOT and book.resyncs == 1
    assert book.best_bid() is None
    # The next snapshot is bridged by the buffered event.
    book.on_snapshot(snap(103, [["10", "2"]], [["11", "2"]]))
    assert book.is_synced and book.last_update_id == 105


def test_pu_break_waits_for_next_snapshot_and_snapshots_are_ignored_while_live() -> None:
    book = OrderBook()
    book.on_snapshot(snap(100, [["10", "1"]], [["11", "1"]]))
    assert book.on_diff(diff(99, 101, 98, b=[["10", "3"]]))
    assert not book.on_snapshot(snap(150, [], []))  # live: the chain proves the book current
    assert book.on_diff(diff(102, 104, 101, b=[["10.5", "1"]]))
    assert book.best_bid() == (D("10.5"), D("1"))
    assert not book.on_diff(diff(110, 112, 106))  # pu != previous u: out of sync
    assert book.state is BookState.WAITING_SNAPSHOT and book.best_bid() is None
    assert not book.on_diff(diff(113, 115, 112, b=[["9", "1"]]))  # buffered
    assert book.on_snapshot(snap(111, [["9", "5"]], [["11", "1"]]))
    assert book.is_synced and book.last_update_id == 115
    assert book.best_bid() == (D("9"), D("1"))


def test_deleting_an_absent_level_is_harmless_and_messages_route_by_stream() -> None:
    book = OrderBook("BTCUSDT")
    body = '{"lastUpdateId":5,"E":1,"T":1,"bids":[["1.0","1"]],"asks":[["2.0","1"]]}'
    book.on_message(Message("btcusdt@depthSnapshot", 1, body, source=Source.REST))
    ev = '{"e":"depthUpdate","U":4,"u":6,"pu":3,"b":[["0.5","0"]],"a":[["2.0","0.000"]]}'
    assert not book.on_message(Message("ethusdt@depth@100ms", 2, ev))  # other symbol
    assert not book.on_message(Message("btcusdt@depth5@100ms", 2, ev))  # partial, not a diff
    assert book.on_message(Message("btcusdt@depth@100ms", 2, ev))
    assert book.best_ask() is None and book.best_bid() == (D("1.0"), D("1"))
