"""Storage settings: every table writes and reads back the same values, raw restores exactly."""

from __future__ import annotations

import io
import struct
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from schemas.formatters import MAX_CODES, restore_raw_column
from schemas.message import Message
from schemas.storage import (
    LIVE_MAX_REFERENCE_ROWS,
    drops_raw_live,
    parquet_options,
    prepare_for_storage,
    row_group_rows,
    storage_plan,
)
from schemas.tables import RAW_FMT, TABLES, Table, build_batch, parse_payload, table_for
from tests.schemas_support import CASES, cryptofeed_messages, hftbacktest_messages

REAL = {**hftbacktest_messages(), **cryptofeed_messages()}
ARRAY_STREAMS = {"mark_prices": "!markPrice@arr", "tickers": "!ticker@arr",
                 "mini_tickers": "!miniTicker@arr", "asset_index": "!assetIndex@arr"}


def _case_batch(table: Table) -> tuple[str | None, pa.RecordBatch]:
    """A few rows of ``table`` from the BINANCE.md examples: ``(stream or None, batch)``.

    Array variants wrap each example in a two-item array; where no stream maps to the array
    table the rows are built directly (raw kept, no stream to re-encode with).
    """
    if table.name == "unknown":
        msgs = [Message("listenkeyabc", 10 + i, f'{{"x":{i}}}', 0, i) for i in range(3)]
        if table.is_array:  # no stream maps here; the rows are written as they are
            return None, pa.RecordBatch.from_pylist(
                [{n: v for n, v in r.items() if n != RAW_FMT}
                 for r in build_batch("listenkeyabc", msgs).to_pylist()], schema=table.schema)
        return "listenkeyabc", build_batch("listenkeyabc", msgs)
    if table.name == "user_events":
        rows: list[dict[str, Any]] = [
            {"recv_ns": 5 + i, "conn_id": 1, "seq": i, "source": "ws", "raw": f'{{"e":{i}}}',
             "event_type": "ORDER_TRADE_UPDATE", "price": 1.1 * i,
             "balance_wallet": [0.1, -0.0] if i else None, "leverage": 20,
             "order_id": (2**63 - 1, -(2**63), None)[i]}  # DELTA_BINARY_PACKED wraps
            for i in range(3)]
        if table.is_array:
            rows = [{k: ([v] if k in {f.name for f in table.typed_fields} else v)
                     for k, v in r.items()} for r in rows]
        return None, pa.RecordBatch.from_pylist(rows, schema=table.schema)
    stream, text, _ = next(c for c in CASES if table_for(c[0]).name == table.name)
    if not table.is_array:
        msgs = [Message(stream, 1_000 + i, text, 1, i) for i in range(3)]
        return stream, build_batch(stream, msgs)
    array_text = f"[{text},{text}]"
    if table.name in ARRAY_STREAMS:
        arr = ARRAY_STREAMS[table.name]
        msgs = [Message(arr, 1_000 + i, array_text, 1, i) for i in range(3)]
        return arr, build_batch(arr, msgs)
    values = parse_payload(stream, text)
    rows = [{"recv_ns": 1_000 + i, "conn_id": 1, "seq": i, "source": "ws", "raw": array_text,
             **{k: [v, v] for k, v in values.items()}} for i in range(3)]
    return None, pa.RecordBatch.from_pylist(rows, schema=table.schema)


def _fixture(table: Table) -> tuple[str | None, pa.RecordBatch]:
    """Real capture rows where the table has some, else the documented examples."""
    for stream, msgs in sorted(REAL.items()):
        if table_for(stream) is table:
            return stream, build_batch(stream, msgs)
    return _case_batch(table)


def _write(batch: pa.RecordBatch, table: Table, *, compacted: bool) -> bytes:
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, table.schema, **parquet_options(table, compacted=compacted)) as w:
        w.write_batch(batch, row_group_size=row_group_rows(table, compacted=compacted))
    return buf.getvalue()


