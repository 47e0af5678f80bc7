"""DuckDB catalog views over archives written in the recorder's layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import orjson
import pytest

from replay._catalog import connect, time_column, view_names
from replay._compact import compact
from schemas.errors import ArchiveError
from schemas.message import Gap, GapKind
from tests.tools_support import (
    T0,
    agg_trades,
    book_tickers,
    mark_price_arr,
    quarter_hours,
    snapshot,
    write_gaps,
    write_partition,
)

SEC = 1_000_000_000


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "arc"
    quarter_hours(root, agg_trades("btcusdt", T0, 1800, SEC), "btcusdt@aggTrade")
    write_partition(root, "ethusdt@aggTrade", agg_trades("ethusdt", T0, 50, SEC, price=3000.0))
    write_partition(root, "!markPrice@arr@1s", mark_price_arr(T0, 10))
    write_partition(root, "btcusdt@depthSnapshot", [snapshot("btcusdt", T0 + 5)])
    write_gaps(root, [Gap("btcusdt@aggTrade", T0 + 10, T0 + 2 * SEC, GapKind.DISCONNECT)])
    return root


def test_views_open_on_an_archive_with_only_some_tables(archive: Path) -> None:
    con = connect(archive)
    names = view_names(con)
    for v in ("agg_trades", "trades", "mark_prices", "klines", "book_tickers", "depth_updates",
              "depth_snapshots", "liquidations", "tickers", "mini_tickers", "user_events",
              "messages", "gaps"):
        assert v in names
    assert con.execute("SELECT count(*) FROM klines").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM book_tickers WHERE symbol = 'X'").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM agg_trades").fetchone() == (1850,)


def test_empty_archive_still_opens(tmp_path: Path) -> None:
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM gaps").fetchone() == (0,)
    cols = [r[0] for r in con.execute("DESCRIBE agg_trades").fetchall()]
    assert {"stream", "symbol", "recv_ns", "recv_time", "event_time", "price", "date"} <= set(cols)


def test_columns_times_and_values_match_the_payloads(archive: Path) -> None:
    con = connect(archive)
    msgs = agg_trades("btcusdt", T0, 1800, SEC)
    rows = con.execute(
        "SELECT recv_ns, epoch_ns(recv_time), event_time_ns, epoch_ns(event_time), price, "
        "agg_trade_id, symbol, typeof(recv_time), raw FROM agg_trades "
        "WHERE stream = 'btcusdt@aggTrade' ORDER BY recv_ns").fetchall()
    assert len(rows) == len(msgs)
    for m, r in zip(msgs, rows, strict=True):
        d = orjson.loads(m.raw)
        assert r[0] == m.recv_ns and r[1] == m.recv_ns // 1000 * 1000
        assert r[2] == d["E"] * 1_000_000 and r[3] == r[2]
        assert r[4] == float(d["p"]) and r[5] == d["a"] and r[6] == "BTCUSDT"
        assert r[7] == "TIMESTAMP" and r[8] == m.raw


def test_array_stream_is_one_row_per_symbol(archive: Path) -> None:
    con = connect(archive)
    msgs = mark_price_arr(T0, 10)
    rows = con.execute("SELECT recv_ns, symbol, mark_price FROM mark_prices "
                       "ORDER BY recv_ns, symbol").fetchall()
    expected = sorted((m.recv_ns, item["s"], float(item["p"]))
                      for m in msgs for item in orjson.loads(m.raw))
    assert rows == expected
    assert con.execute("SELECT count(*) FROM messages WHERE stream = '!markPrice@arr@1s'"
                       ).fetchone() == (10,)


def test_messages_and_gaps_views(archive: Path) -> None:
    con = connect(archive)
    counts = dict(con.execute("SELECT stream, count(*) FROM messages GROUP BY 1").fetchall())
    assert counts == {"btcusdt@aggTrade": 1800, "ethusdt@aggTrade": 50,
                      "!markPrice@arr@1s": 10, "btcusdt@depthSnapshot": 1}
    gap = con.execute("SELECT stream, kind, duration_s, epoch_ns(start_time), recovered "
                      "FROM gaps").fetchall()
    assert gap == [("btcusdt@aggTrade", "disconnect", (2 * SEC - 10) / 1e9, T0, False)]
    snap = con.execute("SELECT symbol, source, last_update_id FROM depth_snapshots").fetchall()
    assert snap == [("BTCUSDT", "rest", 500)]


def test_partition_pruning_skips_other_streams_and_days(archive: Path) -> None:
    # A garbage file in another stream's and another day's directory: only a query that
    # prunes by stream / date can succeed.
    bad_stream = next((archive / "streams" / "stream=ethusdt@aggTrade").rglob("*.parquet"))
    bad_stream.write_bytes(b"not parquet")
    day2 = archive / "streams" / "stream=btcusdt@aggTrade" / "date=2024-08-10"
    day2.mkdir()
    (day2 / "1723248000000000000-1723248001000000000.parquet").write_bytes(b"garbage")
    con = connect(archive)
    assert con.execute("SELECT count(*) FROM agg_trades WHERE stream = 'btcusdt@aggTrade' "
                       "AND date = DATE '2024-08-09'").fetchone() == (1800,)
    with pytest.raises(duckdb.Error):
        con.execute("SELECT count(*) FROM agg_trades").fetchone()


def test_superseded_leftovers_are_not_counted(archive: Path, tmp_path: Path) -> None:
    # As if compact was killed after publishing the merged file, before deleting its inputs.
    day = archive / "streams" / "stream=btcusdt@aggTrade" / "date=2024-08-09"
    saved = tmp_path / "saved"
    shutil.copytree(day, saved)
    report = compact(archive, now_ns=T0 + 2 * 86_400 * SEC, streams=["btcusdt@aggTrade"])
    assert [m.inputs for m in report.merges] == [2]
    for p in saved.iterdir():
        shutil.copy2(p, day / p.name)
    assert len(list(day.iterdir())) == 3
    con = connect(archive)
    assert con.execute("SELECT count(*), count(DISTINCT recv_ns) FROM agg_trades "
                       "WHERE stream = 'btcusdt@aggTrade'").fetchone() == (1800, 1800)
    assert con.execute("SELECT count(*) FROM messages WHERE stream = 'btcusdt@aggTrade'"
                       ).fetchone() == (1800,)


def test_a_nested_file_not_listed_by_its_cover_stays_visible(archive: Path) -> None:
    # Another recorder's partition inside this one's range is data, not a leftover.
    write_partition(archive, "btcusdt@aggTrade",
                    agg_trades("btcusdt", T0 + 100 * SEC + 1, 5, SEC, first_id=9000))
    con = connect(archive)
    assert con.execute("SELECT count(*) FROM agg_trades WHERE stream = 'btcusdt@aggTrade'"
                       ).fetchone() == (1805,)


def test_read_only_connection_is_sandboxed(archive: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    con = connect(archive)
    with pytest.raises(duckdb.Error):
        con.execute(f"SELECT * FROM read_csv('{outside}')").fetchall()
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")
    free = connect(archive, read_only=False)
    assert free.execute(f"SELECT * FROM read_csv('{outside}')").fetchall() == [(1,)]


def test_book_tickers_and_bad_archive(tmp_path: Path) -> None:
    write_partition(tmp_path, "btcusdt@bookTicker", book_tickers("btcusdt", T0, 20, SEC))
    con = connect(tmp_path)
    assert con.execute("SELECT count(*), min(bid_price), max(update_id) FROM book_tickers"
                       ).fetchone() == (20, 60000.1, 1019)
    with pytest.raises(ArchiveError):
        connect(tmp_path / "missing")


def test_time_column_names() -> None:
    assert time_column("recv_ns") == "recv_time"
    assert time_column("event_time_ns") == "event_time"
    assert time_column("start_ns") == "start_time"


def test_a_long_lived_connection_sees_a_file_rewritten_in_place(archive: Path) -> None:
    # compact rewrites a day's lone partition under the same name; the connection caches
    # Parquet footers (parquet_metadata_cache), which must not serve the old file's.
    eth = archive / "streams" / "stream=ethusdt@aggTrade"
    con = connect(archive)
    assert con.execute("SELECT current_setting('parquet_metadata_cache')").fetchone() == (True,)
    query = ("SELECT count(*), max(agg_trade_id) FROM agg_trades "
             "WHERE stream = 'ethusdt@aggTrade'")
    assert con.execute(query).fetchone() == (50, 50)
    (old,) = eth.rglob("*.parquet")
    new = write_partition(tmp := archive / "tmp", "ethusdt@aggTrade",
                          agg_trades("ethusdt", T0, 50, SEC, first_id=1000), row_group_size=7)
    new.replace(old)  # same path, other row groups and values (as compact's atomic rename)
    shutil.rmtree(tmp)
    assert con.execute(query).fetchone() == (50, 1049)
