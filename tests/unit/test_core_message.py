"""Message, Gap and the Handler adapter (schemas core)."""

from __future__ import annotations

import pytest

from schemas import Gap, GapKind, Message, Source, as_handler
from schemas.handler import CallableHandler, deliver


def test_message_is_immutable_and_lazy() -> None:
    msg = Message("btcusdt@aggTrade", 5, '{"e":"aggTrade","a":1}', conn_id=2, seq=3)
    assert msg.data == {"e": "aggTrade", "a": 1}
    assert msg.data is msg.data  # decoded once
    with pytest.raises(AttributeError):
        msg.recv_ns = 6
    assert msg.sort_key == (5, 2, 3)
    assert msg.source is Source.WS


def test_message_equality_ignores_decoded_cache() -> None:
    a = Message("s@trade", 1, "{}")
    b = Message("s@trade", 1, "{}", data={})
    assert a == b and hash(a) == hash(b)
    assert a != Message("s@trade", 1, "{}", source=Source.REST)


def test_gap_dict_and_duration() -> None:
    gap = Gap("*", 10, 4, GapKind.DISCONNECT, "x")
    assert gap.duration_ns == 0
    assert gap.as_dict()["kind"] == "disconnect"


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[object] = []

    async def on_message(self, msg: Message) -> None:
        self.seen.append(msg)

    async def on_gap(self, gap: Gap) -> None:
        self.seen.append(gap)


async def test_handler_forms_receive_the_same_events() -> None:
    events: list[Message | Gap] = [Message("s@trade", 1, "{}"),
                                   Gap("s@trade", 1, 2, GapKind.SILENCE)]
    obj = _Recorder()
    sync_seen: list[object] = []
    async_seen: list[object] = []

    async def async_fn(event: object) -> None:
        async_seen.append(event)

    handlers = [as_handler(obj), as_handler(sync_seen.append), as_handler(async_fn)]
    assert handlers[0] is obj
    assert isinstance(handlers[1], CallableHandler)
    for handler in handlers:
        for event in events:
            await deliver(handler, event)
    assert obj.seen == sync_seen == async_seen == events


def test_as_handler_rejects_non_handlers() -> None:
    with pytest.raises(TypeError):
        as_handler(42)  # type: ignore[arg-type]


def test_from_columns_equals_one_by_one_construction() -> None:
    rows = [("a@trade", 5, '{"x":1}', 2, 3, Source.WS), ("b@trade", 6, "[]", 0, 9, Source.REST)]
    built = Message.from_columns(*(list(col) for col in zip(*rows, strict=True)))
    assert built == [Message(*row) for row in rows]
    assert [hash(m) for m in built] == [hash(Message(*row)) for row in rows]
    assert all(type(m) is Message for m in built)
    assert [repr(m) for m in built] == [repr(Message(*row)) for row in rows]
    assert built[0].data == {"x": 1} and built[1].data == []  # decoded lazily, once
    assert built[0].data is built[0].data
    with pytest.raises(AttributeError):
        built[0].raw = "{}"
    assert Message.from_columns([], [], [], [], [], []) == []


def test_from_columns_rejects_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        Message.from_columns(["a@trade"], [1, 2], ["{}"], [0], [0], [Source.WS])
