"""1-minute OHLCV over millions of aggTrades: the ticktape DuckDB views vs one flat file.

The data set is built once into ``benchmarks/.cache``: one 15-minute partition worth of
BTCUSDT aggTrades is parsed by the real table code (``schemas.tables.build_batch``) and
written by the live writer itself (``recorder._writer.PartitionSet``, as
``benchmarks.storage.write_live`` does); that file is tile 0. The other tiles shift times,
ids and prices (the ``raw`` text is tiled unchanged; the query never reads it) and are
written exactly like tile 0: the writer's ``schemas.storage.parquet_options`` (live) and
tile 0's row-group sizes (the writer cuts a row group every ``row_group_bytes`` of buffered
payload: ~5.7k aggTrades), in the archive layout
(``streams/stream=btcusdt@aggTrade/date=.../<first>-<last>.parquet``, 96 files a day).

The day after ``compact`` is one file written with the compacted options and row groups
(``parquet_options(compacted=True)``, ``row_group_rows(compacted=True)``) whose ``raw`` is
null with tile 0's ``raw_fmt`` codes, as ``compact`` leaves real captures (their ``raw`` is
100% derivable; the tiled synthetic text is not, and the query does not read it).

The baseline is the same rows in one flat Parquet file as a user would write it with
pyarrow (zstd level 3, 40,000-row groups, pyarrow's default encodings). A third figure
compares the live layout with a flat file written with the live encodings too, which
isolates the cost of the layout (96 files, the writer's small row groups, the view) from the
encodings' gain (delta-encoded int64 decode faster than pyarrow's dictionary-then-plain
default). Each layout is queried with the same SQL after a warm-up run, alternating with
its baseline five times so both see the same machine noise; each figure is its best time.
"""

from __future__ import annotations

import hashlib
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
from schemas.tables import RAW_FMT

NAME = "ohlcv"
KEYS = ["ohlcv_10m_s", "ohlcv_flat_baseline_s"]
STREAM = "btcusdt@aggTrade"
TILES = 96
"""15-minute partitions in a day."""
TILE_NS = 900 * 1_000_000_000
ROW_GROUP_ROWS = 40_000
"""Row groups of the flat baseline file."""
ENCODED_FLAT = "flat-live-encodings.parquet"
"""The same flat file written with the live column encodings (the layout's own cost)."""
LAYOUT_VERSION = "2"
WRITER_MODULES = ("schemas.storage", "schemas.formatters", "recorder._partition",
                  "recorder._writer", "recorder._writer_config")
"""Bumped when :func:`build` writes differently (part of the cache key)."""

SQL = """
SELECT event_time_ns // 60000000000 AS minute,
       arg_min(price, agg_trade_id) AS open, max(price) AS high, min(price) AS low,
       arg_max(price, agg_trade_id) AS close, sum(qty) AS volume, count(*) AS trades
FROM {source}
GROUP BY 1 ORDER BY 1
"""


def _day_start(ns: int) -> int:
    return ns - ns % (86_400 * 1_000_000_000)


def _shift(col: pa.ChunkedArray[Any], by: float | int) -> pa.ChunkedArray[Any]:
    return pc.add(col, pa.scalar(by, col.type))  # type: ignore[no-any-return]


def _writer_tile(dest: Path, msgs: list[Message]) -> tuple[pa.Table, list[int]]:
    """Tile 0 as the live writer writes it: its table and its row-group sizes."""
    from benchmarks.storage import write_live

    scratch = dest / "tile0"
    write_live(scratch, msgs)
    files = sorted((scratch / "streams").glob("stream=*/date=*/*.parquet"))
    if len(files) != 1:
        raise RuntimeError(f"the writer made {len(files)} partitions of one tile, not 1")
    meta = pq.read_metadata(files[0])
    groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    table = pq.read_table(files[0])
    shutil.rmtree(scratch)
    return table, groups


