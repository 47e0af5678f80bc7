"""Control messages: Binance's exact replies and error codes (BINANCE.md section 2)."""

from __future__ import annotations

import json

import pytest

from replay.wire.control import ControlState


def test_subscribe_list_unsubscribe_replies_echo_id() -> None:
    state = ControlState()
    reply = state.handle('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],'
                         '"id":1}')
    assert reply.text == '{"result":null,"id":1}'
    assert reply.subscriptions_changed
    assert state.handle('{"method":"LIST_SUBSCRIPTIONS","id":3}').text == (
        '{"result":["btcusdt@aggTrade","btcusdt@depth"],"id":3}')
    reply = state.handle('{"method":"UNSUBSCRIBE","params":["btcusdt@depth"],"id":312}')
    assert reply.text == '{"result":null,"id":312}'
    assert reply.subscriptions_changed
    assert state.handle('{"method":"LIST_SUBSCRIPTIONS","id":4}').text == (
        '{"result":["btcusdt@aggTrade"],"id":4}')


def test_subscribe_canonicalises_and_ignores_duplicates() -> None:
    state = ControlState()
    state.handle('{"method":"SUBSCRIBE","params":["BTCUSDT@aggTrade"],"id":1}')
    reply = state.handle('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":2}')
    assert not reply.subscriptions_changed
    assert list(state.subscriptions) == ["btcusdt@aggTrade"]


def test_unknown_stream_is_acknowledged_and_listed() -> None:
    state = ControlState()
    assert state.handle('{"method":"SUBSCRIBE","params":["nonsense"],"id":9}').text == (
        '{"result":null,"id":9}')
    assert "nonsense" in state.subscriptions


def test_properties() -> None:
    state = ControlState(combined=False)
    assert state.handle('{"method":"GET_PROPERTY","params":["combined"],"id":2}').text == (
        '{"result":false,"id":2}')
    assert state.handle('{"method":"SET_PROPERTY","params":["combined",true],"id":5}').text == (
        '{"result":null,"id":5}')
    assert state.combined
    assert state.handle('{"method":"GET_PROPERTY","params":["combined"],"id":6}').text == (
        '{"result":true,"id":6}')


@pytest.mark.parametrize(("request_text", "code", "msg_start", "reply_id"), [
    ('{"method":"SET_PROPERTY","params":["nope",true],"id":1}', 0, "Unknown property", 1),
    ('{"method":"GET_PROPERTY","params":["nope"],"id":1}', 0, "Unknown property", 1),
    ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}', 1,
     "Invalid value type: expected Boolean", 1),
    ('{"method":"SET_PROPERTY","params":[5,true],"id":1}', 2,
     "Invalid request: property name must be a string", 1),
    ('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":-1}', 2,
     "Invalid request: request ID must be an unsigned integer", None),
    ('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1.5}', 2,
     "Invalid request: request ID must be an unsigned integer", None),
    ('{"method":"FROB","id":7}', 2, "Invalid request: unknown variant `FROB`", 7),
    ('{"method":"SET_PROPERTY","params":["combined",true,1],"id":1}', 2,
     "Invalid request: too many parameters", 1),
    ('{"params":[],"id":8}', 2, "Invalid request: missing field `method`", 8),
    ('{"method":"SUBSCRIBE",', 3, "Invalid JSON: expected value at line 1 column", None),
    ('not json', 3, "Invalid JSON: expected value at line 1 column 1", None),
])
def test_error_codes(request_text: str, code: int, msg_start: str, reply_id: object) -> None:
    reply = json.loads(ControlState().handle(request_text).text)
    assert list(reply) == ["error", "id"]
    assert reply["error"]["code"] == code
    assert reply["error"]["msg"].startswith(msg_start)
    assert reply["id"] == reply_id


def test_string_ids_echoed_like_the_official_sdk_sends_them() -> None:
    reply = ControlState().handle('{"method":"LIST_SUBSCRIPTIONS","id":"a1-b2"}')
    assert reply.text == '{"result":[],"id":"a1-b2"}'


def test_stream_cap() -> None:
    state = ControlState(max_streams=3)
    names = json.dumps([f"s{i}usdt@aggTrade" for i in range(4)])
    reply = json.loads(state.handle(f'{{"method":"SUBSCRIBE","params":{names},"id":1}}').text)
    assert reply["error"]["code"] == 2
    assert not state.subscriptions


def test_private_listing_is_sorted() -> None:
    state = ControlState(sorted_listing=True)
    state.subscriptions.update(dict.fromkeys(["k@ORDER_TRADE_UPDATE", "k@ACCOUNT_UPDATE"]))
    assert json.loads(state.handle('{"method":"LIST_SUBSCRIPTIONS","id":1}').text)["result"] == [
        "k@ACCOUNT_UPDATE", "k@ORDER_TRADE_UPDATE"]
