"""``ticktape gaps | stats | verify | compact | report``: archive maintenance and figures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from replay._catalog import connect
from replay._compact import DEFAULT_MAX_BYTES, compact
from replay._report import write_report
from replay._stats import gap_rows, stream_stats
from replay._times import format_ns, parse_time
from replay._verify import verify
from schemas.errors import ConfigError, CorruptDataError
from schemas.message import GapKind
from schemas.streams import parse_stream
from ticktape.cli._group import cli
from ticktape.cli.query import archive_option

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30}
format_option = click.option("--format", "fmt", type=click.Choice(("table", "json")),
                             default="table", show_default=True, help="Output format.")


def parse_size(text: str) -> int:
    """``512MB`` / ``1g`` / ``1048576`` -> bytes."""
    t = text.strip().lower()
    digits = t.rstrip("kmgb")
    unit = t[len(digits):]
    if not digits.isdigit() or unit not in _UNITS or int(digits) <= 0:
        raise ConfigError(f"bad size {text!r}: expected e.g. 512MB, 1GB or a byte count")
    return int(digits) * _UNITS[unit]


def _console() -> Console:
    tty = sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=False, width=None if tty else 160)


def _json(obj: Any) -> None:
    click.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=str).decode())


def _stream_arg(stream: str | None) -> str | None:
    return None if stream is None else parse_stream(stream).name


@cli.command()
@archive_option
@click.option("--stream", help="Only gaps of this stream (and of '*', all streams).")
@click.option("--start", help="Only gaps ending at or after T (ISO-8601 UTC or epoch ns).")
@click.option("--end", help="Only gaps starting before T.")
@click.option("--kind", type=click.Choice([k.value for k in GapKind]), help="Only this kind.")
@format_option
def gaps(archive: Path, stream: str | None, start: str | None, end: str | None,
         kind: str | None, fmt: str) -> None:
    """List the recorded gaps: stream, kind, start, end, duration, recovered, detail."""
    con = connect(archive)
    try:
        rows = gap_rows(con, _stream_arg(stream), parse_time(start), parse_time(end), kind)
    finally:
        con.close()
    if fmt == "json":
        _json([{k: v for k, v in r.items() if not k.endswith("_time")} for r in rows])
        return
    table = Table("stream", "kind", "start (UTC)", "end (UTC)", "duration s", "recovered",
                  "detail", title=f"{len(rows)} gap(s)")
    for r in rows:
        table.add_row(r["stream"], r["kind"], format_ns(r["start_ns"]), format_ns(r["end_ns"]),
                      f"{r['duration_s']:.3f}", "yes" if r["recovered"] else "no", r["detail"])
    _console().print(table)


@cli.command()
@archive_option
@click.option("--stream", help="Only this stream.")
@format_option
def stats(archive: Path, stream: str | None, fmt: str) -> None:
    """Per stream and day: messages, mean/peak rate, gap time, completeness, latency, bytes."""
    con = connect(archive)
    try:
        name = _stream_arg(stream)
        rows = stream_stats(con, str(archive), None if name is None else [name])
    finally:
        con.close()
    if fmt == "json":
        _json([r.as_dict() for r in rows])
        return
    table = Table("stream", "date", "messages", "mean/s", "peak/s", "gap s", "complete %",
                  "lat p50 ms", "lat p99 ms", "bytes", "B/msg", title="ticktape stats")
    for r in rows:
        table.add_row(r.stream, r.date, f"{r.messages:,}", f"{r.mean_rate:,.1f}",
                      f"{r.peak_rate:,}", f"{r.gap_s:,.1f}", f"{r.completeness_pct:.2f}",
                      "-" if r.latency_p50_ms is None else f"{r.latency_p50_ms:,.1f}",
                      "-" if r.latency_p99_ms is None else f"{r.latency_p99_ms:,.1f}",
                      f"{r.bytes:,}", f"{r.bytes_per_msg:.1f}")
    _console().print(table)


@cli.command(name="verify")
@archive_option
@click.option("--live", is_flag=True,
              help="The recorder is running: its open .tmp partitions and journal are fine.")
@format_option
def verify_cmd(archive: Path, live: bool, fmt: str) -> None:
    """Check every file: opens, schema, recv_ns order, checksums, no overlap, no .tmp, journal.

    Never modifies the archive. Exits 1 when any check fails (problems on stdout, a summary
    line on stderr).
    """
    report = verify(archive, live=live)
    if fmt == "json":
        _json(report.as_dict())
    else:
        for p in report.problems:
            click.echo(f"FAIL {p}")
        for note in report.notes:
            click.echo(f"note {note}")
        verdict = "OK" if report.ok else f"FAILED ({len(report.problems)} problem(s))"
        click.echo(f"verify {archive}: {report.files} file(s), {report.rows:,} row(s): {verdict}")
    if not report.ok:
        raise CorruptDataError(f"verify found {len(report.problems)} problem(s) in {archive}")


@cli.command(name="compact")
@archive_option
@click.option("--max-bytes", default="512MB", show_default=True,
              help="Cap on the input bytes merged into one file.")
@click.option("--stream", help="Only this stream.")
@click.option("--date", help="Only this UTC day (YYYY-MM-DD).")
@format_option
def compact_cmd(archive: Path, max_bytes: str, stream: str | None, date: str | None,
                fmt: str) -> None:
    """Merge each day's small partitions per stream into one file, checksum-proven equal.

    Leaves the current UTC hour alone (safe beside a running recorder) and is safe to kill at
    any moment; a rerun finishes an interrupted one.
    """
    cap = parse_size(max_bytes) if max_bytes else DEFAULT_MAX_BYTES
    name = _stream_arg(stream)
    report = compact(archive, max_bytes=cap, streams=None if name is None else [name],
                     date=date)
    if fmt == "json":
        _json(report.as_dict())
        return
    for c in report.cleaned:
        click.echo(f"removed leftover {c}")
    for m in report.merges:
        click.echo(f"merged {m.inputs} files of {m.stream} {m.date}: {m.rows:,} rows, "
                   f"{m.bytes_before:,} -> {m.bytes_after:,} bytes, checksum {m.checksum[:16]} "
                   "equal before/after")
    for s in report.skipped:
        click.echo(f"skipped {s}")
    if not (report.merges or report.cleaned):
        click.echo("nothing to compact")


@cli.command()
@archive_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default="ticktape-report.html", show_default=True, help="HTML file to write.")
def report(archive: Path, output: Path) -> None:
    """Write a self-contained HTML report: message rates, latency, gap timeline, stats."""
    path = write_report(archive, output)
    click.echo(f"wrote {path}")


__all__ = ["compact_cmd", "gaps", "parse_size", "report", "stats", "verify_cmd"]
