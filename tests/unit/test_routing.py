"""Pure routing: endpoint classes, sharding, URLs, SUBSCRIBE rate limiting."""

from __future__ import annotations

import orjson
import pytest

from recorder._routing import (
    INBOUND_LIMIT_PER_S,
    MAX_STREAMS_PER_CONNECTION,
    RateLimiter,
    check_rest_url,
    check_ws_url,
    combined_url,
    private_url,
    raw_url,
    route,
    shard,
    split_for_connect,
    subscribe_frame,
)
from schemas.errors import ConfigError
from schemas.streams import Endpoint, parse_stream


def _names(*names: str):
    return [parse_stream(n) for n in names]


def test_route_by_endpoint_class() -> None:
    routed = route(_names("btcusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@bookTicker",
                          "!markPrice@arr", "btcusdt@trade", "btcusdt@depthSnapshot"))
    assert routed[Endpoint.PUBLIC] == ["btcusdt@depth@100ms", "btcusdt@bookTicker",
                                       "btcusdt@trade"]
    assert routed[Endpoint.MARKET] == ["btcusdt@aggTrade", "!markPrice@arr"]
    assert Endpoint.REST not in routed  # snapshots are fetched, never subscribed


def test_shard_2000_streams_respects_1024_limit() -> None:
    symbols = [f"s{i:04d}usdt" for i in range(1000)]
    streams = _names(*[f"{s}@aggTrade" for s in symbols], *[f"{s}@bookTicker" for s in symbols])
    shards = shard(streams)
    assert all(len(s.streams) <= MAX_STREAMS_PER_CONNECTION for s in shards)
    assert sum(len(s.streams) for s in shards) == 2000
    assert {s.endpoint for s in shards} == {Endpoint.PUBLIC, Endpoint.MARKET}
    flat = [n for s in shards for n in s.streams]
    assert len(set(flat)) == 2000


def test_shard_splits_evenly_over_fewest_connections() -> None:
    streams = _names(*[f"s{i:04d}usdt@aggTrade" for i in range(1500)])
    sizes = sorted(len(s.streams) for s in shard(streams))
    assert sizes == [750, 750]
    sizes = sorted(len(s.streams) for s in shard(streams, per_connection=400))
    assert sizes == [375, 375, 375, 375]


def test_shard_rejects_bad_limit() -> None:
    with pytest.raises(ConfigError):
        shard(_names("btcusdt@aggTrade"), per_connection=1025)


def test_urls() -> None:
    base = "ws://127.0.0.1:9000"
    assert combined_url(base, Endpoint.MARKET, ["a@aggTrade", "b@aggTrade"]) == \
        "ws://127.0.0.1:9000/market/stream?streams=a@aggTrade/b@aggTrade"
    assert raw_url(base, Endpoint.PUBLIC, ["a@bookTicker"]) == \
        "ws://127.0.0.1:9000/public/ws/a@bookTicker"
    assert private_url(base, "KEY", ["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]) == \
        "ws://127.0.0.1:9000/private/ws?listenKey=KEY&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"


def test_split_for_connect_keeps_url_short_and_batches_rest() -> None:
    names = [f"s{i:04d}usdt@aggTrade" for i in range(1024)]
    in_url, batches = split_for_connect(names, url_chars=3000, per_message=200)
    assert sum(len(n) + 1 for n in in_url) <= 3000
    assert in_url + [n for b in batches for n in b] == names
    assert all(len(b) <= 200 for b in batches)


def test_subscribe_frame_is_binance_json() -> None:
    frame = subscribe_frame(7, ["btcusdt@aggTrade", "btcusdt@depth"])
    assert orjson.loads(frame) == {"method": "SUBSCRIBE",
                                   "params": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 7}


def test_rate_limiter_never_exceeds_rate_in_any_window() -> None:
    limiter = RateLimiter(rate=4)
    now = 0.0
    sent: list[float] = []
    for _ in range(40):
        delay = limiter.delay(now)
        now += delay
        limiter.record(now)
        sent.append(now)
        now += 0.001
    for i, t in enumerate(sent):
        in_window = [s for s in sent[i:] if s - t < 1.0]
        assert len(in_window) <= 4 < INBOUND_LIMIT_PER_S
    assert sent[-1] >= 9.0  # 40 messages at 4/s take at least 9 s


def test_rate_limiter_rejects_rate_at_exchange_limit() -> None:
    with pytest.raises(ConfigError):
        RateLimiter(rate=INBOUND_LIMIT_PER_S)


@pytest.mark.parametrize("url", ["http://x", "ws://", "ws://h:99999", "ws://h/?q=1", "foo",
                                 "ws://h:port"])
def test_bad_ws_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="ws-url"):
        check_ws_url(url)


def test_good_urls() -> None:
    assert check_ws_url("wss://fstream.binance.com/") == "wss://fstream.binance.com"
    assert check_ws_url("ws://127.0.0.1:8765") == "ws://127.0.0.1:8765"
    assert check_rest_url("https://fapi.binance.com") == "https://fapi.binance.com"
    with pytest.raises(ConfigError, match="rest-url"):
        check_rest_url("ftp://x")