def _write_groups(path: Path, table: pa.Table, options: dict[str, Any],
                  groups: list[int]) -> None:
    """Write ``table`` to ``path`` with ``options``, cutting row groups of these sizes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, table.schema, **options) as writer:
        off = 0
        for n in groups:
            writer.write_table(table.slice(off, n), row_group_size=n)
            off += n


def _compacted_codes(base: pa.Table) -> pa.ChunkedArray[Any]:
    """``raw_fmt`` of tile 0 after ``compact`` drops its (derivable) ``raw``."""
    from schemas.storage import prepare_for_storage

    batch = base.combine_chunks().to_batches()[0]
    dropped = prepare_for_storage(STREAM, batch, compacted=True)
    return pa.chunked_array([dropped.column(RAW_FMT)])


def build(dest: Path, rows: int) -> tuple[Path, Path, Path]:
    """Write the live archive, the daily archive and the flat file under ``dest`` (once)."""
    archive, daily, flat = dest / "archive", dest / "archive-daily", dest / "flat.parquet"
    if all(p.exists() for p in (flat, flat.with_name(ENCODED_FLAT), archive / "streams",
                                daily / "streams")):
        return archive, daily, flat
    shutil.rmtree(dest, ignore_errors=True)
    from schemas.storage import parquet_options, row_group_rows
    from schemas.tables import table_for

    per_tile = rows // TILES
    day0 = _day_start(SESSION_T0_NS)
    feed = FeedGenerator(seed=11).agg_trades("btcusdt", per_tile, TILE_NS - 1_000_000)
    msgs = [Message(STREAM, day0 + m.offset_ns, m.payload, conn_id=1, seq=i)
            for i, m in enumerate(feed)]
    dest.mkdir(parents=True)
    base, groups = _writer_tile(dest, msgs)
    names = base.schema.names
    ns_cols = [c for c in ("recv_ns", "event_time_ns", "trade_time_ns") if c in names]
    id_cols = [c for c in ("seq", "agg_trade_id", "first_trade_id", "last_trade_id")
               if c in names]
    last_id = int(pc.max(base.column("last_trade_id")).as_py() or 0)
    first_id = int(pc.min(base.column("first_trade_id")).as_py() or 0)
    id_span = last_id - first_id + 1
    table = table_for(STREAM)
    live = parquet_options(table, compacted=False)
    codes = _compacted_codes(base)
    raw_at, fmt_at = names.index("raw"), names.index(RAW_FMT)
    tiles: list[pa.Table] = []
    for t in range(TILES):
        cols: dict[str, pa.ChunkedArray[Any]] = {n: base.column(n) for n in names}
        for ns_col in ns_cols:
            cols[ns_col] = _shift(cols[ns_col], t * TILE_NS)
        for id_col in id_cols:
            step = per_tile if id_col in ("seq", "agg_trade_id") else id_span
            cols[id_col] = _shift(cols[id_col], t * step)
        cols["price"] = _shift(cols["price"], float((t % 7) - 3) * 25.0)
        tile = pa.Table.from_arrays([cols[n] for n in names], schema=base.schema)
        recv = tile.column("recv_ns")
        lo, hi = int(pc.min(recv).as_py() or 0), int(pc.max(recv).as_py() or 0)
        _write_groups(archive / layout.partition_path(STREAM, lo, hi), tile, live, groups)
        tiles.append(tile)
    day = pa.concat_tables(tiles)
    pq.write_table(day, flat, compression="zstd", compression_level=3,
                   row_group_size=ROW_GROUP_ROWS)
    pq.write_table(day, flat.with_name(ENCODED_FLAT), row_group_size=ROW_GROUP_ROWS, **live)
    compacted = day.set_column(raw_at, "raw", pa.nulls(day.num_rows, pa.string()))
    compacted = compacted.set_column(fmt_at, RAW_FMT, pa.chunked_array(
        [c for _ in range(TILES) for c in codes.chunks]))
    recv = day.column("recv_ns")
    lo, hi = int(pc.min(recv).as_py() or 0), int(pc.max(recv).as_py() or 0)
    step = row_group_rows(table, compacted=True)
    _write_groups(daily / layout.partition_path(STREAM, lo, hi), compacted,
                  parquet_options(table, compacted=True),
                  [min(step, day.num_rows - off) for off in range(0, day.num_rows, step)])
    return archive, daily, flat


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
    reason = (missing("replay._catalog") or missing("schemas.tables")
              or missing("recorder._writer"))
    if reason:
        out.not_measured("OHLCV 1m", KEYS, reason, "s")
        return out
    from replay._catalog import connect
    from schemas.tables import table_for

    # The cache is keyed by the stored schema and by the code that decides how files are
    # written (storage options, the live writer's row groups and raw dropping).
    table = table_for(STREAM)
    layout_key = [str(table.schema), LAYOUT_VERSION, *_writer_sources()]
    tag = hashlib.sha256("\n".join(layout_key).encode()).hexdigest()[:10]
    for old in cfg.cache.glob(f"ohlcv-{rows}-*"):
        if old.name != f"ohlcv-{rows}-{tag}":
            shutil.rmtree(old, ignore_errors=True)
    archive, daily_root, flat = build(cfg.cache / f"ohlcv-{rows}-{tag}", rows)
    flat_sql = SQL.format(source=f"read_parquet('{flat}')")
    t_view, t_flat, n_view, n_flat = _versus(connect(archive), flat_sql)
    label = f"OHLCV 1m over {rows / 1e6:.0f}M aggTrades, warm, live layout ({n_view} bars)"
    if cfg.quick:
        label += " (quick: fewer rows than the 10M goal)"
    out.figures.append(Figure(label, t_view, "s", t_flat, "<= 0.3 s; ratio <= 1.3",
                              at_most(t_view, 0.3) and at_most(t_view / t_flat, 1.3)))
    if n_view != n_flat:
        out.notes.append(f"ohlcv: view gave {n_view} bars, flat file {n_flat}")
    t_daily, t_flat2, _, _ = _versus(connect(daily_root), flat_sql)
    out.figures.append(Figure("same, one file per day (the layout after compact)", t_daily, "s",
                              t_flat2, "<= 0.3 s; ratio <= 1.3",
                              at_most(t_daily, 0.3) and at_most(t_daily / t_flat2, 1.3)))
    # The layout's own cost: the flat file written with the same (live) column encodings.
    encoded_sql = SQL.format(source=f"read_parquet('{flat.with_name(ENCODED_FLAT)}')")
    t_view2, t_encoded, _, _ = _versus(connect(archive), encoded_sql)
    out.figures.append(Figure("live layout vs a flat file with the live encodings", t_view2, "s",
                              t_encoded, "none (the layout's own cost)", None))
    out.keys.update({"ohlcv_10m_s": round(t_view, 4), "ohlcv_flat_baseline_s": round(t_flat, 4),
                     "ohlcv_rows": rows, "ohlcv_ratio": round(t_view / t_flat, 3),
                     "ohlcv_daily_file_s": round(t_daily, 4),
                     "ohlcv_flat_encoded_s": round(t_encoded, 4),
                     "ohlcv_encoded_ratio": round(t_view2 / t_encoded, 3)})
    return out


def _writer_sources() -> list[str]:
    """Digests of the modules that decide the bytes of a live or compacted partition."""
    import importlib

    out = []
    for name in WRITER_MODULES:
        path = getattr(importlib.import_module(name), "__file__", None)
        out.append(hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else name)
    return out


def _versus(view: duckdb.DuckDBPyConnection, flat_sql: str) -> tuple[float, float, int, int]:
    """:func:`_timed_pair` of the ``agg_trades`` view against ``flat_sql`` (plain DuckDB)."""
    flat = duckdb.connect(":memory:")
    try:
        return _timed_pair(view, SQL.format(source="agg_trades"), flat, flat_sql)
    finally:
        view.close()
        flat.close()


__all__ = ["NAME", "SQL", "build", "run"]
