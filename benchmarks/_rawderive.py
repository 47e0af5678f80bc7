"""Speed of the raw re-derivation (storage benchmark): column-wise vs the per-row reference.

Per event type, the stream's messages are cut into batches the size of a live row group
(``recorder._writer.WriterConfig.row_group_bytes`` of ``raw`` plus the per-row overhead, as
the writer flushes them) and built with ``schemas.tables.build_batch``. Measured, best of 3:

* ``drop``/``restore``: ``schemas.formatters.drop_derivable_raw`` / ``restore_raw_column``
  (the column-wise fast path, the reference for rows it cannot vouch for);
* ``drop_reference``/``restore_reference``: the row-at-a-time reference on the same batches
  (on at most :data:`REFERENCE_ROWS` rows per type: it is ~10x slower);
* ``live_cost_us``: what the live policy adds per message to the writer's batch work
  (build + ``prepare_for_storage(compacted=False)`` + Parquet encode with the live options),
  against the same work keeping ``raw``. Dropping ``raw`` also saves its compression, so the
  difference is smaller than the drop alone.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from schemas._reference import drop_rows, formatter_for, restore_rows
from schemas.formatters import drop_derivable_raw, restore_raw_column
from schemas.message import Message
from schemas.storage import parquet_options, prepare_for_storage
from schemas.streams import parse_stream
from schemas.tables import build_batch, table_for

REFERENCE_ROWS = 4_000
"""Rows per event type timed with the slow per-row reference."""
ROW_GROUP_BYTES = 8 << 20
ROW_OVERHEAD = 200
"""The live writer's row-group flush threshold and per-row weight, when recorder is absent."""


def _writer_sizes() -> tuple[int, int]:
    try:
        from recorder._partition import ROW_OVERHEAD as overhead
        from recorder._writer import WriterConfig
    except ImportError:
        return ROW_GROUP_BYTES, ROW_OVERHEAD
    return WriterConfig().row_group_bytes, overhead


def _writer_batches(msgs: Sequence[Message]) -> list[list[Message]]:
    limit, overhead = _writer_sizes()
    out: list[list[Message]] = [[]]
    size = 0
    for m in msgs:
        out[-1].append(m)
        size += len(m.raw) + overhead
        if size >= limit:
            out.append([])
            size = 0
    return [b for b in out if b]


def _best(fn: Callable[[], Any], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _encode(stream: str, batch: pa.RecordBatch) -> int:
    table = table_for(stream)
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, table.schema, **parquet_options(table, compacted=False)) as w:
        w.write_batch(batch)
    return len(buf.getvalue())


def _live_work(stream: str, batches: list[list[Message]], drop: bool) -> None:
    for msgs in batches:
        batch = build_batch(stream, msgs)
        _encode(stream, prepare_for_storage(stream, batch, compacted=False, drop_raw=drop))


def _time_stream(stream: str, msgs: Sequence[Message], ref_rows: int) -> dict[str, float]:
    """Seconds per measure for one stream (see the module doc)."""
    table = table_for(stream)
    fmt = formatter_for(table)
    assert fmt is not None
    groups = _writer_batches(msgs)
    built = [build_batch(stream, g) for g in groups]
    dropped = [drop_derivable_raw(stream, b) for b in built]
    t = {"rows": float(len(msgs)),
         "drop_s": _best(lambda: [drop_derivable_raw(stream, b) for b in built]),
         "restore_s": _best(lambda: [restore_raw_column(stream, b) for b in dropped]),
         "live_keep_s": _best(lambda: _live_work(stream, groups, False)),
         "live_drop_s": _best(lambda: _live_work(stream, groups, True))}
    if ref_rows > 0:
        sample = built[0].slice(0, ref_rows)
        sample_dropped = dropped[0].slice(0, ref_rows)
        t["ref_rows"] = sample.num_rows
        t["drop_ref_s"] = _best(lambda: drop_rows(table, fmt, sample), 1)
        t["restore_ref_s"] = _best(lambda: restore_rows(table, fmt, sample_dropped), 1)
    return t


def measure(msgs: Sequence[Message]) -> dict[str, dict[str, float]]:
    """Rows per second (and the live cost in us/msg) per event type of ``msgs``."""
    by_stream: dict[str, list[Message]] = defaultdict(list)
    for m in msgs:
        by_stream[m.stream].append(m)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for stream, stream_msgs in sorted(by_stream.items()):
        table = table_for(stream)
        if formatter_for(table) is None or table.is_array:
            continue
        total = totals[parse_stream(stream).channel]
        for key, value in _time_stream(stream, stream_msgs,
                                       REFERENCE_ROWS - int(total["ref_rows"])).items():
            total[key] += value
    out: dict[str, dict[str, float]] = {}
    for channel, t in totals.items():
        rows = t["rows"]
        out[channel] = {
            "drop": round(rows / t["drop_s"]),
            "drop_reference": round(t["ref_rows"] / t["drop_ref_s"]),
            "restore": round(rows / t["restore_s"]),
            "restore_reference": round(t["ref_rows"] / t["restore_ref_s"]),
            "live_keep_us": round(t["live_keep_s"] / rows * 1e6, 2),
            "live_cost_us": round((t["live_drop_s"] - t["live_keep_s"]) / rows * 1e6, 2),
        }
    return out


def describe(label: str, figures: dict[str, dict[str, float]]) -> list[str]:
    """One note line per event type."""
    return [f"raw re-derivation ({label}, {channel}): drop {f['drop']:,.0f} rows/s "
            f"(per-row reference {f['drop_reference']:,.0f}), restore {f['restore']:,.0f} "
            f"rows/s (reference {f['restore_reference']:,.0f}); live writer batch work "
            f"{f['live_keep_us']} us/msg keeping raw, {f['live_cost_us']:+} us/msg dropping it"
            for channel, f in sorted(figures.items())]


__all__ = ["describe", "measure"]
