"""Builders of small archives for the replay tests (reader, merge, replayer, CLI, serve).

Partitions are written as the recorder lays them out (schemas.layout.partition_path) with the
columns of schemas.tables.build_batch; gaps go to gaps/date=.../<first>-<last>.parquet.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.layout import gaps_path, partition_path
from schemas.message import Gap, GapKind, Message, Source
from schemas.tables import build_batch

T0 = 1_723_161_600_000_000_000
"""2024-08-09T00:00:00Z in ns."""
MS = 1_000_000
SEC = 1_000_000_000


def write_partition(
    root: Path, stream: str, msgs: Sequence[Message], row_group_size: int | None = None
) -> Path:
    """Write ``msgs`` (one stream, in order) as one sealed partition; return its path."""
    rel = partition_path(stream, msgs[0].recv_ns, msgs[-1].recv_ns)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_batches([build_batch(stream, list(msgs))])
    pq.write_table(table, path, compression="zstd", row_group_size=row_group_size)
    return path


def write_gaps(root: Path, gaps: Sequence[Gap]) -> Path:
    """Write ``gaps`` as one gaps partition."""
    starts = [g.start_ns for g in gaps]
    path = root / gaps_path(min(starts), max(starts))
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "stream": [g.stream for g in gaps],
            "start_ns": pa.array(starts, pa.int64()),
            "end_ns": pa.array([g.end_ns for g in gaps], pa.int64()),
            "kind": [g.kind.value for g in gaps],
            "detail": [g.detail for g in gaps],
            "recovered": [g.recovered for g in gaps],
        }
    )
    pq.write_table(table, path)
    return path


def agg_trades(symbol: str, start_ns: int, count: int, step_ns: int, conn_id: int = 1,
               first_id: int = 1, first_seq: int = 0) -> list[Message]:
    """``count`` aggTrade messages every ``step_ns`` from ``start_ns``."""
    stream = f"{symbol.lower()}@aggTrade"
    out = []
    for i in range(count):
        recv = start_ns + i * step_ns
        ms = recv // MS
        payload = {"e": "aggTrade", "E": ms, "a": first_id + i, "s": symbol.upper(),
                   "p": f"{60000 + i % 7}.10", "q": "0.001", "f": 10 * i, "l": 10 * i,
                   "T": ms, "m": bool(i % 2)}
        out.append(Message(stream, recv, orjson.dumps(payload).decode(), conn_id,
                           first_seq + i, Source.WS))
    return out


def book_tickers(symbol: str, start_ns: int, count: int, step_ns: int, conn_id: int = 1,
                 first_seq: int = 0) -> list[Message]:
    """``count`` bookTicker messages every ``step_ns`` from ``start_ns``."""
    stream = f"{symbol.lower()}@bookTicker"
    out = []
    for i in range(count):
        recv = start_ns + i * step_ns
        ms = recv // MS
        raw = (f'{{"e":"bookTicker","u":{1000 + i},"s":"{symbol.upper()}","b":"60000.00",'
               f'"B":"1.5{i % 10}","a":"60000.10","A":"0.2","T":{ms},"E":{ms}}}')
        out.append(Message(stream, recv, raw, conn_id, first_seq + i, Source.WS))
    return out


def a_gap(stream: str, start_ns: int, end_ns: int,
          kind: GapKind = GapKind.DISCONNECT) -> Gap:
    """A gap with a recognisable detail."""
    return Gap(stream, start_ns, end_ns, kind, detail=f"test {kind.value}")


__all__ = ["MS", "SEC", "T0", "a_gap", "agg_trades", "book_tickers", "load_capture", "write_gaps",
           "write_partition"]


def load_capture(path: Path, symbol: str = "btcusdt") -> list[Message]:
    """Messages of an hftbacktest-style ``<recv_ns> <frame>`` capture (gzip).

    Combined envelopes are split byte-exactly; a bare REST depth body becomes a
    ``<symbol>@depthSnapshot`` message with ``source='rest'`` (as the recorder stores it).
    """
    import gzip

    from schemas.wire import split_envelope

    out = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for seq, line in enumerate(lines):
            recv_text, _, frame = line.rstrip("\n").partition(" ")
            split = split_envelope(frame)
            if split is not None:
                out.append(Message(split[0], int(recv_text), split[1], 1, seq, Source.WS))
            else:
                out.append(Message(f"{symbol}@depthSnapshot", int(recv_text), frame, 0, seq,
                                   Source.REST))
    return out
