"""The ``ticktape`` command line (click). One module per command family.

Every command raises :class:`schemas.errors.TicktapeError` (or a click usage error) for bad
input; :func:`main` turns those into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import click

from schemas.errors import TicktapeError
from ticktape.cli._group import cli

# Each import below registers its commands on ``cli``.
from ticktape.cli import sim as _sim  # noqa: F401  isort: skip
from ticktape.cli import replay as _replay  # noqa: F401  isort: skip
from ticktape.cli import record as _record  # noqa: F401  isort: skip
from ticktape.cli import query as _query  # noqa: F401  isort: skip
from ticktape.cli import tools as _tools  # noqa: F401  isort: skip
from ticktape.cli import importer as _importer  # noqa: F401  isort: skip
from ticktape.cli import demo as _demo  # noqa: F401  isort: skip
from ticktape.cli import checkloss as _checkloss  # noqa: F401  isort: skip

EXIT_ERROR = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, mapping errors to one line and an exit code."""
    try:
        # standalone_mode=False returns ctx.exit(N)'s code instead of raising it.
        code = cli.main(args=argv, prog_name="ticktape", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("ticktape: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"ticktape: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except TicktapeError as exc:
        click.echo(f"ticktape: error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", EXIT_ERROR))
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        click.echo(f"ticktape: error: {exc.strerror or exc}"
                   + (f": {exc.filename}" if exc.filename else ""), err=True)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)


__all__ = ["cli", "main"]
