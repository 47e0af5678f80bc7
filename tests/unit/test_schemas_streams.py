"""Stream-name validation, the combined-stream envelope and the archive layout."""

from __future__ import annotations

import pytest

from schemas.errors import ArchiveError, StreamNameError, TicktapeError
from schemas.layout import (
    date_of_ns,
    day_bounds_ns,
    gaps_path,
    join,
    parse_partition_name,
    parse_stream_dir,
    partition_dir,
    partition_name,
    partition_path,
    stream_dir,
)
from schemas.streams import Endpoint, canonical, parse_stream, parse_stream_list
from schemas.wire import make_envelope, split_envelope

BAD_NAMES = [
    "../x", "btcusdt@aggTrade;rm -rf", "", "   ", "a" * 300, "btcusdt@aggTrade" + "x" * 200,
    "btcusdt@nosuchchannel", "btcusdt/aggTrade", "btc usdt@aggTrade", "btcusdt@kline_2m",
    "btcusdt@depth@1ms", "btcusdt@depth5@0ms", "!nope@arr", "..@aggTrade", "b@aggTrade",
    "btcusdt", "btcusdt@", "@aggTrade", "btcusdt@aggTrade\nx", "btcusdt@aggtrade$",
    "btcüsdt@aggTrade", "btcusdt_weekly@continuousKline_1m", "userData@a/b",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_rejects_bad_names_with_one_clear_error(name: str) -> None:
    with pytest.raises(StreamNameError) as info:
        parse_stream(name)
    message = str(info.value)
    assert isinstance(info.value, TicktapeError) and isinstance(info.value, ValueError)
    assert "\n" not in message
    assert "Valid forms" in message and "<symbol>@aggTrade" in message
    shown = name if len(name) <= 80 else name[:77] + "..."
    assert repr(shown) in message
    assert len(message) < 1500


def test_long_names_are_cut_in_the_message() -> None:
    with pytest.raises(StreamNameError, match="longer than 128"):
        parse_stream("a" * 300)


def test_surrounding_whitespace_is_stripped() -> None:
    assert parse_stream(" btcusdt@aggTrade\n").name == "btcusdt@aggTrade"


def test_non_string_is_rejected() -> None:
    with pytest.raises(StreamNameError):
        parse_stream(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "canon", "endpoint", "event"), [
    ("BTCUSDT@aggTrade", "btcusdt@aggTrade", Endpoint.MARKET, "aggTrade"),
    ("btcusdt@AGGTRADE", "btcusdt@aggTrade", Endpoint.MARKET, "aggTrade"),
    ("btcusdt@trade", "btcusdt@trade", Endpoint.PUBLIC, "trade"),
    ("!MARKPRICE@ARR@1s", "!markPrice@arr@1s", Endpoint.MARKET, "markPriceUpdate"),
    ("btcusdt@depth20@100ms", "btcusdt@depth20@100ms", Endpoint.PUBLIC, "depthUpdate"),
    ("btcusdt@depth@0ms", "btcusdt@depth@0ms", Endpoint.PUBLIC, "depthUpdate"),
    ("btcusdt@bookTicker", "btcusdt@bookTicker", Endpoint.PUBLIC, "bookTicker"),
    ("!bookticker", "!bookTicker", Endpoint.PUBLIC, "bookTicker"),
    ("ethusdt_250627@kline_1M", "ethusdt_250627@kline_1M", Endpoint.MARKET, "kline"),
    ("BTCUSDT_PERPETUAL@continuousKline_1s", "btcusdt_perpetual@continuousKline_1s",
     Endpoint.MARKET, "continuous_kline"),
    ("userData", "userData", Endpoint.PRIVATE, "userData"),
    ("USERDATA@Main", "userData@main", Endpoint.PRIVATE, "userData"),
    ("btcusdt@depthSnapshot", "btcusdt@depthSnapshot", Endpoint.REST, "depthSnapshot"),
])
def test_canonical_forms(name: str, canon: str, endpoint: Endpoint, event: str) -> None:
    parsed = parse_stream(name)
    assert (parsed.name, parsed.endpoint, parsed.event_type) == (canon, endpoint, event)
    assert canonical(name) == canon and str(parsed) == canon


