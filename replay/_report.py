"""``report``: one self-contained HTML page (inline SVG, no external assets) about an archive.

Sections: the ``stats`` table, message rate per stream over time, exchange-to-receive latency
(p50 and p99 per time bucket) per stream, and a gap timeline (one lane per stream, one bar
per gap, coloured by kind). Time buckets are chosen so that a chart has at most
:data:`MAX_BUCKETS` points.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb

from replay._catalog import connect
from replay._stats import StreamDayStats, stream_stats
from schemas.errors import ArchiveError

MAX_BUCKETS = 300
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 900, 260, 70, 180, 20, 40
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")
_GAP_COLOURS = {"disconnect": "#d62728", "sequence": "#ff7f0e", "silence": "#9467bd",
                "recorder_down": "#000000", "rotation": "#8c564b", "rejected": "#e377c2"}
_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
NS = 1_000_000_000

Series = dict[str, list[tuple[float, float]]]


def _bucket_s(span_ns: int) -> int:
    for step in _STEPS_S:
        if span_ns / NS / step <= MAX_BUCKETS:
            return step
    return _STEPS_S[-1]


def _clock(ns: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ns / NS))


def _x(t: float, t0: float, t1: float) -> float:
    return PAD_L + (t - t0) / max(t1 - t0, 1) * (WIDTH - PAD_L - PAD_R)


def _axes(t0: float, t1: float, y_max: float, y_label: str, y_min: float = 0.0) -> list[str]:
    out = [f'<line x1="{PAD_L}" y1="{HEIGHT - PAD_B}" x2="{WIDTH - PAD_R}" '
           f'y2="{HEIGHT - PAD_B}" stroke="#444"/>',
           f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{HEIGHT - PAD_B}" stroke="#444"/>',
           f'<text x="12" y="{PAD_T + 10}" font-size="11">{html.escape(y_label)}</text>']
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        x = _x(t, t0, t1)
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD_B + 16}" font-size="11" '
                   f'text-anchor="middle">{_clock(t)}</text>')
        v = y_min + (y_max - y_min) * i / 4
        y = HEIGHT - PAD_B - (HEIGHT - PAD_T - PAD_B) * i / 4
        out.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{v:,.4g}</text>')
    return out


def line_chart(series: Series, y_label: str, title: str) -> str:
    """An SVG line chart of ``{name: [(t_ns, value), ...]}``."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return f"<p><em>{html.escape(title)}: no data</em></p>"
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    y_min = min(0.0, min(p[1] for p in points))
    y_max = max(p[1] for p in points) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{html.escape(title)}">', *_axes(t0, t1, y_max, y_label,
                                                                     y_min)]
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = _COLOURS[i % len(_COLOURS)]
        coords = " ".join(
            f"{_x(t, t0, t1):.1f},"
            f"{HEIGHT - PAD_B - (v - y_min) / (y_max - y_min) * (HEIGHT - PAD_T - PAD_B):.1f}"
            for t, v in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.3" '
                     f'points="{coords}"/>')
        parts.append(f'<text x="{WIDTH - PAD_R + 8}" y="{PAD_T + 14 * (i + 1)}" font-size="11" '
                     f'fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def gap_timeline(streams: Sequence[str], gaps: Sequence[tuple[str, int, int, str]],
                 t0: float, t1: float) -> str:
    """One lane per stream (plus ``*``), a bar per gap coloured by kind."""
    lanes = sorted(set(streams) | {g[0] for g in gaps})
    if not gaps:
        return "<h3>Gap timeline</h3><p>No gaps recorded.</p>"
    if lanes:
        t0 = min([t0, *(g[1] for g in gaps)])
        t1 = max([t1, *(g[2] for g in gaps)])
    lane_h = 22
    height = PAD_T + lane_h * len(lanes) + PAD_B
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             'role="img" aria-label="gap timeline">']
    for i, lane in enumerate(lanes):
        y = PAD_T + i * lane_h
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 15}" font-size="11" text-anchor="end">'
                     f'{html.escape(lane[-24:])}</text>')
        parts.append(f'<line x1="{PAD_L}" y1="{y + 11}" x2="{WIDTH - PAD_R}" y2="{y + 11}" '
                     'stroke="#ddd"/>')
        for stream, start, end, kind in gaps:
            if stream != lane:
                continue
            x0, x1 = _x(start, t0, t1), _x(end, t0, t1)
            colour = _GAP_COLOURS.get(kind, "#333")
            parts.append(f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 2):.1f}" '
                         f'height="14" fill="{colour}"><title>{html.escape(kind)} '
                         f'{(end - start) / NS:.3f}s</title></rect>')
    for j, (kind, colour) in enumerate(_GAP_COLOURS.items()):
        parts.append(f'<text x="{WIDTH - PAD_R + 8}" y="{PAD_T + 14 * (j + 1)}" '
                     f'font-size="11" fill="{colour}">{kind}</text>')
    y = height - PAD_B + 16
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        parts.append(f'<text x="{_x(t, t0, t1):.1f}" y="{y}" font-size="11" '
                     f'text-anchor="middle">{_clock(t)}</text>')
    parts.append("</svg>")
    return "<h3>Gap timeline</h3>" + "".join(parts)


