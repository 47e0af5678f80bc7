"""1-minute OHLCV over millions of aggTrades: the ticktape DuckDB views vs one flat file.

The data set is built once into ``benchmarks/.cache``: one 15-minute partition worth of
BTCUSDT aggTrades is parsed by the real table code (``schemas.tables.build_batch``), then
tiled over a UTC day with times, ids and prices shifted per tile (the ``raw`` text is tiled
unchanged; the query never reads it). Tiles are written in the archive layout
(``streams/stream=btcusdt@aggTrade/date=.../<first>-<last>.parquet``, zstd, row groups like
the writer's: 96 files a day, as written live) and, for the baseline, concatenated into one
flat Parquet file; that file is also linked into a second archive as the day's only
partition, the layout ``compact`` leaves behind. Both are
queried with the same SQL after a warm-up run, alternating five times so both see the same
machine noise; each figure is its best time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks._common import Config, Figure, Outcome, at_most, missing
from benchmarks._feed import FeedGenerator
from benchmarks.storage import SESSION_T0_NS
from schemas import layout
from schemas.message import Message

NAME = "ohlcv"
KEYS = ["ohlcv_10m_s", "ohlcv_flat_baseline_s"]
STREAM = "btcusdt@aggTrade"
TILES = 96
"""15-minute partitions in a day."""
TILE_NS = 900 * 1_000_000_000
ROW_GROUP_ROWS = 40_000
"""About the writer's 8 MB-of-raw row groups at ~200 B per aggTrade."""

SQL = """
SELECT event_time_ns // 60000000000 AS minute,
       arg_min(price, agg_trade_id) AS open, max(price) AS high, min(price) AS low,
       arg_max(price, agg_trade_id) AS close, sum(qty) AS volume, count(*) AS trades
FROM {source}
GROUP BY 1 ORDER BY 1
"""


def _day_start(ns: int) -> int:
    return ns - ns % (86_400 * 1_000_000_000)


def _shift(col: pa.Array[Any], by: float | int) -> pa.Array[Any]:
    return pc.add(col, pa.scalar(by, col.type))  # type: ignore[no-any-return]


def daily_archive(dest: Path, flat: Path) -> Path:
    """An archive whose day is one file (the layout ``compact`` produces): ``flat`` linked in."""
    root = dest / "archive-daily"
    if (root / "streams").is_dir():
        return root
    recv = pq.read_table(flat, columns=["recv_ns"]).column("recv_ns")
    lo, hi = int(pc.min(recv).as_py() or 0), int(pc.max(recv).as_py() or 0)
    path = root / layout.partition_path(STREAM, lo, hi)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(flat, path)
    except OSError:
        shutil.copyfile(flat, path)
    return root


def build(dest: Path, rows: int) -> tuple[Path, Path]:
    """Write the archive and the flat file under ``dest`` (once); return both paths."""
    archive, flat = dest / "archive", dest / "flat.parquet"
    if flat.exists() and (archive / "streams").is_dir():
        return archive, flat
    shutil.rmtree(dest, ignore_errors=True)
    from schemas.tables import build_batch

    per_tile = rows // TILES
    day0 = _day_start(SESSION_T0_NS)
    feed = FeedGenerator(seed=11).agg_trades("btcusdt", per_tile, TILE_NS - 1_000_000)
    msgs = [Message(STREAM, day0 + m.offset_ns, m.payload, conn_id=1, seq=i)
            for i, m in enumerate(feed)]
    base = build_batch(STREAM, msgs)
    names = base.schema.names
    ns_cols: list[str] = [c for c in ("recv_ns", "event_time_ns", "trade_time_ns") if c in names]
    id_cols: list[str] = [c for c in ("seq", "agg_trade_id", "first_trade_id", "last_trade_id")
               if c in names]
    last_id = int(pc.max(base.column("last_trade_id")).as_py() or 0)
    first_id = int(pc.min(base.column("first_trade_id")).as_py() or 0)
    id_span = last_id - first_id + 1
    dest.mkdir(parents=True)
    tiles: list[pa.RecordBatch] = []
    for t in range(TILES):
        cols = {n: base.column(n) for n in names}
        for ns_col in ns_cols:
            cols[ns_col] = _shift(cols[ns_col], t * TILE_NS)
        for id_col in id_cols:
            step = per_tile if id_col in ("seq", "agg_trade_id") else id_span
            cols[id_col] = _shift(cols[id_col], t * step)
        cols["price"] = _shift(cols["price"], float((t % 7) - 3) * 25.0)
        tile = pa.RecordBatch.from_arrays([cols[n] for n in names], schema=base.schema)
        recv = tile.column("recv_ns")
        lo, hi = int(pc.min(recv).as_py() or 0), int(pc.max(recv).as_py() or 0)
        path = archive / layout.partition_path(STREAM, lo, hi)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_batches([tile]), path, compression="zstd",
                       compression_level=3, row_group_size=ROW_GROUP_ROWS)
        tiles.append(tile)
    pq.write_table(pa.Table.from_batches(tiles), flat, compression="zstd",
                   compression_level=3, row_group_size=ROW_GROUP_ROWS)
    return archive, flat