def _read(data: bytes) -> pa.RecordBatch:
    return pq.read_table(io.BytesIO(data)).combine_chunks().to_batches()[0]


def _float_bits(column: pa.Array[Any]) -> list[int | None]:
    """The IEEE-754 bit patterns of a (possibly nested list) float64 column."""
    while pa.types.is_list(column.type):
        column = pc.list_flatten(column)
    return column.view(pa.int64()).to_pylist()


def _assert_same_values(got: pa.RecordBatch, want: pa.RecordBatch) -> None:
    assert got.schema.equals(want.schema)
    for name in want.schema.names:
        assert got.column(name).equals(want.column(name)), name
        leaf = want.schema.field(name).type
        while pa.types.is_list(leaf):
            leaf = leaf.value_type
        if pa.types.is_float64(leaf):
            assert _float_bits(got.column(name)) == _float_bits(want.column(name)), name


TABLE_KEYS = sorted(TABLES)


@pytest.mark.parametrize("compacted", [False, True], ids=["live", "compacted"])
@pytest.mark.parametrize("key", TABLE_KEYS, ids=[f"{n}{'[]' if a else ''}" for n, a in TABLE_KEYS])
def test_every_table_round_trips(key: tuple[str, bool], compacted: bool) -> None:
    table = TABLES[key]
    stream, batch = _fixture(table)
    stored = prepare_for_storage(stream, batch, compacted=compacted) if stream else batch
    back = _read(_write(stored, table, compacted=compacted))
    _assert_same_values(back, stored)
    if stream is not None:
        assert restore_raw_column(stream, back).equals(batch.column("raw"))


@pytest.mark.parametrize("stream", sorted(REAL))
def test_real_captures_drop_raw_live_and_compacted(stream: str) -> None:
    batch = build_batch(stream, REAL[stream])
    table = table_for(stream)
    live = prepare_for_storage(stream, batch, compacted=False)
    compact = prepare_for_storage(stream, batch, compacted=True)
    if table.name == "unknown":
        assert not drops_raw_live(table)
        assert live.equals(batch)
        assert compact.column("raw").null_count == 0
    else:  # plain Binance output: every row re-derives (tests/data/README.md)
        assert drops_raw_live(table)
        assert compact.column("raw").null_count == batch.num_rows
        assert compact.column(RAW_FMT).null_count == 0
        assert live.equals(compact)
    again = prepare_for_storage(stream, compact, compacted=True)
    assert again.equals(compact)
    kept = prepare_for_storage(stream, batch, compacted=False, drop_raw=False)
    assert kept.equals(batch)


def test_array_streams_drop_raw_live_too() -> None:
    from tests.schemas_support import MARK_PRICE

    stream = "!markPrice@arr"
    other = MARK_PRICE.replace("BTCUSDT", "ETHUSDT").replace('"76944.22"', '"3012.5"')
    texts = [f"[{MARK_PRICE},{other}]", "[]", f"[{other}]", f"[{other.replace(':', ': ')}]"] * 8
    batch = build_batch(stream, [Message(stream, i, t, 1, i) for i, t in enumerate(texts)])
    assert drops_raw_live(table_for(stream))
    for compacted in (False, True):
        stored = prepare_for_storage(stream, batch, compacted=compacted)
        assert stored.column("raw").to_pylist() == [None, None, None, texts[3]] * 8
        assert restore_raw_column(stream, stored).to_pylist() == texts


def test_live_bounds_the_rows_checked_one_by_one() -> None:
    # Every row a different precision: the column-wise pass proves MAX_CODES codes, then the
    # live writer keeps raw for the rest instead of re-encoding hundreds of rows in Python.
    from tests.schemas_support import BOOK_TICKER

    stream = "btcusdt@bookTicker"
    n = LIVE_MAX_REFERENCE_ROWS + MAX_CODES + 40
    texts = [BOOK_TICKER.replace('"68005.00"', f'"68005.{"0" * (1 + i % 20)}"').replace(
        '"2.394"', f'"2.{"3" * (1 + i // 20)}"') for i in range(n)]
    batch = build_batch(stream, [Message(stream, i, t, 1, i) for i, t in enumerate(texts)])
    live = prepare_for_storage(stream, batch, compacted=False)
    compact = prepare_for_storage(stream, batch, compacted=True)
    assert compact.column("raw").null_count == n
    assert 0 < live.column("raw").null_count < n
    for stored in (live, compact):
        assert restore_raw_column(stream, stored).to_pylist() == texts