def _stats_table(rows: Sequence[StreamDayStats]) -> str:
    head = ("stream", "date", "messages", "mean/s", "peak/s", "gap s", "complete %",
            "lat p50 ms", "lat p99 ms", "bytes", "B/msg")
    body = []
    for r in rows:
        cells = (r.stream, r.date, f"{r.messages:,}", f"{r.mean_rate:,.1f}", f"{r.peak_rate:,}",
                 f"{r.gap_s:,.1f}", f"{r.completeness_pct:.2f}",
                 "-" if r.latency_p50_ms is None else f"{r.latency_p50_ms:,.1f}",
                 "-" if r.latency_p99_ms is None else f"{r.latency_p99_ms:,.1f}",
                 f"{r.bytes:,}", f"{r.bytes_per_msg:.1f}")
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(body) + "</table>")


def _rates(con: duckdb.DuckDBPyConnection, step: int) -> Series:
    out: Series = {}
    for stream, b, n in con.execute(
            f"SELECT stream, recv_ns // {step * NS} AS b, count(*) / {step} FROM messages "
            "GROUP BY ALL ORDER BY 1, 2").fetchall():
        out.setdefault(str(stream), []).append((float(b) * step * NS, float(n)))
    return out


def _latency(con: duckdb.DuckDBPyConnection, step: int) -> Series:
    tables = [r[0] for r in con.execute(
        "SELECT DISTINCT table_name FROM duckdb_columns() WHERE column_name = 'event_time_ns' "
        "AND table_name NOT IN ('messages', 'gaps')").fetchall()]
    out: Series = {}
    for t in tables:
        for stream, b, q in con.execute(
                f'SELECT stream, recv_ns // {step * NS} AS b, '
                f'quantile_cont((recv_ns - event_time_ns) / 1e6, [0.5, 0.99]) FROM "{t}" '
                "WHERE event_time_ns IS NOT NULL GROUP BY ALL ORDER BY 1, 2").fetchall():
            t_ns = float(b) * step * NS
            out.setdefault(f"{stream} p50", []).append((t_ns, float(q[0])))
            out.setdefault(f"{stream} p99", []).append((t_ns, float(q[1])))
    return out


def render_report(archive: str | os.PathLike[str]) -> str:
    """The HTML text of the report of ``archive``."""
    con = connect(archive)
    try:
        rows = stream_stats(con, os.fspath(archive))
        if rows:
            t0 = float(min(r.first_ns for r in rows))
            t1 = float(max(r.last_ns for r in rows))
        else:
            t0 = t1 = 0.0
        step = _bucket_s(int(t1 - t0))
        rates = _rates(con, step)
        latency = _latency(con, step)
        gaps = [(str(s), int(a), int(b), str(k)) for s, a, b, k in con.execute(
            "SELECT stream, start_ns, end_ns, kind FROM gaps ORDER BY start_ns").fetchall()]
    except duckdb.Error as exc:
        raise ArchiveError(f"cannot build report: {' '.join(str(exc).split())}") from exc
    finally:
        con.close()
    title = f"ticktape report: {html.escape(os.fspath(archive))}"
    span = (f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t0 / NS))} to "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t1 / NS))} UTC" if rows else "empty")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        "<style>body{font-family:sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        f"<h1>{title}</h1>", f"<p>{span}; chart buckets of {step} s.</p>",
        "<h2>Streams</h2>", _stats_table(rows),
        line_chart(rates, "msg/s", "Message rate"),
        line_chart(latency, "ms", "Receive minus event time (latency)"),
        gap_timeline([r.stream for r in rows], gaps, t0, t1),
        "</body></html>", ""])


def write_report(archive: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """Write :func:`render_report` to ``output`` and return its path."""
    text = render_report(archive)
    path = Path(output)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ArchiveError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


__all__ = ["gap_timeline", "line_chart", "render_report", "write_report"]