def test_stream_attributes() -> None:
    k = parse_stream("btcusdt_perpetual@continuousKline_5m")
    assert (k.symbol, k.contract_type, k.interval) == ("BTCUSDT", "perpetual", "5m")
    d = parse_stream("btcusdt@depth10@500ms")
    assert (d.levels, d.speed_ms, d.is_diff_depth) == (10, 500, False)
    assert parse_stream("btcusdt@depth").is_diff_depth
    assert parse_stream("!ticker@arr").is_array and not parse_stream("!bookTicker").is_array


def test_stream_list_dedups_in_order() -> None:
    got = parse_stream_list("BTCUSDT@aggTrade, ethusdt@trade,btcusdt@aggTrade,,")
    assert [s.name for s in got] == ["btcusdt@aggTrade", "ethusdt@trade"]
    with pytest.raises(StreamNameError, match="no streams"):
        parse_stream_list(" , ")
    with pytest.raises(StreamNameError, match=r"\.\./x"):
        parse_stream_list("btcusdt@aggTrade,../x")


# ---- envelope --------------------------------------------------------------------------------

PAYLOADS = ['{"e":"aggTrade","a":1}', '[{"e":"markPriceUpdate"},{"x":"}"}]',
            '{"s":"\\"stream\\"","data":{}}', "{}"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_envelope_round_trip_is_byte_exact(payload: str) -> None:
    frame = make_envelope("btcusdt@aggTrade", payload)
    assert frame == '{"stream":"btcusdt@aggTrade","data":' + payload + "}"
    assert split_envelope(frame) == ("btcusdt@aggTrade", payload)


def test_split_envelope_other_shapes() -> None:
    assert split_envelope('{"e":"aggTrade"}') is None
    assert split_envelope('{"result":null,"id":1}') is None
    assert split_envelope("not json") is None
    assert split_envelope('{"stream":"x"') is None
    assert split_envelope('{"data":{"a":1},"stream":"s@trade"}') == ("s@trade", '{"a":1}')
    assert split_envelope('{"stream":5,"data":{}}') is None


# ---- layout ----------------------------------------------------------------------------------

NS_2024_08_08 = 1723161255030314667  # 2024-08-08T23:54:15Z


def test_partition_paths() -> None:
    assert date_of_ns(NS_2024_08_08) == "2024-08-08"
    assert stream_dir("BTCUSDT@aggTrade") == "streams/stream=btcusdt@aggTrade"
    assert partition_dir("!markPrice@arr", "2024-08-08") == \
        "streams/stream=!markPrice@arr/date=2024-08-08"
    assert partition_name(1, 2) == "1-2.parquet"
    assert partition_path("btcusdt@depth@0ms", NS_2024_08_08, NS_2024_08_08 + 5) == (
        f"streams/stream=btcusdt@depth@0ms/date=2024-08-08/"
        f"{NS_2024_08_08}-{NS_2024_08_08 + 5}.parquet")
    assert gaps_path(NS_2024_08_08, NS_2024_08_08) == \
        f"gaps/date=2024-08-08/{NS_2024_08_08}-{NS_2024_08_08}.parquet"
    assert join("a/", "", "b") == "a/b"


def test_layout_parsers_invert_the_builders() -> None:
    assert parse_partition_name(partition_name(5, 9)) == (5, 9)
    assert parse_partition_name("5-9.parquet.tmp") is None
    assert parse_partition_name("x.parquet") is None
    assert parse_stream_dir("stream=BTCUSDT@aggTrade") == "btcusdt@aggTrade"
    assert parse_stream_dir("stream=../x") is None
    assert parse_stream_dir("date=2024-01-01") is None


def test_day_bounds() -> None:
    start, end = day_bounds_ns("2024-08-08")
    assert date_of_ns(start) == "2024-08-08" and date_of_ns(end) == "2024-08-09"
    assert date_of_ns(end - 1) == "2024-08-08"
    assert end - start == 86_400 * 10**9


@pytest.mark.parametrize("call", [
    lambda: partition_dir("btcusdt@aggTrade", "2024/08/08"),
    lambda: partition_dir("btcusdt@aggTrade", "../../etc"),
    lambda: partition_name(5, 4),
    lambda: partition_name(-1, 4),
    lambda: day_bounds_ns("yesterday"),
])
def test_layout_rejects_bad_input(call: object) -> None:
    with pytest.raises(ArchiveError):
        call()  # type: ignore[operator]


@pytest.mark.parametrize("name", ["../x", "a/../../b@aggTrade", "btcusdt@aggTrade/../.."])
def test_layout_cannot_escape_the_archive(name: str) -> None:
    with pytest.raises(StreamNameError):
        partition_path(name, 1, 2)
