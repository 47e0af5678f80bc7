"""Make-before-break rotation: the overlap of two connections has no hole, no duplicate."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from recorder._overlap import OverlapDeduper
from schemas.message import Message


def _msgs(stream: str, ids: range, conn: int, t0: int) -> list[Message]:
    return [Message(stream, t0 + i, f'{{"a":{i}}}', conn, k) for k, i in enumerate(ids, 1)]


def _merge(old: list[Message], new: list[Message], order: list[bool]) -> list[Message]:
    dedup = OverlapDeduper()
    out: list[Message] = []
    oi = ni = 0
    for take_old in order:
        if take_old and oi < len(old):
            out += dedup.from_old(old[oi])
            oi += 1
        elif ni < len(new):
            out += dedup.from_new(new[ni])
            ni += 1
    for m in old[oi:]:
        out += dedup.from_old(m)
    rest, unmatched = dedup.close_old()
    out += rest
    assert not unmatched
    for m in new[ni:]:
        out += dedup.from_new(m)
    return out


@settings(max_examples=200, deadline=None)
@given(old_end=st.integers(20, 60), new_start=st.integers(0, 19), seed=st.integers(0, 10**6))
def test_overlap_yields_each_event_once_in_order(old_end: int, new_start: int, seed: int) -> None:
    old = _msgs("s@aggTrade", range(old_end), 1, 0)
    new = _msgs("s@aggTrade", range(new_start, 80), 2, 5)
    order = [random.Random(seed).random() < 0.5 for _ in range(200)]
    out = _merge(old, new, order)
    assert [m.raw for m in out] == [f'{{"a":{i}}}' for i in range(80)]


def test_lagging_new_connection_is_held_until_it_catches_up() -> None:
    dedup = OverlapDeduper()
    assert dedup.from_old(Message("x@aggTrade", 1, "A", 1, 1)) != []
    assert dedup.from_old(Message("x@aggTrade", 2, "B", 1, 2)) != []
    assert dedup.from_new(Message("x@aggTrade", 3, "A", 2, 1)) == []
    assert dedup.pending() == set()  # caught up: old may close
    assert dedup.from_new(Message("x@aggTrade", 3, "B", 2, 2)) == []
    assert dedup.from_new(Message("x@aggTrade", 4, "C", 2, 3)) == []
    assert [m.raw for m in dedup.from_old(Message("x@aggTrade", 4, "C", 1, 3))] == ["C"]
    assert dedup.switched() == {"x@aggTrade"}
    assert dedup.from_old(Message("x@aggTrade", 5, "D", 1, 4)) == []
    assert [m.raw for m in dedup.from_new(Message("x@aggTrade", 5, "D", 2, 4))] == ["D"]


def test_streams_without_common_event_are_reported() -> None:
    dedup = OverlapDeduper()
    dedup.from_old(Message("x@depth", 1, "A", 1, 1))
    dedup.from_new(Message("x@depth", 2, "Z", 2, 1))
    assert dedup.pending() == {"x@depth"}
    held, unmatched = dedup.close_old()
    assert [m.raw for m in held] == ["Z"]
    assert [(u.stream, u.old_last_ns, u.new_first_ns) for u in unmatched] == [("x@depth", 1, 2)]
    assert dedup.pending() == set()


def test_streams_are_independent() -> None:
    dedup = OverlapDeduper()
    dedup.from_old(Message("a@aggTrade", 1, "A1", 1, 1))
    dedup.from_new(Message("a@aggTrade", 2, "A1", 2, 1))
    assert dedup.pending() == set()
    assert [m.raw for m in dedup.from_old(Message("b@aggTrade", 3, "B1", 1, 2))] == ["B1"]
    assert dedup.pending() == {"b@aggTrade"}
