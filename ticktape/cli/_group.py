"""The root click group, shared by every command module."""

from __future__ import annotations

import click

from ticktape._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ticktape")
def cli() -> None:
    """ticktape: record Binance USD-M futures websockets to Parquet, query with SQL, replay.

    Start with `ticktape demo` (offline). Every command has --help.
    """


__all__ = ["cli"]
