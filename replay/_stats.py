"""``stats`` and ``gaps``: per stream and UTC day figures computed with the DuckDB catalog.

Definitions (per stream and ``date=`` day):

* ``messages``: stored frames (an ``!...@arr`` frame counts once);
* ``mean_rate``: messages / (last ``recv_ns`` - first ``recv_ns``) in msg/s;
  ``peak_rate``: the most messages received in one wall-clock second;
* ``gap_s``: length of the union of the gaps of this stream and of ``*`` (all streams),
  clipped to the day; ``completeness_pct``: 100 x (1 - ``gap_s`` / ``window_s``), where the
  window runs from the earlier of the first message and the first gap to the later of the
  last message and the last gap, clipped to the day;
* ``latency_p50_ms`` / ``latency_p99_ms``: percentiles of ``recv_ns - event_time_ns`` (receive
  time minus exchange event time ``E``; negative when the local clock is behind);
* ``bytes``: size on disk of the day's live partitions; ``bytes_per_msg``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import duckdb

from replay._partitions import list_archive
from schemas.layout import day_bounds_ns
from schemas.message import WILDCARD_STREAM

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class StreamDayStats:
    """The figures of one stream on one UTC day (module docstring)."""

    stream: str
    date: str
    messages: int
    first_ns: int
    last_ns: int
    mean_rate: float
    peak_rate: int
    gap_s: float
    completeness_pct: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    bytes: int
    bytes_per_msg: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _union_length(intervals: list[tuple[int, int]]) -> int:
    total = 0
    cur_s = cur_e = None
    for s, e in sorted(intervals):
        if cur_e is None or cur_s is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total


def _latencies(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple[float, float]]:
    tables = [r[0] for r in con.execute(
        "SELECT DISTINCT table_name FROM duckdb_columns() WHERE column_name = 'event_time_ns' "
        "AND table_name NOT IN ('messages', 'gaps')").fetchall()]
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for t in tables:
        rows = con.execute(
            f'SELECT stream, CAST(date AS VARCHAR), '
            f'quantile_cont((recv_ns - event_time_ns) / 1e6, [0.5, 0.99]) '
            f'FROM "{t}" WHERE event_time_ns IS NOT NULL GROUP BY ALL').fetchall()
        for stream, date, q in rows:
            out[(str(stream), str(date))] = (float(q[0]), float(q[1]))
    return out


def _gap_intervals(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for stream, start, end in con.execute("SELECT stream, start_ns, end_ns FROM gaps").fetchall():
        out.setdefault(str(stream), []).append((int(start), max(int(start), int(end))))
    return out


def stream_stats(con: duckdb.DuckDBPyConnection, archive: str,
                 streams: list[str] | None = None) -> list[StreamDayStats]:
    """Figures per stream and day, from a :func:`replay._catalog.connect` connection."""
    counts = con.execute(
        "SELECT stream, CAST(date AS VARCHAR), count(*), min(recv_ns), max(recv_ns) "
        "FROM messages GROUP BY ALL ORDER BY 1, 2").fetchall()
    peaks = {(str(s), str(d)): int(p) for s, d, p in con.execute(
        "SELECT stream, d, max(n) FROM (SELECT stream, CAST(date AS VARCHAR) d, "
        "recv_ns // 1000000000 AS sec, count(*) n FROM messages GROUP BY ALL) GROUP BY ALL"
    ).fetchall()}
    lat = _latencies(con)
    gaps = _gap_intervals(con)
    listing = list_archive(archive)
    sizes = {k: sum(p.size for p in ps) for k, ps in listing.live.items()}
    out = []
    for stream, date, n, first, last in counts:
        stream, date = str(stream), str(date)
        if streams is not None and stream not in streams:
            continue
        day_start, day_end = day_bounds_ns(date)
        ivs = [(max(s, day_start), min(e, day_end))
               for s, e in gaps.get(stream, []) + gaps.get(WILDCARD_STREAM, [])
               if e > day_start and s < day_end]
        gap_ns = _union_length(ivs)
        w_start = min([first, *(s for s, _ in ivs)])
        w_end = max([last, *(e for _, e in ivs)])
        window = max(w_end - w_start, 1)
        size = sizes.get((stream, date), 0)
        p50, p99 = lat.get((stream, date), (None, None))
        span_s = (last - first) / NS
        out.append(StreamDayStats(
            stream, date, int(n), int(first), int(last),
            round(n / span_s, 3) if span_s > 0 else float(n), peaks.get((stream, date), 0),
            round(gap_ns / NS, 3), round(100.0 * (1 - gap_ns / window), 3),
            None if p50 is None else round(p50, 3), None if p99 is None else round(p99, 3),
            size, round(size / n, 2) if n else 0.0))
    return out


def gap_rows(con: duckdb.DuckDBPyConnection, stream: str | None = None,
             start_ns: int | None = None, end_ns: int | None = None,
             kind: str | None = None) -> list[dict[str, Any]]:
    """Gaps overlapping ``[start_ns, end_ns)``, of ``stream`` (and of ``*``) and ``kind``."""
    where = ["true"]
    params: list[Any] = []
    if stream is not None:
        where.append("(stream = ? OR stream = ?)")
        params += [stream, WILDCARD_STREAM]
    if start_ns is not None:
        where.append("end_ns >= ?")
        params.append(start_ns)
    if end_ns is not None:
        where.append("start_ns < ?")
        params.append(end_ns)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    cur = con.execute(
        "SELECT stream, kind, start_ns, end_ns, start_time, end_time, duration_s, recovered, "
        f"detail FROM gaps WHERE {' AND '.join(where)} ORDER BY start_ns, stream", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


__all__ = ["StreamDayStats", "gap_rows", "stream_stats"]
