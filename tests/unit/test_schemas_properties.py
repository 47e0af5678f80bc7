"""Property tests (hypothesis): parsers never raise on arbitrary JSON; stream names stay safe."""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import StreamNameError
from schemas.formatters import drop_derivable_raw, restore_raw_column
from schemas.layout import partition_path, stream_dir
from schemas.message import Message
from schemas.streams import (
    CONTINUOUS_KLINE_INTERVALS,
    CONTRACT_TYPES,
    KLINE_INTERVALS,
    parse_stream,
)
from schemas.tables import build_batch, parse_payload, table_for

ONE_PER_TABLE = [
    "btcusdt@aggTrade", "btcusdt@trade", "btcusdt@markPrice", "!markPrice@arr",
    "btcusdt@kline_1m", "btcusdt_perpetual@continuousKline_1m", "btcusdt@miniTicker",
    "!miniTicker@arr", "btcusdt@ticker", "!ticker@arr", "btcusdt@bookTicker",
    "!forceOrder@arr", "btcusdt@depth", "btcusdt@depthSnapshot", "btcusdt@compositeIndex",
    "!contractInfo", "!assetIndex@arr", "userData", "btcusdt@unknownThing",
]
# Keys that the parsers look up, so generated objects often hit a typed column.
KEYS = st.sampled_from([
    "e", "E", "T", "s", "a", "p", "q", "nq", "f", "l", "m", "t", "X", "st", "ps", "k", "o", "b",
    "B", "A", "u", "U", "pu", "c", "C", "i", "r", "ap", "P", "n", "x", "h", "v", "V", "Q",
    "L", "bks", "lastUpdateId", "bids", "asks", "ac", "ai", "j", "cw", "wb",
]) | st.text(max_size=5)
EVENT_TYPES = st.sampled_from(["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "TRADE_LITE",
                               "MARGIN_CALL", "ACCOUNT_CONFIG_UPDATE", "aggTrade"])
SCALARS = (
    st.none() | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8) | st.sampled_from(["1.5", "-0", "1e400", "nan", "12", " 3"])
    | EVENT_TYPES
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=8),
    max_leaves=30,
)


def _text(value: Any) -> str:
    return json.dumps(value)  # may contain NaN/Infinity or huge ints: not valid Binance JSON


@settings(max_examples=150, deadline=None)
@given(stream=st.sampled_from(ONE_PER_TABLE), value=JSON)
def test_parse_payload_never_raises(stream: str, value: Any) -> None:
    names = [f.name for f in table_for(stream).typed_fields]
    for payload in (value, _text(value), [value], _text([value, value])):
        row = parse_payload(stream, payload)
        assert list(row) == names


@settings(max_examples=100, deadline=None)
@given(stream=st.sampled_from(ONE_PER_TABLE), values=st.lists(JSON, max_size=6))
def test_build_batch_never_raises_and_keeps_raw(stream: str, values: list[Any]) -> None:
    msgs = [Message(stream, i, _text(v), 1, i) for i, v in enumerate(values)]
    msgs += [Message(stream, 99, "{", 1, 99), Message(stream, 100, "x", 1, 100, data=values)]
    batch = build_batch(stream, msgs)
    assert batch.schema == table_for(stream).schema
    assert batch.column("raw").to_pylist() == [m.raw for m in msgs]
    assert batch.num_rows == len(msgs)
    batch.validate(full=True)


@settings(max_examples=60, deadline=None)
@given(stream=st.sampled_from(ONE_PER_TABLE), value=JSON)
def test_unknown_keys_are_ignored(stream: str, value: Any) -> None:
    base = {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "p": "1.5", "a": 7}
    extra = {**base, "zz_new_key": value, "another": [value]}
    assert parse_payload(stream, extra) == parse_payload(stream, base)


# ---- stream names ----------------------------------------------------------------------------