def _timed_pair(view: duckdb.DuckDBPyConnection, view_sql: str, flat: duckdb.DuckDBPyConnection,
                flat_sql: str, repeats: int = 5) -> tuple[float, float, int, int]:
    """Warm both, then alternate them ``repeats`` times (shared noise); best time of each."""
    view.execute(view_sql).fetchall()  # warm-up: metadata and OS page cache
    flat.execute(flat_sql).fetchall()
    best_v = best_f = float("inf")
    n_v = n_f = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n_v = len(view.execute(view_sql).fetchall())
        best_v = min(best_v, time.perf_counter() - t0)
        t0 = time.perf_counter()
        n_f = len(flat.execute(flat_sql).fetchall())
        best_f = min(best_f, time.perf_counter() - t0)
    return best_v, best_f, n_v, n_f


def run(cfg: Config) -> Outcome:
    """Time the same OHLCV SQL through the catalog view and on the flat file."""
    out = Outcome()
    rows = cfg.pick(2_000_000, 10_000_000)
    reason = missing("replay._catalog") or missing("schemas.tables")
    if reason:
        out.not_measured("OHLCV 1m", KEYS, reason, "s")
        return out
    from replay._catalog import connect
    from schemas.tables import table_for

    # The cache is keyed by the stored schema, which may change between versions.
    tag = hashlib.sha256(str(table_for(STREAM).schema).encode()).hexdigest()[:10]
    for old in cfg.cache.glob(f"ohlcv-{rows}-*"):
        if old.name != f"ohlcv-{rows}-{tag}":
            shutil.rmtree(old, ignore_errors=True)
    archive, flat = build(cfg.cache / f"ohlcv-{rows}-{tag}", rows)
    con = connect(archive)
    flat_con = duckdb.connect(":memory:")
    try:
        t_view, t_flat, n_view, n_flat = _timed_pair(
            con, SQL.format(source="agg_trades"),
            flat_con, SQL.format(source=f"read_parquet('{flat}')"))
    finally:
        con.close()
        flat_con.close()
    label = f"OHLCV 1m over {rows / 1e6:.0f}M aggTrades, warm, live layout ({n_view} bars)"
    if cfg.quick:
        label += " (quick: fewer rows than the 10M goal)"
    out.figures.append(Figure(label, t_view, "s", t_flat, "<= 0.3 s; ratio <= 1.3",
                              at_most(t_view, 0.3) and at_most(t_view / t_flat, 1.3)))
    if n_view != n_flat:
        out.notes.append(f"ohlcv: view gave {n_view} bars, flat file {n_flat}")
    daily = connect(daily_archive(archive.parent, flat))
    flat_con = duckdb.connect(":memory:")
    try:
        t_daily, t_flat2, _, _ = _timed_pair(
            daily, SQL.format(source="agg_trades"),
            flat_con, SQL.format(source=f"read_parquet('{flat}')"))
    finally:
        daily.close()
        flat_con.close()
    out.figures.append(Figure("same, one file per day (the layout after compact)", t_daily, "s",
                              t_flat2, "<= 0.3 s; ratio <= 1.3",
                              at_most(t_daily, 0.3) and at_most(t_daily / t_flat2, 1.3)))
    out.keys["ohlcv_daily_file_s"] = round(t_daily, 4)
    out.keys.update({"ohlcv_10m_s": round(t_view, 4), "ohlcv_flat_baseline_s": round(t_flat, 4),
                     "ohlcv_rows": rows, "ohlcv_ratio": round(t_view / t_flat, 3)})
    return out


__all__ = ["NAME", "SQL", "build", "run"]
