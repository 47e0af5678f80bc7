"""Builders of small archives for the query/maintenance tool tests (catalog, verify, compact...).

Partitions are written the way the recorder lays them out (schemas.layout), with the typed
columns of schemas.tables.build_batch and the content checksum in the Parquet metadata.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from replay._checksum import content_checksum, logical_batch, logical_schema, update_raw_checksum
from replay._verify import CHECKSUM_KEY, RAW_CHECKSUM_KEY
from schemas.layout import partition_path
from schemas.message import Gap, Message, Source
from schemas.tables import build_batch

T0 = 1_723_161_600_000_000_000
"""2024-08-09T00:00:00Z in ns: the start of the synthetic day."""
MIN_NS = 60_000_000_000


def agg_trades(symbol: str, start_ns: int, count: int, step_ns: int, first_id: int = 1,
               price: float = 60_000.0, lag_ms: int = 5) -> list[Message]:
    """``count`` aggTrade frames of ``symbol`` every ``step_ns`` from ``start_ns``."""
    out = []
    for i in range(count):
        recv = start_ns + i * step_ns
        e_ms = recv // 1_000_000 - lag_ms
        payload = {"e": "aggTrade", "E": e_ms, "a": first_id + i, "s": symbol.upper(),
                   "p": f"{price + (i % 17) - 8:.2f}", "q": f"{0.001 * (1 + i % 5):.3f}",
                   "f": 10 * (first_id + i), "l": 10 * (first_id + i), "T": e_ms - 1,
                   "m": i % 2 == 0}
        out.append(Message(f"{symbol.lower()}@aggTrade", recv, orjson.dumps(payload).decode(),
                           seq=i))
    return out


def book_tickers(symbol: str, start_ns: int, count: int, step_ns: int) -> list[Message]:
    """``count`` bookTicker frames of ``symbol``."""
    out = []
    for i in range(count):
        recv = start_ns + i * step_ns
        e_ms = recv // 1_000_000 - 3
        payload = {"e": "bookTicker", "u": 1000 + i, "s": symbol.upper(), "b": "60000.10",
                   "B": "1.000", "a": "60000.20", "A": "2.000", "T": e_ms, "E": e_ms}
        out.append(Message(f"{symbol.lower()}@bookTicker", recv, orjson.dumps(payload).decode(),
                           seq=i))
    return out


def mark_price_arr(start_ns: int, count: int, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
                   step_ns: int = 1_000_000_000) -> list[Message]:
    """``count`` ``!markPrice@arr@1s`` frames, each with one item per symbol."""
    out = []
    for i in range(count):
        recv = start_ns + i * step_ns
        e_ms = recv // 1_000_000 - 2
        items = [{"e": "markPriceUpdate", "E": e_ms, "s": s, "p": f"{100.0 * (k + 1) + i:.2f}",
                  "i": "1.0", "P": "1.0", "r": "0.0001", "T": e_ms + 1000}
                 for k, s in enumerate(symbols)]
        out.append(Message("!markPrice@arr@1s", recv, orjson.dumps(items).decode(), seq=i))
    return out


def write_partition(root: Path, stream: str, msgs: list[Message], checksum: bool = True,
                    row_group_size: int | None = None) -> Path:
    """Write one sealed partition as the recorder would and return its path."""
    batch = build_batch(stream, msgs)
    table = pa.Table.from_batches([batch])
    if checksum:
        meta = dict(table.schema.metadata or {})
        logical = logical_batch(stream, batch)
        meta[CHECKSUM_KEY] = content_checksum([logical], logical_schema(stream)).encode()
        h = hashlib.sha256()
        update_raw_checksum(h, logical)
        meta[RAW_CHECKSUM_KEY] = h.hexdigest().encode()
        table = table.replace_schema_metadata(meta)
    path = root / partition_path(stream, msgs[0].recv_ns, msgs[-1].recv_ns)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=row_group_size)
    return path


def write_gaps(root: Path, gaps: list[Gap]) -> Path:
    """Write a gaps partition."""
    from schemas.layout import gaps_path

    table = pa.table({
        "stream": [g.stream for g in gaps], "start_ns": [g.start_ns for g in gaps],
        "end_ns": [g.end_ns for g in gaps], "kind": [g.kind.value for g in gaps],
        "detail": [g.detail for g in gaps], "recovered": [g.recovered for g in gaps],
    })
    path = root / gaps_path(gaps[0].start_ns, gaps[-1].start_ns)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def quarter_hours(root: Path, stream_msgs: list[Message], stream: str,
                  window_ns: int = 15 * MIN_NS) -> list[Path]:
    """Split messages into recorder-style 15-minute partitions; return their paths."""
    by_window: dict[int, list[Message]] = {}
    for m in stream_msgs:
        by_window.setdefault(m.recv_ns // window_ns, []).append(m)
    return [write_partition(root, stream, ms) for _, ms in sorted(by_window.items())]


def snapshot(symbol: str, recv_ns: int, last_update_id: int = 500) -> Message:
    """A REST depth snapshot stored as ``<symbol>@depthSnapshot``."""
    e_ms = recv_ns // 1_000_000
    body = {"lastUpdateId": last_update_id, "E": e_ms, "T": e_ms,
            "bids": [["60000.00", "1.0"]], "asks": [["60000.10", "2.0"]]}
    return Message(f"{symbol.lower()}@depthSnapshot", recv_ns, orjson.dumps(body).decode(),
                   source=Source.REST)


__all__ = ["MIN_NS", "T0", "agg_trades", "book_tickers", "mark_price_arr", "quarter_hours",
           "snapshot", "write_gaps", "write_partition"]
