"""Frame handling of a Connection, fed directly (no socket)."""

from __future__ import annotations

from typing import Any

from recorder._connection import Connection, MonotonicClock
from schemas.message import Gap, GapKind, Message
from schemas.wire import make_envelope

AGG = '{"e":"aggTrade","E":1,"a":5,"s":"BTCUSDT","p":"1.0","q":"2"}'


def _conn(streams: tuple[str, ...], raw_stream: str | None = None,
          redact: Any = None) -> tuple[Connection, list[Message], list[Gap]]:
    msgs: list[Message] = []
    gaps: list[Gap] = []
    kwargs: dict[str, Any] = {"raw_stream": raw_stream}
    if redact is not None:
        kwargs["redact"] = redact
    conn = Connection(7, "ws://127.0.0.1:1/x", streams, None,  # type: ignore[arg-type]
                      MonotonicClock(), lambda c, m: msgs.append(m), gaps.append, **kwargs)
    return conn, msgs, gaps


def test_combined_envelope_unwrapped_to_canonical_stream() -> None:
    conn, msgs, gaps = _conn(("btcusdt@aggTrade", "!markPrice@arr"))
    conn._on_text(make_envelope("btcusdt@aggtrade", AGG), 100)
    conn._on_text(make_envelope("!markPrice@arr", "[]"), 101)
    assert [(m.stream, m.raw, m.conn_id, m.seq) for m in msgs] == [
        ("btcusdt@aggTrade", AGG, 7, 1), ("!markPrice@arr", "[]", 7, 2)]
    assert not gaps


def test_acks_are_not_stored_and_garbage_becomes_rejected_gap() -> None:
    conn, msgs, gaps = _conn(("btcusdt@aggTrade",))
    conn._on_text('{"result":null,"id":1}', 5)
    conn._on_text("{not json", 6)
    conn._on_text(make_envelope("../../etc", "{}"), 7)
    assert msgs == []
    assert [g.kind for g in gaps] == [GapKind.REJECTED, GapKind.REJECTED]
    assert all(g.stream == "btcusdt@aggTrade" for g in gaps)
    assert conn.rejected == 2


def test_raw_mode_stream_and_redaction() -> None:
    conn, msgs, _gaps = _conn(("userData",), raw_stream="userData",
                             redact=lambda s: s.replace("SECRETKEY", "<redacted>"))
    conn._on_text('{"e":"listenKeyExpired","listenKey":"SECRETKEY"}', 9)
    assert msgs[0].stream == "userData"
    conn2, _, gaps2 = _conn(("a@aggTrade", "b@aggTrade"),
                            redact=lambda s: s.replace("SECRETKEY", "<redacted>"))
    conn2._on_text("SECRETKEY garbage", 10)
    assert gaps2[0].stream == "*"
    assert "SECRETKEY" not in gaps2[0].detail


def test_clock_never_decreases(monkeypatch: Any) -> None:
    import recorder._connection as mod

    values = iter([100, 200, 150, 300])
    monkeypatch.setattr(mod.time, "time_ns", lambda: next(values))
    clock = MonotonicClock()
    assert [clock.now_ns() for _ in range(4)] == [100, 200, 200, 300]
