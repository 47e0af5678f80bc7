"""serve's per-client policy without sockets: URL options, disconnect plan, close codes, resumes."""

from __future__ import annotations

import pytest

from replay._serve_session import (
    DisconnectPlan,
    ResumeBook,
    SessionOptions,
    SessionQueryError,
    close_action,
    parse_session_query,
)
from replay.wire.source import Close, Drop
from schemas.message import Gap, GapKind
from tests.replay_support import SEC, T0


def test_url_options_parse_times_and_speed() -> None:
    opts = parse_session_query({"streams": "a/b", "start": "2024-08-09T00:00:00Z",
                                "end": str(T0 + SEC), "speed": "2.5"})
    assert opts == SessionOptions(start=T0, end=T0 + SEC, speed=2.5)
    assert parse_session_query({"streams": "x"}) == SessionOptions()
    assert parse_session_query({"speed": "0"}).speed == 0.0


@pytest.mark.parametrize(("query", "code", "name"), [
    ({"start": "yesterday"}, -1100, "'start'"),
    ({"end": "2024-13-01T00:00:00Z"}, -1100, "'end'"),
    ({"speed": "fast"}, -1100, "'speed'"),
    ({"speed": "-1"}, -1100, "'speed'"),
    ({"speed": "nan"}, -1100, "'speed'"),
    ({"speed": "inf"}, -1100, "'speed'"),
    ({"start": str(T0), "end": str(T0)}, -1128, "end must be after start"),
])
def test_bad_url_options_are_refused_with_a_binance_error(
        query: dict[str, str], code: int, name: str) -> None:
    with pytest.raises(SessionQueryError) as info:
        parse_session_query(query)
    assert info.value.refusal.code == code
    assert name in info.value.refusal.msg


def _gap(stream: str, start: int, end: int, kind: GapKind, detail: str = "") -> Gap:
    return Gap(stream, start, end, kind, detail)


def test_plan_keeps_only_disconnects_of_the_selected_streams() -> None:
    gaps = [
        _gap("btcusdt@aggTrade", T0 + 5 * SEC, T0 + 6 * SEC, GapKind.SEQUENCE),
        _gap("btcusdt@aggTrade", T0 + 7 * SEC, T0 + 8 * SEC, GapKind.SILENCE),
        _gap("ethusdt@aggTrade", T0 + 9 * SEC, T0 + 10 * SEC, GapKind.DISCONNECT),
        _gap("btcusdt@aggTrade", T0 + 20 * SEC, T0 + 21 * SEC, GapKind.DISCONNECT),
        _gap("*", T0 + 30 * SEC, T0 + 40 * SEC, GapKind.RECORDER_DOWN),
    ]
    plan = DisconnectPlan(reversed(gaps))
    assert [g.kind for g in plan.gaps] == [GapKind.DISCONNECT] * 2 + [GapKind.RECORDER_DOWN]
    btc = {"btcusdt@aggTrade"}
    assert plan.next_after(T0, btc) == gaps[3]  # sequence and silence gaps are data
    assert plan.next_after(T0, {"ethusdt@aggTrade"}) == gaps[2]
    # Started (or resumed) inside a gap: that gap does not close the session again.
    assert plan.next_after(T0 + 20 * SEC + 1, btc) == gaps[4]
    assert plan.next_after(T0 + 21 * SEC, {"xrpusdt@aggTrade"}) == gaps[4]  # `*`: every stream
    assert plan.next_after(T0 + 31 * SEC, btc) is None


def test_close_action_follows_what_the_recorder_saw() -> None:
    def action(detail: str, kind: GapKind = GapKind.DISCONNECT) -> Close | Drop:
        return close_action(_gap("btcusdt@aggTrade", T0, T0 + SEC, kind, detail))

    assert action("c1: server closed the connection (code 1001)") == Close(1001, "going away")
    assert action("c1: server closed the connection (code 1008)") == Close(
        1008, "Too many requests")
    assert action("c1: server closed the connection (code 4000)") == Close(4000, "")
    # No close frame was seen (or 1006, which no close frame may carry): the TCP link drops.
    assert action("c1: server closed the connection (code 1006)") == Drop(flush=True)
    assert action("c1: no frame for 10 s (idle watchdog)") == Drop(flush=True)
    assert action("recorder was not running", GapKind.RECORDER_DOWN) == Close(1001, "going away")


def test_resume_book_is_fifo_per_client_and_expires() -> None:
    book: ResumeBook[str] = ResumeBook(ttl_s=10.0, max_entries=3)
    a, b = ("127.0.0.1", "/ws/x"), ("127.0.0.1", "/ws/y")
    book.park(a, "first", T0, now=0.0)
    book.park(a, "second", T0 + 1, now=1.0)
    book.park(b, "other", T0 + 2, now=2.0)
    assert len(book) == 3
    newest = book.newest(now=2.0)
    assert newest is not None and newest.state == "other"
    first = book.claim(a, now=3.0)
    assert first is not None and (first.state, first.resume_ns) == ("first", T0)
    assert book.claim(("10.0.0.2", "/ws/x"), now=3.0) is None  # another client address
    assert book.claim(a, now=11.5) is None  # "second" was parked at 1.0: expired at 11.0
    assert len(book) == 1
    book.park(a, "p1", T0, now=12.0)
    book.park(a, "p2", T0, now=12.0)
    book.park(a, "p3", T0, now=13.0)  # over max_entries: the oldest ("other") goes
    claimed = [book.claim(a, now=13.0), book.claim(a, now=13.0), book.claim(a, now=13.0)]
    assert [p.state for p in claimed if p is not None] == ["p1", "p2", "p3"]
    assert book.claim(b, now=13.0) is None and len(book) == 0
