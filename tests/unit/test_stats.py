"""``stats``, ``gaps`` and ``report`` on small synthetic archives with known figures."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from replay._catalog import connect
from replay._report import render_report
from replay._stats import gap_rows, stream_stats
from schemas.message import Gap, GapKind
from tests.tools_support import T0, agg_trades, book_tickers, write_gaps, write_partition

SEC = 1_000_000_000


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "arc"
    # 1 msg/s for 1000 s (one burst second holds 5 more), 7 ms behind exchange time.
    msgs = agg_trades("btcusdt", T0, 1000, SEC, lag_ms=7)
    burst = agg_trades("btcusdt", T0 + 500 * SEC + 1000, 5, 1000, first_id=5000, lag_ms=7)
    merged = sorted(msgs + burst, key=lambda m: m.recv_ns)
    write_partition(root, "btcusdt@aggTrade", merged[:600])
    write_partition(root, "btcusdt@aggTrade", merged[600:])
    write_partition(root, "btcusdt@bookTicker", book_tickers("btcusdt", T0, 100, 10 * SEC))
    write_gaps(root, [
        Gap("btcusdt@aggTrade", T0 + 100 * SEC, T0 + 110 * SEC, GapKind.SEQUENCE, "a jump",
            recovered=True),
        Gap("*", T0 + 105 * SEC, T0 + 125 * SEC, GapKind.DISCONNECT, "1006"),
        Gap("btcusdt@bookTicker", T0 + 900 * SEC, T0 + 901 * SEC, GapKind.SILENCE),
    ])
    return root


def test_stream_stats_figures(archive: Path) -> None:
    con = connect(archive)
    rows = {r.stream: r for r in stream_stats(con, str(archive))}
    agg = rows["btcusdt@aggTrade"]
    assert (agg.messages, agg.first_ns, agg.last_ns) == (1005, T0, T0 + 999 * SEC)
    assert agg.mean_rate == pytest.approx(1005 / 999, abs=1e-3)
    assert agg.peak_rate == 6
    # Union of [100, 110] and [105, 125]: 25 s.
    assert agg.gap_s == pytest.approx(25.0)
    assert agg.completeness_pct == pytest.approx(100 * (1 - 25 / 999), abs=1e-3)
    assert agg.latency_p50_ms == pytest.approx(7.0) and agg.latency_p99_ms == pytest.approx(7.0)
    files = list((archive / "streams" / "stream=btcusdt@aggTrade").rglob("*.parquet"))
    assert agg.bytes == sum(p.stat().st_size for p in files)
    assert agg.bytes_per_msg == pytest.approx(agg.bytes / 1005, abs=0.01)
    book = rows["btcusdt@bookTicker"]
    assert book.messages == 100 and book.gap_s == pytest.approx(21.0)
    assert book.latency_p50_ms == pytest.approx(3.0)
    assert set(book.as_dict()) >= {"stream", "date", "completeness_pct", "latency_p99_ms"}


def test_gap_rows_filters(archive: Path) -> None:
    con = connect(archive)
    assert [r["kind"] for r in gap_rows(con)] == ["sequence", "disconnect", "silence"]
    book = gap_rows(con, stream="btcusdt@bookTicker")
    assert [(r["stream"], r["kind"]) for r in book] == [("*", "disconnect"),
                                                       ("btcusdt@bookTicker", "silence")]
    late = gap_rows(con, start_ns=T0 + 111 * SEC)
    assert [r["kind"] for r in late] == ["disconnect", "silence"]
    early = gap_rows(con, end_ns=T0 + 105 * SEC)
    assert [r["kind"] for r in early] == ["sequence"]
    seq = gap_rows(con, kind="sequence")
    assert len(seq) == 1 and seq[0]["recovered"] is True and seq[0]["duration_s"] == 10.0


def test_report_is_self_contained_html_with_charts(archive: Path) -> None:
    text = render_report(archive)
    assert text.startswith("<!DOCTYPE html>")
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == 3  # message rate, latency, gap timeline
    for svg in svgs:
        ET.fromstring(svg)
    assert "polyline" in svgs[0] and "polyline" in svgs[1] and "<rect" in svgs[2]
    # No external assets: no src=, no href=, no url( and the only http is the SVG namespace.
    assert not re.search(r"\b(src|href)=|url\(", text)
    assert set(re.findall(r"https?://[^\"' ]+", text)) == {"http://www.w3.org/2000/svg"}
    assert "btcusdt@aggTrade" in text and "disconnect" in text


def test_report_of_an_empty_archive(tmp_path: Path) -> None:
    text = render_report(tmp_path)
    assert "no data" in text and "No gaps recorded" in text
