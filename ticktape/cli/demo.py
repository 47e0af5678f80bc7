"""``ticktape demo``: the offline tour (sim -> record -> query -> replay)."""

from __future__ import annotations

from pathlib import Path

import click

from ticktape.cli._group import cli


@cli.command("demo")
@click.option("--archive", type=click.Path(path_type=Path), default=Path("data/demo"),
              show_default=True, help="Where to write the demo archive (emptied first).")
@click.option("--seconds", type=click.FloatRange(2, 600), default=15.0, show_default=True,
              help="How long to record.")
def demo(archive: Path, seconds: float) -> None:
    """Simulated exchange -> record -> stats/gaps -> SQL -> replay, offline, in ~30 s."""
    from ticktape._demo import run_demo

    run_demo(archive, seconds=seconds)


__all__ = ["demo"]
