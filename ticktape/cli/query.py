"""``ticktape query`` and ``ticktape sql``: plain SQL over the archive's DuckDB views."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import click
import duckdb
import orjson
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from replay._catalog import connect, view_names
from schemas.errors import ConfigError, QueryError
from ticktape.cli._group import cli

DEFAULT_ARCHIVE = "./data/archive"
FORMATS = ("table", "csv", "json", "ndjson", "parquet")
EXIT_BAD_SQL = 2
CHUNK_ROWS = 10_000


class SqlError(QueryError):
    """DuckDB rejected or failed the SQL; the CLI exits with status 2."""

    exit_code = EXIT_BAD_SQL


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (DuckDB messages span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def run_sql(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    """Execute ``sql``; DuckDB errors become :class:`SqlError` with DuckDB's message."""
    try:
        return con.execute(sql)
    except duckdb.Error as exc:
        raise SqlError(one_line(exc)) from exc


def _chunks(cur: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[Any, ...]]]:
    try:
        while rows := cur.fetchmany(CHUNK_ROWS):
            yield rows
    except duckdb.Error as exc:
        raise SqlError(one_line(exc)) from exc


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=str).decode()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _write_table(cur: duckdb.DuckDBPyConnection, names: Sequence[str], out: IO[str]) -> None:
    table = Table(*names, show_lines=False, header_style="bold")
    count = 0
    for rows in _chunks(cur):
        for row in rows:
            table.add_row(*(_cell(v) if v is not None else "NULL" for v in row))
        count += len(rows)
    width = None if out.isatty() else 100_000
    console = Console(file=out, width=width, soft_wrap=False, highlight=False)
    console.print(table, crop=False)
    console.print(f"{count} row{'s' if count != 1 else ''}", style="dim")


def _write_csv(cur: duckdb.DuckDBPyConnection, names: Sequence[str], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for rows in _chunks(cur):
        writer.writerows([_cell(v) for v in row] for row in rows)


def _write_json(cur: duckdb.DuckDBPyConnection, names: Sequence[str], out: IO[str],
                lines: bool) -> None:
    first = True
    if not lines:
        out.write("[")
    for rows in _chunks(cur):
        for row in rows:
            text = orjson.dumps(dict(zip(names, row, strict=True)), default=str).decode()
            if lines:
                out.write(text + "\n")
            else:
                out.write(("\n" if first else ",\n") + text)
            first = False
    if not lines:
        out.write("\n]\n" if not first else "]\n")


def write_parquet(con: duckdb.DuckDBPyConnection, sql: str, output: Path) -> None:
    """Run ``sql`` and stream its result into a zstd Parquet file."""
    try:
        rel = con.sql(sql)
        if rel is None:
            return
        reader = rel.to_arrow_reader(CHUNK_ROWS * 10)
        with pq.ParquetWriter(output, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
    except duckdb.Error as exc:
        raise SqlError(one_line(exc)) from exc


def emit(cur: duckdb.DuckDBPyConnection, fmt: str, output: Path | None) -> None:
    """Write the result of ``cur`` in ``fmt`` (table, csv, json, ndjson) to ``output``."""
    if cur.description is None:
        return
    names = [str(d[0]) for d in cur.description]
    with ExitStack() as stack:
        out: IO[str] = (stack.enter_context(output.open("w", encoding="utf-8", newline=""))
                        if output is not None else sys.stdout)
        if fmt == "table":
            _write_table(cur, names, out)
        elif fmt == "csv":
            _write_csv(cur, names, out)
        else:
            _write_json(cur, names, out, lines=fmt == "ndjson")


archive_option = click.option(
    "--archive", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ARCHIVE,
    show_default=True, help="Archive root directory.")


@cli.command()
@archive_option
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format (parquet needs --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result to FILE instead of stdout.")
def query(archive: Path, sql: str, fmt: str, output: Path | None) -> None:
    """Run SQL on the archive's views and print the result.

    Views: agg_trades, trades, mark_prices, klines, book_tickers, depth_updates,
    depth_snapshots, liquidations, tickers, mini_tickers, user_events, ..., messages (every
    stream), gaps. Times: *_ns (epoch ns) and *_time (TIMESTAMP holding UTC). raw is NULL
    where compact stored it as re-derivable (ticktape replay gives the exact text). Example:

    \b
      ticktape query --archive data/sample "SELECT stream, count(*) FROM messages GROUP BY 1"

    Bad SQL prints DuckDB's message on one line and exits with status 2.
    """
    if fmt == "parquet" and output is None:
        raise ConfigError("--format parquet needs --output FILE")
    con = connect(archive)
    try:
        if fmt == "parquet" and output is not None:
            write_parquet(con, sql, output)
        else:
            emit(run_sql(con, sql), fmt, output)
    finally:
        con.close()


@cli.command()
@archive_option
def sql(archive: Path) -> None:
    """Interactive SQL shell on the archive (end statements with ';', quit with .quit or EOF)."""
    con = connect(archive)
    try:
        click.echo(f"ticktape sql on {archive}: views {', '.join(view_names(con))}")
        buffer = io.StringIO()
        while True:
            try:
                line = input("sql> " if not buffer.tell() else "...> ")
            except EOFError:
                break
            if not buffer.tell() and line.strip() in (".quit", ".exit", "\\q"):
                break
            buffer.write(line + "\n")
            if not line.rstrip().endswith(";"):
                continue
            text, buffer = buffer.getvalue(), io.StringIO()
            try:
                emit(run_sql(con, text), "table", None)
            except SqlError as exc:
                click.echo(f"error: {exc}", err=True)
    finally:
        con.close()


__all__ = ["EXIT_BAD_SQL", "SqlError", "archive_option", "emit", "one_line", "query",
           "run_sql", "sql", "write_parquet"]