SAFE = re.compile(r"[A-Za-z0-9@!_-]+")
SYMBOL = st.from_regex(r"[a-z0-9]{2,12}", fullmatch=True)
CHANNEL = st.sampled_from([
    "aggTrade", "trade", "markPrice", "markPrice@1s", "miniTicker", "ticker", "bookTicker",
    "forceOrder", "compositeIndex", "assetIndex", "depthSnapshot", "depth", "depth@0ms",
    "depth@100ms", "depth5", "depth10@500ms", "depth20@250ms", "rpiDepth@500ms",
    *(f"kline_{i}" for i in KLINE_INTERVALS),
])
GLOBAL = st.sampled_from(["!markPrice@arr", "!markPrice@arr@1s", "!miniTicker@arr",
                          "!ticker@arr", "!bookTicker", "!forceOrder@arr", "!contractInfo",
                          "!assetIndex@arr", "userData", "userData@main-1"])
CONTINUOUS = st.builds(lambda s, c, i: f"{s}_{c}@continuousKline_{i}", SYMBOL,
                       st.sampled_from(CONTRACT_TYPES),
                       st.sampled_from(CONTINUOUS_KLINE_INTERVALS))
VALID = st.builds(lambda s, c: f"{s}@{c}", SYMBOL, CHANNEL) | GLOBAL | CONTINUOUS


def _swapcase_symbol(name: str) -> str:
    head, sep, tail = name.partition("@")
    return head.upper() + sep + tail if not name.startswith(("!", "userData")) else name


def _check_safe(name: str) -> None:
    assert SAFE.fullmatch(name), name
    assert ".." not in name and "/" not in name and "\\" not in name
    path = partition_path(name, 1_700_000_000_000_000_000, 1_700_000_000_000_000_001)
    assert path.startswith("streams/stream=")
    assert posixpath.normpath(path) == path
    assert posixpath.normpath(posixpath.join("/archive", path)).startswith("/archive/streams/")
    assert path.count("/") == 3


@settings(max_examples=200, deadline=None)
@given(name=VALID)
def test_valid_names_are_canonical_and_safe(name: str) -> None:
    parsed = parse_stream(name)
    assert parse_stream(parsed.name) == parsed
    assert parse_stream(_swapcase_symbol(name)) == parsed
    assert parsed.name == name  # the generated forms are already canonical
    _check_safe(parsed.name)
    assert stream_dir(name) == f"streams/stream={parsed.name}"


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=40) | st.builds(lambda a, b: a + b, VALID, st.text(max_size=6)))
def test_any_accepted_name_is_safe(name: str) -> None:
    try:
        parsed = parse_stream(name)
    except StreamNameError as exc:
        assert "Valid forms" in str(exc) or "must be a string" in str(exc)
        return
    assert parse_stream(parsed.name) == parsed
    _check_safe(parsed.name)
    assert len(parsed.name) <= 128


@settings(max_examples=50, deadline=None)
@given(name=VALID, value=JSON)
def test_batches_of_valid_streams_have_their_table_schema(name: str, value: Any) -> None:
    batch = build_batch(name, [Message(name, 1, _text(value))])
    assert isinstance(batch, pa.RecordBatch)
    assert batch.schema == table_for(name).schema


FORMATTED = ["btcusdt@aggTrade", "btcusdt@trade", "btcusdt@markPrice", "!markPrice@arr",
             "btcusdt@kline_1m", "btcusdt_perpetual@continuousKline_1m", "btcusdt@miniTicker",
             "!ticker@arr", "btcusdt@bookTicker", "!forceOrder@arr", "btcusdt@depth",
             "btcusdt@depthSnapshot"]


@settings(max_examples=100, deadline=None)
@given(stream=st.sampled_from(FORMATTED), values=st.lists(JSON, max_size=4))
def test_dropping_raw_is_always_reversible(stream: str, values: list[Any]) -> None:
    texts = [_text(v) for v in values] + [json.dumps(v, separators=(",", ":")) for v in values]
    batch = build_batch(stream, [Message(stream, i, t) for i, t in enumerate(texts)])
    stripped = drop_derivable_raw(stream, batch)
    assert restore_raw_column(stream, stripped).to_pylist() == texts
