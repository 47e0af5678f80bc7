"""Route split and URL parsing (BINANCE.md section 1)."""

from __future__ import annotations

import pytest

from replay.wire.routing import RoutingMode, parse_target, resolve, serves_market
from replay.wire.source import Route, Session
from schemas.streams import Endpoint


@pytest.mark.parametrize(("route", "endpoint", "mode", "served"), [
    (Route.PUBLIC, Endpoint.PUBLIC, RoutingMode.STRICT, True),
    (Route.PUBLIC, Endpoint.MARKET, RoutingMode.STRICT, False),
    (Route.MARKET, Endpoint.MARKET, RoutingMode.STRICT, True),
    (Route.MARKET, Endpoint.PUBLIC, RoutingMode.STRICT, False),
    (Route.UNROUTED, Endpoint.PUBLIC, RoutingMode.STRICT, True),
    (Route.UNROUTED, Endpoint.MARKET, RoutingMode.STRICT, False),
    (Route.UNROUTED, Endpoint.MARKET, RoutingMode.LEGACY, True),
    (Route.PUBLIC, Endpoint.MARKET, RoutingMode.LEGACY, False),
    (Route.PUBLIC, Endpoint.MARKET, RoutingMode.OPEN, True),
    (Route.PRIVATE, Endpoint.MARKET, RoutingMode.OPEN, False),
    (Route.MARKET, Endpoint.REST, RoutingMode.OPEN, False),
])
def test_serves_market(route: Route, endpoint: Endpoint, mode: RoutingMode, served: bool) -> None:
    assert serves_market(route, endpoint, mode) is served


def test_parse_raw_and_combined() -> None:
    raw = parse_target(Route.MARKET, "ws", "btcusdt@aggTrade/ethusdt@markPrice", {})
    assert raw is not None and not raw.combined
    assert raw.names == ("btcusdt@aggTrade", "ethusdt@markPrice")
    combined = parse_target(Route.UNROUTED, "stream", "",
                            {"streams": ["btcusdt@depth20@100ms/btcusdt@aggTrade"]})
    assert combined is not None and combined.combined
    assert combined.names == ("btcusdt@depth20@100ms", "btcusdt@aggTrade")
    assert parse_target(Route.PUBLIC, "other", "", {}) is None


def test_parse_private_events_allow_list() -> None:
    target = parse_target(Route.PRIVATE, "stream", "", {
        "listenKey": ["KEY1abcdefgh", "KEY2abcdefgh"],
        "events": ["ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"]})
    assert target is not None
    assert target.names == ("KEY1abcdefgh@ACCOUNT_UPDATE", "KEY1abcdefgh@ORDER_TRADE_UPDATE",
                            "KEY2abcdefgh")


def test_resolve_filters_wrong_route_and_unknown_keys() -> None:
    known = {"KEY1abcdefgh"}
    res = resolve(["btcusdt@aggTrade", "btcusdt@bookTicker", "garbage", "KEY1abcdefgh"],
                  Route.PUBLIC, RoutingMode.STRICT, known.__contains__)
    assert res.streams == frozenset({"btcusdt@bookTicker"})
    assert res.user == {}
    res = resolve(["KEY1abcdefgh@ORDER_TRADE_UPDATE", "KEYXabcdefgh", "btcusdt@aggTrade"],
                  Route.PRIVATE, RoutingMode.STRICT, known.__contains__)
    assert res.streams == frozenset()
    assert res.user == {"KEY1abcdefgh": frozenset({"ORDER_TRADE_UPDATE"})}
    res = resolve(["KEY1abcdefgh", "btcusdt@markPrice"], Route.UNROUTED, RoutingMode.LEGACY,
                  known.__contains__)
    assert res.user == {"KEY1abcdefgh": None}
    assert res.streams == frozenset({"btcusdt@markPrice"})


def test_session_user_stream_names() -> None:
    private = Session(1, Route.PRIVATE, user={"K": frozenset({"ACCOUNT_UPDATE"})})
    assert private.user_stream("K", "ACCOUNT_UPDATE") == "K@ACCOUNT_UPDATE"
    assert private.user_stream("K", "ORDER_TRADE_UPDATE") is None
    assert private.user_stream("other", "ACCOUNT_UPDATE") is None
    legacy = Session(2, Route.UNROUTED, user={"K": None}, user_event_names=False)
    assert legacy.user_stream("K", "ORDER_TRADE_UPDATE") == "K"