def _chunk_encodings(data: bytes) -> dict[str, set[str]]:
    md = pq.ParquetFile(io.BytesIO(data)).metadata
    out: dict[str, set[str]] = {}
    for rg in range(md.num_row_groups):
        for c in range(md.num_columns):
            chunk = md.row_group(rg).column(c)
            out.setdefault(chunk.path_in_schema, set()).update(chunk.encodings)
    return out


def test_encodings_reach_the_file() -> None:
    stream = "btcusdt@depth@0ms"
    table = table_for(stream)
    batch = build_batch(stream, REAL[stream])
    live = _chunk_encodings(_write(batch, table, compacted=False))
    options = parquet_options(table, compacted=False)
    for path, encoding in options["column_encoding"].items():
        assert encoding in live[path], path
    for path in options["use_dictionary"]:
        assert "RLE_DICTIONARY" in live[path], path
    assert "DELTA_BINARY_PACKED" in live["recv_ns"]
    assert "RLE_DICTIONARY" in live["bid_prices.list.element"]
    assert "DELTA_LENGTH_BYTE_ARRAY" in live["raw"]


def test_duckdb_reads_the_same_values(tmp_path: Any) -> None:
    stream = "btcusdt@depth@0ms"
    options, rows = storage_plan(stream, compacted=True)
    table = table_for(stream)
    batch = prepare_for_storage(stream, build_batch(stream, REAL[stream]), compacted=True)
    path = tmp_path / "p.parquet"
    with pq.ParquetWriter(path, table.schema, **options) as w:
        w.write_batch(batch, row_group_size=rows)
    with duckdb.connect() as con:
        got = con.execute("SELECT recv_ns, seq, final_update_id, bid_prices, ask_qtys, raw_fmt "
                          f"FROM read_parquet('{path}') ORDER BY seq").fetchall()
    names = ["recv_ns", "seq", "final_update_id", "bid_prices", "ask_qtys", RAW_FMT]
    want = list(zip(*(batch.column(n).to_pylist() for n in names), strict=True))
    assert len(got) == len(want)
    for got_row, want_row in zip(got, want, strict=True):
        assert _bits(got_row) == _bits(want_row)


def _bits(row: tuple[Any, ...]) -> list[Any]:
    """Floats (also inside lists) as their 8 IEEE-754 bytes, so -0.0 != 0.0 and NaN == NaN."""
    return [[struct.pack("<d", x) for x in v] if isinstance(v, list) else v for v in row]


def test_settings_beat_pyarrow_defaults_on_a_real_capture() -> None:
    stream = "btcusdt@bookTicker"
    table = table_for(stream)
    batch = prepare_for_storage(stream, build_batch(stream, REAL[stream]), compacted=True)
    default = io.BytesIO()
    pq.write_table(pa.Table.from_batches([batch]), default, compression="zstd")
    ours = _write(batch, table, compacted=True)
    assert len(ours) < len(default.getvalue())
    live = _write(batch, table, compacted=False)
    assert len(ours) <= len(live)


def test_list_tables_get_smaller_row_groups() -> None:
    depth, book = table_for("btcusdt@depth@0ms"), table_for("btcusdt@bookTicker")
    for compacted in (False, True):
        assert row_group_rows(depth, compacted=compacted) < row_group_rows(book,
                                                                           compacted=compacted)
    assert row_group_rows(book, compacted=False) <= row_group_rows(book, compacted=True)
    assert parquet_options(book, compacted=True)["compression_level"] > parquet_options(
        book, compacted=False)["compression_level"]
