"""The column-wise raw re-derivation agrees with the per-row reference on every row.

``schemas._render`` renders a batch with Arrow kernels and vouches only for values whose text
is proven equal to the reference (``format(v, ".{dp}f")``, ``orjson.dumps``); everything else
must be flagged ``unsure``. A wrong drop loses data, so these tests compare the fast path with
``schemas._reference`` on real captures, on generated rows of every formatted table, and on
tampered stored rows (codes and values that no writer produced).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas import _render
from schemas._columns import BOOL, F64, I32, I64, NS, NS_PER_MS, STR, Col
from schemas._columnwise import drop_columnwise as _drop_columnwise
from schemas._columnwise import restore_columnwise as _restore_columnwise
from schemas._reference import (
    MAX_DP,
    drop_rows,
    formatter_for,
    pack,
    restore_code,
    restore_rows,
)
from schemas._render import fixed
from schemas.errors import CorruptDataError
from schemas.message import Message, Source
from schemas.tables import RAW_FMT, TABLES, Table, build_batch, table_for
from tests.schemas_support import cryptofeed_messages, hftbacktest_messages

REAL = sorted({**hftbacktest_messages(), **cryptofeed_messages()}.items())
ONE_STREAM_PER_TABLE = ["btcusdt@aggTrade", "btcusdt@trade", "btcusdt@markPrice",
                        "btcusdt@kline_1m", "btcusdt_perpetual@continuousKline_1m",
                        "btcusdt@miniTicker", "btcusdt@ticker", "btcusdt@bookTicker",
                        "btcusdt@forceOrder", "btcusdt@depth", "btcusdt@depthSnapshot"]


@contextlib.contextmanager
def _small_batches_take_every_path() -> Iterator[None]:
    """Let a few rows reach the per-distinct-value and constant-column paths of _render."""
    saved = _render._DICTIONARY_MIN_ROWS
    _render._DICTIONARY_MIN_ROWS = 1
    try:
        yield
    finally:
        _render._DICTIONARY_MIN_ROWS = saved


def _assert_same_drop(stream: str, batch: pa.RecordBatch) -> pa.RecordBatch:
    """Fast and reference drops give the same raw and codes; both restore the received text."""
    fast = _check_drop(stream, batch)
    with _small_batches_take_every_path():
        again = _check_drop(stream, batch)
    for name in ("raw", RAW_FMT):
        assert again.column(name).equals(fast.column(name))
    return fast


def _check_drop(stream: str, batch: pa.RecordBatch) -> pa.RecordBatch:
    table = table_for(stream)
    fmt = formatter_for(table)
    assert fmt is not None
    fast = _drop_columnwise(table, fmt, batch, None)
    ref = drop_rows(table, fmt, batch)
    assert fast.column("raw").to_pylist() == ref.column("raw").to_pylist()
    assert fast.column(RAW_FMT).to_pylist() == ref.column(RAW_FMT).to_pylist()
    texts = batch.column("raw").to_pylist()
    assert _restore_columnwise(table, fmt, fast).to_pylist() == texts
    assert restore_rows(table, fmt, fast).to_pylist() == texts
    bounded = _drop_columnwise(table, fmt, batch, 0)  # no row re-encoded one by one
    dropped = [r is None for r in bounded.column("raw").to_pylist()]
    assert all(r is None for r, d in zip(ref.column("raw").to_pylist(), dropped,
                                         strict=True) if d)
    assert _restore_columnwise(table, fmt, bounded).to_pylist() == texts
    if batch.num_rows > 2:  # readers restore windows sliced out of a row group
        window = fast.slice(1, batch.num_rows - 2)
        assert _restore_columnwise(table, fmt, window).to_pylist() == texts[1:-1]
        part = _drop_columnwise(table, fmt, batch.slice(1, batch.num_rows - 2), None)
        want = ref.slice(1, batch.num_rows - 2)
        for name in ("raw", RAW_FMT):  # (typed columns may hold NaN, which equals nothing)
            assert part.column(name).equals(want.column(name))
    return fast


@pytest.mark.parametrize(("stream", "messages"), REAL, ids=[s for s, _ in REAL])
def test_real_captures_agree_with_the_reference(stream: str, messages: list[Message]) -> None:
    fast = _assert_same_drop(stream, build_batch(stream, messages))
    assert fast.column("raw").null_count == len(messages)  # plain Binance output


# ---- decimals and strings -------------------------------------------------------------------

DECIMALS = st.builds(lambda n, dp: n / 10**dp, st.integers(-(10**15), 10**15), st.integers(0, 12))
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 5e-324, 1e15, 1e16, 0.5, 2.5, -0.005, 0.125, 1e22, 9007199254740993.0])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(DECIMALS | ANY_FLOAT | st.none(), min_size=1, max_size=20),
       dp=st.integers(0, MAX_DP), repeat=st.sampled_from([1, 8]))
def test_fixed_is_the_reference_or_unsure(values: list[float | None], dp: int,
                                          repeat: int) -> None:
    values = values * repeat  # repeated values take the per-distinct-value path
    text, unsure = fixed(pa.array(values, pa.float64()), dp)
    flags = unsure.to_pylist() if unsure is not None else [False] * len(values)
    for v, t, u in zip(values, text.to_pylist(), flags, strict=True):
        if v is None:
            assert t is None and not u
        elif u:
            assert t is None
        else:
            assert t == format(v, f".{dp}f")


@settings(max_examples=100, deadline=None)
@given(n=st.integers(-(10**14), 10**14), dp=st.integers(0, 15))
def test_fixed_vouches_for_binance_decimals(n: int, dp: int) -> None:
    # A decimal string with up to 15 significant digits (every Binance price and quantity)
    # is never left to the slow path.
    s = f"{'-' if n < 0 else ''}{abs(n) // 10**dp}" + (f".{abs(n) % 10**dp:0{dp}d}" if dp else "")
    text, unsure = fixed(pa.array([float(s)]), dp)
    assert unsure is None and text.to_pylist() == [s]


@settings(max_examples=100, deadline=None)
@given(symbol=st.text(max_size=6))
def test_strings_are_orjson_or_kept(symbol: str) -> None:
    from tests.schemas_support import BOOK_TICKER

    text = BOOK_TICKER.replace('"BTCUSDT"', orjson.dumps(symbol).decode())
    stream = "btcusdt@bookTicker"
    _assert_same_drop(stream, build_batch(stream, [Message(stream, i, text, 1, i)
                                                   for i in range(3)]))


# ---- generated rows of every formatted table ------------------------------------------------

def _value(draw: Any, col: Col, dps_floats: Any) -> Any:
    if col.item is not None:
        return None  # level lists are drawn per row (both sides one length)
    if col.kind == F64:
        return draw(dps_floats)
    if col.kind == NS:
        return draw(st.integers(0, 2**41)) * NS_PER_MS + draw(st.sampled_from([0] * 9 + [1]))
    if col.kind == I64:
        return draw(st.integers(-(2**63), 2**63 - 1))
    if col.kind == I32:
        return draw(st.none() | st.integers(-(2**31), 2**31 - 1))
    if col.kind == BOOL:
        return draw(st.booleans())
    assert col.kind == STR
    return draw(st.none() | st.sampled_from(["BTCUSDT", "ETHUSDT", "MARKET"]) | st.text(max_size=4))


@st.composite
def _rows(draw: Any, table: Table) -> list[str]:
    """Payload texts rendered by the reference from random typed values and codes, some
    mutated so that they no longer re-derive (or re-derive with another code)."""
    fmt = formatter_for(table)
    assert fmt is not None
    n_slots = len(fmt.slot_paths)
    codes = draw(st.lists(st.builds(pack, st.integers(0, len(fmt.variants) - 1),
                                    st.lists(st.integers(0, 10), min_size=n_slots,
                                             max_size=n_slots)), min_size=1, max_size=3))
    floats = DECIMALS | ANY_FLOAT | st.none()
    texts: list[str] = []
    for _ in range(draw(st.integers(1, 24))):
        row = {c.name: _value(draw, c, floats) for c in table.columns}
        for side in ("bid", "ask"):
            if f"{side}_prices" in row:
                k = draw(st.integers(0, 4))
                row[f"{side}_prices"] = draw(st.lists(DECIMALS | ANY_FLOAT, min_size=k,
                                                      max_size=k))
                row[f"{side}_qtys"] = draw(st.lists(DECIMALS | st.just(0.0), min_size=k,
                                                    max_size=k))
        text = restore_code(table, fmt, draw(st.sampled_from(codes)), row)
        if text is None:
            continue
        mutation = draw(st.sampled_from(["none"] * 6 + ["dp", "space", "key"]))
        if mutation == "dp":
            text = re.sub(r'(\.[0-9]+)"', r'\g<1>0"', text, count=1)
        elif mutation == "space":
            text = text.replace(":", ": ", 1)
        elif mutation == "key":
            text = text[:-1] + ',"zz":1}'
        texts.append(text)
    assume(texts)
    return texts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.sampled_from(ONE_STREAM_PER_TABLE), data=st.data())
def test_generated_rows_agree_with_the_reference(stream: str, data: Any) -> None:
    texts = data.draw(_rows(table_for(stream)))
    source = Source.REST if stream.endswith("@depthSnapshot") else Source.WS
    msgs = [Message(stream, i, t, 1, i, source) for i, t in enumerate(texts)]
    _assert_same_drop(stream, build_batch(stream, msgs))


# ---- stored rows nobody wrote: restore must still equal the reference -----------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.sampled_from(["btcusdt@depth", "btcusdt@bookTicker", "btcusdt@aggTrade"]),
       data=st.data())
def test_tampered_rows_restore_as_the_reference_does(stream: str, data: Any) -> None:
    table = table_for(stream)
    fmt = formatter_for(table)
    assert fmt is not None
    texts = data.draw(_rows(table))
    batch = build_batch(stream, [Message(stream, i, t, 1, i) for i, t in enumerate(texts)])
    rows = _drop_columnwise(table, fmt, batch, None).to_pylist()
    floats = [c.name for c in table.columns if c.kind == F64]
    for row in rows:
        if data.draw(st.booleans()):
            row[RAW_FMT] = data.draw(st.integers(0, 2**63 - 1))
        name = data.draw(st.sampled_from(floats))
        if isinstance(row[name], list):
            row[name] = [data.draw(ANY_FLOAT) for _ in row[name]]
        else:
            row[name] = data.draw(ANY_FLOAT | st.none())
    tampered = pa.RecordBatch.from_pylist(rows, schema=table.schema)
    try:
        want: Any = restore_rows(table, fmt, tampered).to_pylist()
    except CorruptDataError:
        want = CorruptDataError
    for every_path in (False, True):
        with _small_batches_take_every_path() if every_path else contextlib.nullcontext():
            try:
                got: Any = _restore_columnwise(table, fmt, tampered).to_pylist()
            except CorruptDataError:
                got = CorruptDataError
        assert got == want


# ---- array streams (one code per item) ------------------------------------------------------

ARRAY_STREAMS = ["!markPrice@arr", "!ticker@arr", "!miniTicker@arr"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.sampled_from(ARRAY_STREAMS), data=st.data())
def test_array_rows_restore_as_the_reference_does(stream: str, data: Any) -> None:
    table = table_for(stream)
    fmt = formatter_for(table)
    assert fmt is not None
    items = data.draw(_rows(TABLES[(table.name, False)]))
    texts: list[str] = []
    while items:
        if data.draw(st.booleans()):
            texts.append("[]")
        k = data.draw(st.integers(2, 4))  # several items: the join between them is tested
        texts.append("[" + ",".join(items[:k]) + "]")
        items = items[k:]
    batch = build_batch(stream, [Message(stream, i, t, 1, i) for i, t in enumerate(texts)])
    dropped = drop_rows(table, fmt, batch)
    for bound in (None, 0):
        fast = _drop_columnwise(table, fmt, batch, bound)
        if bound is None:
            assert fast.column("raw").to_pylist() == dropped.column("raw").to_pylist()
            assert fast.column(RAW_FMT).to_pylist() == dropped.column(RAW_FMT).to_pylist()
        assert _restore_columnwise(table, fmt, fast).to_pylist() == texts
    with _small_batches_take_every_path():
        assert _restore_columnwise(table, fmt, dropped).to_pylist() == texts
    assert _restore_columnwise(table, fmt, dropped).to_pylist() == texts
    rows = dropped.to_pylist()
    for row in rows:  # codes and values nobody wrote
        if row[RAW_FMT] is not None and data.draw(st.booleans()):
            row[RAW_FMT] = data.draw(st.lists(st.integers(0, 2**63 - 1), max_size=3))
    tampered = pa.RecordBatch.from_pylist(rows, schema=table.schema)
    try:
        want: Any = restore_rows(table, fmt, tampered).to_pylist()
    except CorruptDataError:
        want = CorruptDataError
    try:
        got: Any = _restore_columnwise(table, fmt, tampered).to_pylist()
    except CorruptDataError:
        got = CorruptDataError
    assert got == want


def test_array_item_codes_forget_places_of_absent_keys() -> None:
    # The code learnt for BTCUSDT from a row with "ap" also renders its items without "ap";
    # the reference then stores 0 places for that slot, and so must the fast path.
    from tests.schemas_support import MARK_PRICE

    stream = "!markPrice@arr"
    table = table_for(stream)
    fmt = formatter_for(table)
    assert fmt is not None
    plain = MARK_PRICE.replace(',"ap":"76944.22"', "")
    texts = [f"[{MARK_PRICE}]", f"[{plain},{MARK_PRICE}]", "[]"] * 10
    batch = build_batch(stream, [Message(stream, i, t, 1, i) for i, t in enumerate(texts)])
    ref = drop_rows(table, fmt, batch)
    fast = _drop_columnwise(table, fmt, batch, None)
    assert ref.column("raw").null_count == len(texts)
    assert fast.column(RAW_FMT).to_pylist() == ref.column(RAW_FMT).to_pylist()


# ---- level lists and whole-batch constants --------------------------------------------------

def _depth_text(i: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> str:
    def side(levels: list[tuple[str, str]]) -> str:
        return "[" + ",".join(f'["{p}","{q}"]' for p, q in levels) + "]"

    return (f'{{"e":"depthUpdate","E":{1771263510140 + i},"T":1771263510139,"s":"BTCUSDT",'
            f'"U":{9924360134447 + i},"u":{9924360146998 + i},"pu":9924360134267,'
            f'"b":{side(bids)},"a":{side(asks)}}}')


def test_level_lists_restore_as_the_reference_does() -> None:
    # Row texts of level lists are cut from the data buffer of the level strings (no join):
    # rows with many, one or no levels, and stored rows nobody wrote (a null list, lists of
    # different lengths, a null level, a value no decimal string gives) restore exactly as the
    # reference does, in whole batches and in windows sliced out of them. 80 rows: T and pu
    # are constant (rendered once), E and U vary.
    stream = "btcusdt@depth@100ms"
    table = table_for(stream)
    fmt = formatter_for(table)
    assert fmt is not None
    texts = [_depth_text(i, [(f"{68000 + i % 7}.{i % 10}0", f"{i % 5}.{i:03d}")] * (i % 4),
                         [("68010.00", "0.000")] * (i % 2)) for i in range(80)]
    batch = build_batch(stream, [Message(stream, i, t, 1, i) for i, t in enumerate(texts)])
    dropped = drop_rows(table, fmt, batch)
    assert dropped.column("raw").null_count == len(texts)
    assert _restore_columnwise(table, fmt, dropped).to_pylist() == texts
    assert _restore_columnwise(table, fmt, dropped.slice(3, 50)).to_pylist() == texts[3:53]
    rows = dropped.to_pylist()
    rows[1]["bid_prices"] = None
    rows[2]["bid_qtys"] = [*rows[2]["bid_qtys"], 1.0]
    rows[3]["ask_prices"] = [None]
    rows[5]["bid_prices"] = [0.1 + 0.2] * len(rows[5]["bid_prices"])
    rows[6]["transaction_time_ns"] = None
    tampered = pa.RecordBatch.from_pylist(rows, schema=table.schema)
    for window in (tampered, tampered.slice(1, 40), tampered.slice(7, 60)):
        try:
            want: Any = restore_rows(table, fmt, window).to_pylist()
        except CorruptDataError:
            want = CorruptDataError
        try:
            got: Any = _restore_columnwise(table, fmt, window).to_pylist()
        except CorruptDataError:
            got = CorruptDataError
        assert got == want
    fixed_rows = [dict(r) for r in rows]
    for r, original in zip(fixed_rows, dropped.to_pylist(), strict=True):
        r.update({k: original[k] for k in ("bid_prices", "bid_qtys", "ask_prices",
                                           "transaction_time_ns")})
    fixed_rows[5]["bid_prices"] = [0.1 + 0.2] * len(fixed_rows[5]["bid_prices"])
    repaired = pa.RecordBatch.from_pylist(fixed_rows, schema=table.schema)
    assert _restore_columnwise(table, fmt, repaired).to_pylist() == \
        restore_rows(table, fmt, repaired).to_pylist()


def test_constant_columns_restore_as_the_reference_does() -> None:
    # Whole-batch constants (the next funding time of markPrice, st) become one literal; a
    # constant time that is not a whole ms has no text, as in the reference.
    from tests.schemas_support import MARK_PRICE

    stream = "btcusdt@markPrice@1s"
    table = table_for(stream)
    fmt = formatter_for(table)
    assert fmt is not None
    texts = [MARK_PRICE.replace('"E":1789478388001', f'"E":{1789478388001 + i}')
             for i in range(70)]
    batch = build_batch(stream, [Message(stream, i, t, 1, i) for i, t in enumerate(texts)])
    dropped = drop_rows(table, fmt, batch)
    assert dropped.column("raw").null_count == len(texts)
    assert _restore_columnwise(table, fmt, dropped).to_pylist() == texts
    ns = [c.name for c in table.columns if c.kind == NS and c.name != "event_time_ns"]
    assert ns
    rows = dropped.to_pylist()
    for r in rows:
        r[ns[0]] += 1  # the same constant, now not a whole number of ms
    tampered = pa.RecordBatch.from_pylist(rows, schema=table.schema)
    with pytest.raises(CorruptDataError):
        restore_rows(table, fmt, tampered)
    with pytest.raises(CorruptDataError):
        _restore_columnwise(table, fmt, tampered)
