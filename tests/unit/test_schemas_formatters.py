"""Formatters: typed rows re-encode to the exact received text, or raw is kept."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import CorruptDataError
from schemas.formatters import (
    drop_derivable_raw,
    raw_fmt,
    raw_is_derivable,
    restore_raw,
    restore_raw_column,
)
from schemas.message import Message, Source
from schemas.tables import RAW_FMT, build_batch, parse_payload
from tests.schemas_support import (
    BOOK_TICKER,
    CASES,
    DEPTH,
    MARK_PRICE,
    MINI_TICKER,
    TICKER,
    cryptofeed_messages,
    hftbacktest_messages,
)

STREAMS = sorted({**hftbacktest_messages(), **cryptofeed_messages()}.items())


def _parquet_round_trip(batch: pa.RecordBatch) -> pa.RecordBatch:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_batches([batch]), buf, compression="zstd")
    return pq.read_table(io.BytesIO(buf.getvalue())).to_batches()[0]


@pytest.mark.parametrize(("stream", "messages"), STREAMS, ids=[s for s, _ in STREAMS])
def test_real_captures_restore_exactly(stream: str, messages: list[Message]) -> None:
    batch = build_batch(stream, messages)
    stripped = _parquet_round_trip(drop_derivable_raw(stream, batch))
    assert stripped.schema == batch.schema
    assert restore_raw_column(stream, stripped).to_pylist() == [m.raw for m in messages]
    typed = [f.name for f in batch.schema][5:-1]
    assert stripped.select(typed).equals(batch.select(typed))
    # These captures are plain Binance output: every row is re-derivable (report in README).
    assert stripped.column("raw").null_count == len(messages)


def test_every_row_check_uses_the_received_text() -> None:
    _, messages = STREAMS[0]
    msg = messages[0]
    row = build_batch(msg.stream, [msg]).to_pylist()[0]
    assert raw_is_derivable(msg.stream, msg.raw, row)
    # The same typed values with other bytes (spacing, key order, extra key) are not derivable.
    spaced = msg.raw.replace(":", ": ")
    reordered = json.dumps(dict(reversed(list(json.loads(msg.raw).items()))),
                           separators=(",", ":"))
    extra = msg.raw[:-1] + ',"zz":1}'
    for text in (spaced, reordered, extra):
        assert not raw_is_derivable(msg.stream, text, row)


CASE_IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("stream", "payload", "expected"), CASES, ids=CASE_IDS)
def test_documented_examples(stream: str, payload: str, expected: dict[str, Any]) -> None:
    row = parse_payload(stream, payload)
    code = raw_fmt(stream, payload, row)
    if stream in ("defiusdt@compositeIndex", "!contractInfo", "adxusd@assetIndex"):
        assert code is None  # no formatter: low-volume tables keep raw
        return
    if stream.endswith("@depthSnapshot"):
        assert code is None  # the example mixes "12.00000000" and "1.5" in one column
        return
    assert code is not None
    assert restore_raw(stream, {**row, "raw": None, RAW_FMT: code}) == payload


def test_rest_agg_trade_rows_and_optional_keys() -> None:
    rest = ('{"a":26129,"p":"0.0163","q":"4.70","nq":"4.70","f":27781,"l":27781,'
            '"T":1498793709153,"m":true}')
    msgs = [Message("btcusdt@aggTrade", 1, rest, source=Source.REST),
            Message("btcusdt@aggTrade", 2, rest.replace(',"nq":"4.70"', ""), source=Source.REST)]
    batch = drop_derivable_raw("btcusdt@aggTrade", build_batch("btcusdt@aggTrade", msgs))
    assert batch.column("raw").null_count == 2
    assert restore_raw_column("btcusdt@aggTrade", batch).to_pylist() == [m.raw for m in msgs]


def test_array_streams_use_one_code_per_item() -> None:
    other = MARK_PRICE.replace("BTCUSDT", "ETHUSDT").replace('"76944.22"', '"3012.5"')
    payloads = [f"[{MARK_PRICE},{other}]", "[]", f"[{MARK_PRICE.replace(':', ': ')}]"]
    msgs = [Message("!markPrice@arr", i, p) for i, p in enumerate(payloads)]
    batch = drop_derivable_raw("!markPrice@arr", build_batch("!markPrice@arr", msgs))
    assert batch.column("raw").to_pylist() == [None, None, payloads[2]]
    codes: list[Any] = batch.column(RAW_FMT).to_pylist()
    assert len(codes[0]) == 2 and codes[0][0] != codes[0][1] and codes[1] == []
    assert codes[2] is None
    assert restore_raw_column("!markPrice@arr", batch).to_pylist() == payloads
    for stream, item in (("!ticker@arr", TICKER), ("!miniTicker@arr", MINI_TICKER)):
        text = f"[{item},{item}]"
        assert raw_is_derivable(stream, text, parse_payload(stream, text))


@pytest.mark.parametrize("text", [
    DEPTH.replace('"2.214"', '"2.21"'),  # still one dp per column: derivable
    DEPTH.replace('[["68005.00","2.214"]]', '[["68005.00","2.214"],["68004.9","1.000"]]'),
    DEPTH.replace('"2.214"', '"2.2140000000000000000000000000000001"'),
    DEPTH.replace('"2.214"', '"2e3"'),
    BOOK_TICKER.replace('"68005.00"', '"68005.000000000000000001"'),
    BOOK_TICKER.replace('"u":9924360161244', '"u":99243601612440000000'),
])
def test_only_exact_renderings_drop_raw(text: str) -> None:
    stream = "btcusdt@depth" if "depthUpdate" in text else "btcusdt@bookTicker"
    batch = drop_derivable_raw(stream, build_batch(stream, [Message(stream, 1, text)]))
    assert restore_raw_column(stream, batch).to_pylist() == [text]
    dropped = batch.column("raw").null_count == 1
    assert dropped == (text == DEPTH.replace('"2.214"', '"2.21"'))


def test_restore_raw_errors() -> None:
    row = parse_payload("btcusdt@bookTicker", BOOK_TICKER)
    with pytest.raises(CorruptDataError):
        restore_raw("btcusdt@bookTicker", {**row, "raw": None, RAW_FMT: None})
    with pytest.raises(CorruptDataError):
        restore_raw("btcusdt@bookTicker", {**row, "raw": None, RAW_FMT: 7 << 60})
    with pytest.raises(CorruptDataError):
        restore_raw("userData", {"raw": None, RAW_FMT: 0})
    assert restore_raw("userData", {"raw": "x", RAW_FMT: None}) == "x"


PRICE = st.builds(lambda n, dp: f"{n / 10**dp:.{dp}f}",
                  st.integers(min_value=0, max_value=10**15), st.integers(0, 12))


@settings(max_examples=150, deadline=None)
@given(p=PRICE, q=PRICE, nq=st.none() | PRICE, st_=st.none() | st.integers(1, 2),
       a=st.integers(0, 2**63 - 1), m=st.booleans())
def test_derivable_rows_always_restore_exactly(
    p: str, q: str, nq: str | None, st_: int | None, a: int, m: bool
) -> None:
    parts = [f'"e":"aggTrade","E":1771263510195,"a":{a},"s":"BTCUSDT","p":"{p}","q":"{q}"']
    if nq is not None:
        parts.append(f'"nq":"{nq}"')
    parts.append(f'"f":1,"l":2,"T":1771263510041,"m":{"true" if m else "false"}')
    if st_ is not None:
        parts.append(f'"st":{st_}')
    text = "{" + ",".join(parts) + "}"
    stream = "btcusdt@aggTrade"
    batch = _parquet_round_trip(drop_derivable_raw(stream, build_batch(stream,
                                                                       [Message(stream, 1, text)])))
    assert restore_raw_column(stream, batch).to_pylist() == [text]
    # float64 holds up to 15 significant digits exactly: such rows must be derivable
    digits = max(len(s.replace(".", "").lstrip("0")) for s in (p, q, nq or "0"))
    if digits <= 15:
        assert batch.column("raw").null_count == 1
