"""``ticktape import``: bring Tardis-style or hftbacktest captures into an archive."""

from __future__ import annotations

from pathlib import Path

import click

from recorder._import import FORMATS, ImportFormat, import_file
from replay._times import parse_time
from schemas.errors import ConfigError
from ticktape.cli._group import cli
from ticktape.cli.query import archive_option


def parse_duration_s(text: str) -> float:
    """``15m`` / ``1h`` / ``90s`` / ``900`` -> seconds."""
    t = text.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86_400}.get(t[-1:])
    number = t[:-1] if scale is not None else t
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"bad duration {text!r}: expected e.g. 15m, 1h, 900s")
    return value


@cli.command(name="import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@archive_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="tardis: '<ISO time> <frame>' lines; hftbacktest: '<epoch ns> <frame>'.")
@click.option("--start", help="Keep frames received at or after T (ISO-8601 UTC or epoch ns).")
@click.option("--end", help="Keep frames received before T.")
@click.option("--rotate", default="15m", show_default=True,
              help="Partition length, as the recorder's --rotate.")
def import_cmd(files: tuple[Path, ...], archive: Path, fmt: ImportFormat, start: str | None,
               end: str | None, rotate: str) -> None:
    """Convert captures (plain or gzip) into archive partitions, raw bytes kept exactly.

    Combined-stream frames are split per stream; bare REST depth snapshots
    ({"lastUpdateId":..}) become <symbol>@depthSnapshot rows with source 'rest'.
    """
    start_ns, end_ns = parse_time(start), parse_time(end)
    rotate_s = parse_duration_s(rotate)
    for f in files:
        result = import_file(archive, f, fmt, start_ns, end_ns, rotate_s)
        streams = ", ".join(f"{s} {n:,}" for s, n in sorted(result.messages.items()))
        click.echo(f"imported {f} ({result.format}): {result.total:,} messages in "
                   f"{len(result.paths)} file(s): {streams}")


__all__ = ["import_cmd", "parse_duration_s"]
