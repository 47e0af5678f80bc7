"""``ticktape check-loss``: prove every frame the sim sent is archived or inside a gap."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.table import Table

from replay._invariant import (
    DEFAULT_MAX_LATENCY_NS,
    DEFAULT_SKEW_NS,
    LossReport,
    StreamLoss,
    check_loss,
    read_send_log,
)
from replay._times import format_ns, parse_time
from schemas.errors import TicktapeError
from ticktape.cli._group import cli
from ticktape.cli.tools import _console

_COLUMNS = ("sent", "messages", "archived", "backfilled", "in_gap", "holes", "duplicates",
            "reorders", "unsent")


class LossFound(TicktapeError):
    """The invariant does not hold: unexplained holes, duplicates or unsent rows."""


def _row(s: StreamLoss) -> list[str]:
    return [s.stream, *(f"{getattr(s, c):,}" for c in _COLUMNS)]


def _print_table(report: LossReport) -> None:
    table = Table("stream", *_COLUMNS, title="ticktape check-loss")
    for s in sorted(report.streams.values(), key=lambda s: s.stream):
        table.add_row(*_row(s))
    table.add_row(*_row(report.total()), style="bold")
    console = _console()
    console.print(table)
    for h in report.holes:
        console.print(f"HOLE {h.stream} conn {h.conn_id} seq {h.seq} sent {format_ns(h.send_ns)}")
    click.echo(f"{report.gaps} gap(s) in the archive; {report.skipped} user-data frame(s) "
               f"skipped; {report.after_end} frame(s) sent after --until ignored")


@cli.command(name="check-loss")
@click.option("--send-log", "send_log", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="NDJSON written by `ticktape sim --send-log FILE`.")
@click.option("--archive", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Archive root directory.")
@click.option("--until", help="Ignore frames sent after T (when the recorder was told to stop; "
                              "ISO-8601 UTC or epoch ns).")
@click.option("--skew-ms", type=click.IntRange(min=0), default=DEFAULT_SKEW_NS // 1_000_000,
              show_default=True, help="Tolerance between send and receive clocks.")
@click.option("--max-latency-s", type=click.FloatRange(min=0.001),
              default=DEFAULT_MAX_LATENCY_NS / 1e9, show_default=True,
              help="How long after its send a lost frame's gap may start.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table",
              show_default=True, help="Output format.")
def check_loss_cmd(send_log: Path, archive: Path, until: str | None, skew_ms: int,
                   max_latency_s: float, fmt: str) -> None:
    """Every data frame in the send log is archived byte-identical, backfilled, or in a gap.

    Reports per stream: sent, archived, backfilled (aggTrade from REST), in gap, duplicates,
    reorders and unexplained holes. Exits 1 on any hole, duplicate or unsent row.
    """
    report = check_loss(read_send_log(send_log), archive, until_ns=parse_time(until),
                        skew_ns=skew_ms * 1_000_000,
                        max_latency_ns=int(max_latency_s * 1e9))
    if fmt == "json":
        click.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_table(report)
    if not report.ok:
        total = report.total()
        raise LossFound(f"loss invariant broken: {total.holes} unexplained hole(s), "
                        f"{total.duplicates} duplicate(s), {total.unsent} unsent row(s)")
