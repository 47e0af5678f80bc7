"""The vectorised batch parse (schemas._vector) against the per-message parse.

``build_batch`` takes the vectorised path when it can; the per-message path
(``Message.data`` + extractor) is the reference it must equal bit for bit, on the real
captures and on batches with every kind of odd payload mixed in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas._vector import typed_columns
from schemas.message import Message
from schemas.streams import parse_stream
from schemas.tables import _decoded_columns, build_batch, table_for
from tests.schemas_support import (
    AGG_TRADE,
    BOOK_TICKER,
    DEPTH,
    MARK_PRICE,
    TRADE,
    cryptofeed_messages,
    hftbacktest_messages,
)


def _exact(value: Any) -> Any:
    """Floats as their bit pattern (so NaN == NaN and -0.0 != 0.0), recursively."""
    if isinstance(value, float):
        return ("f", "nan" if math.isnan(value) else value.hex())
    if isinstance(value, list):
        return [_exact(v) for v in value]
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    return value


def _reference(stream: str, messages: Sequence[Message]) -> list[Any]:
    table = table_for(stream)
    symbol = parse_stream(stream).symbol
    fresh = [Message(m.stream, m.recv_ns, m.raw, m.conn_id, m.seq, m.source) for m in messages]
    return [_exact(a.to_pylist()) for a in _decoded_columns(table, symbol, fresh)]


def _fast(stream: str, messages: Sequence[Message]) -> list[Any] | None:
    table = table_for(stream)
    if table.plan is None:
        return None
    raws = [m.raw for m in messages]
    cols = typed_columns(table.plan, pa.array(raws, pa.string()), raws,
                         parse_stream(stream).symbol)
    return None if cols is None else [_exact(a.to_pylist()) for a in cols]


def _check(stream: str, messages: Sequence[Message]) -> bool:
    """build_batch equals the per-message reference; True if the fast path was taken."""
    batch = build_batch(stream, messages)
    table = table_for(stream)
    assert batch.schema == table.schema
    got = [_exact(batch.column(f.name).to_pylist()) for f in table.typed_fields]
    assert got == _reference(stream, messages)
    assert batch.column("raw").to_pylist() == [m.raw for m in messages]
    fast = _fast(stream, messages)
    if fast is not None:
        assert fast == got
    return fast is not None


CAPTURES = {**hftbacktest_messages(), **cryptofeed_messages()}


@pytest.mark.parametrize("stream", sorted(CAPTURES))
def test_real_captures_take_the_fast_path_and_match(stream: str) -> None:
    msgs = CAPTURES[stream]
    fast = _check(stream, msgs)
    if table_for(stream).plan is not None and table_for(stream).name != "depth_snapshots":
        assert fast, stream  # (1000-level snapshots are left to the per-message path)
    for m in msgs[:50]:
        m.data  # noqa: B018 - a decoded payload (gap detector) must not change the result
    assert _check(stream, msgs[:50]) == fast


FLAT = [("btcusdt@aggTrade", AGG_TRADE), ("btcusdt@trade", TRADE),
        ("btcusdt@bookTicker", BOOK_TICKER), ("btcusdt@depth@0ms", DEPTH),
        ("btcusdt@markPrice", MARK_PRICE)]


def _msgs(stream: str, raws: Sequence[str]) -> list[Message]:
    return [Message(stream, i, r, 1, i) for i, r in enumerate(raws)]


def test_flat_tables_have_a_plan_and_others_do_not() -> None:
    for stream, _ in FLAT:
        assert table_for(stream).plan is not None
    for stream in ("!markPrice@arr", "btcusdt@kline_1m", "!forceOrder@arr", "userData",
                   "btcusdt@compositeIndex", "!contractInfo", "btcusdt@nope"):
        assert table_for(stream).plan is None


ODD = [
    "not json", "", "   ", "[1]", "7", "null", '{"p":"1"} {"p":"2"}', '{"p":"1"}\n{"p":"2"}',
    '{"E":1,"zz":NaN}', '{"E":1,"zz":-Infinity}', '{"E":1,"zz":' + "[" * 1100 + "]" * 1100 + "}",
    '{"E":1,"E":2}', '{"s":"\\ud800"}', '{"p":"abc","q":"1e400","b":"2"}',
    '{"E":9223372036854775807,"T":-9223372036854775808}', '{"st":4294967296,"u":1.0}',
    '{"a":99999999999999999999}', '{"p":1.5,"m":1}', '{"b":[["1"],null,["2","3","4"]]}',
    '{"b":null,"a":[]}', '{"b":[[null,"1"]],"a":[["x","y"]]}', '{"s":null,"E":null}',
    ' {"E":1} ', '{"e":"aggTrade","E":1,"zz":{"x":[1,{"y":2}]}}', '{"p":" 1.5","q":"-0"}',
    '{"p":"nan","q":"inf","nq":"-0.0"}', '{"p":"1_0"}', '{"u":-0,"s":"\\u0041"}',
    '{"\\u0070":"7","\\u0045":3}', '{"p":"1","\\u0070":"2"}', '{"s":"\\/\\"\\n"}',
    '{"E":1e3,"u":12345678901234567890}', '{"E":1}\r', '{"b":[["1","2"]],"a":[["3","4"]],"b":[]}',
]


@pytest.mark.parametrize(("stream", "good"), FLAT, ids=[s for s, _ in FLAT])
def test_odd_payloads_in_a_batch_match_the_reference(stream: str, good: str) -> None:
    assert _check(stream, _msgs(stream, [good] * 3))
    for odd in ODD:
        _check(stream, _msgs(stream, [good, odd, good]))
        _check(stream, _msgs(stream, [odd]))
    # a two-objects line plus a blank one keeps the row count: must not shift rows
    _check(stream, _msgs(stream, [good, '{"E":5} {"E":6}', " ", good]))


def test_missing_symbol_comes_from_the_stream() -> None:
    # REST GET /fapi/v1/aggTrades rows carry no symbol (BINANCE.md section 6)
    row = ('{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,'
           '"T":1498793709153,"m":true}')
    msgs = _msgs("btcusdt@aggTrade", [row, AGG_TRADE])
    assert _check("btcusdt@aggTrade", msgs)
    assert build_batch("btcusdt@aggTrade", msgs).column("symbol").to_pylist() == ["BTCUSDT"] * 2


def test_out_of_range_values_follow_the_per_value_rules() -> None:
    big = AGG_TRADE.replace('"E":1771263510195', '"E":9223372036854775807').replace(
        '"st":1', '"st":3000000000').replace('"p":"68005.00"', '"p":"abc"')
    msgs = _msgs("btcusdt@aggTrade", [big, AGG_TRADE])
    assert _check("btcusdt@aggTrade", msgs)
    batch = build_batch("btcusdt@aggTrade", msgs)
    assert batch.column("event_time_ns").to_pylist()[0] is None
    assert batch.column("st").to_pylist() == [None, 1]
    assert batch.column("price").to_pylist() == [None, 68005.0]


DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str) | st.floats(
    allow_nan=False, allow_infinity=False).map(repr)


@settings(max_examples=60, deadline=None)
@given(prices=st.lists(DECIMALS, min_size=1, max_size=20))
def test_decimal_strings_convert_like_python_float(prices: list[str]) -> None:
    raws = [json.dumps({"e": "bookTicker", "u": 1, "s": "BTCUSDT", "b": p, "B": p, "a": p,
                        "A": p, "T": 1, "E": 1}) for p in prices]
    msgs = _msgs("btcusdt@bookTicker", raws)
    _check("btcusdt@bookTicker", msgs)
    got = build_batch("btcusdt@bookTicker", msgs).column("bid_price").to_pylist()
    for p, v in zip(prices, got, strict=True):
        try:
            want: float | None = float(p)
        except ValueError:
            want = None
        if v is not None and want is not None:
            assert _exact(v) == _exact(want), p


VALUES = (st.none() | st.booleans() | st.integers(min_value=-(2**65), max_value=2**65)
          | st.floats() | st.text(max_size=6) | st.sampled_from(["1.5", "-0", "1e400", "nan"])
          | st.lists(st.lists(st.text(max_size=3) | st.none(), max_size=3), max_size=3))
KEYS = st.sampled_from(["e", "E", "T", "s", "a", "p", "q", "nq", "f", "l", "m", "t", "X", "st",
                        "ps", "b", "B", "A", "u", "U", "pu", "P", "i", "r", "ap", "zz"])


@settings(max_examples=80, deadline=None)
@given(stream=st.sampled_from([s for s, _ in FLAT]),
       edits=st.lists(st.dictionaries(KEYS, VALUES, max_size=4), min_size=1, max_size=5))
def test_mutated_payloads_match_the_reference(
    stream: str, edits: list[dict[str, Any]]
) -> None:
    good = dict(json.loads(dict(FLAT)[stream]))
    raws = [json.dumps({**good, **edit}, separators=(",", ":")) for edit in edits]
    _check(stream, _msgs(stream, [dict(FLAT)[stream], *raws]))
