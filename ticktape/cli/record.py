"""``ticktape record``: the capture daemon.

Records the given streams into the archive. ``--duration N`` records N seconds, seals every
partition and exits 0; otherwise it runs until SIGTERM/SIGINT and then seals everything
within 5 s. Every bad input (stream name, URL, archive path, config file) is one line on
stderr and a non-zero exit, before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path

import click

from recorder._config import (
    DEFAULT_ARCHIVE,
    DEFAULT_REST_URL,
    DEFAULT_WS_URL,
    RecorderConfig,
    load_config,
    parse_duration,
)
from recorder._recorder import Recorder
from recorder._status import run_status, setup_logging
from recorder._userdata import RedactingFilter
from schemas.errors import ArchiveError, ConfigError
from ticktape.cli._group import cli


def _check_archive(path: Path) -> None:
    """Fail early, in one line, for an archive path that cannot be a directory we write."""
    if path.exists() and not path.is_dir():
        raise ArchiveError(f"archive path {path} is a file, not a directory")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ArchiveError(f"archive path {path}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ArchiveError(f"archive path {path}: {probe} is not writable")


def build_config(streams: str | None, config_file: str | None, archive: str | None,
                 ws_url: str | None, rest_url: str | None, duration: float | None,
                 rotate: str | None, metrics_port: int | None,
                 user_data: bool) -> RecorderConfig:
    """Merge CLI options over the config file (if any) and validate everything."""
    if streams is None and config_file is None and not user_data:
        raise ConfigError("give --streams S[,S..] or --config FILE")
    base = load_config(config_file) if config_file else RecorderConfig()
    changes: dict[str, object] = {}
    if streams is not None:
        changes["streams"] = tuple(s for s in streams.split(",") if s.strip()) or ("",)
    if archive is not None:
        changes["archive"] = Path(archive)
    if ws_url is not None:
        changes["ws_url"] = ws_url
    if rest_url is not None:
        changes["rest_url"] = rest_url
    if duration is not None:
        changes["duration_s"] = duration
    if rotate is not None:
        changes["rotate_s"] = parse_duration(rotate, "--rotate")
    if metrics_port is not None:
        changes["metrics_port"] = metrics_port
    if user_data:
        changes["user_data"] = True
    config = dataclasses.replace(base, **changes).validated()  # type: ignore[arg-type]
    _check_archive(config.archive)
    return config


async def _record(recorder: Recorder, tty: bool) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, recorder.stop)
    try:
        async with asyncio.TaskGroup() as tg:
            status = tg.create_task(run_status(recorder.counters, tty,
                                               stopped=lambda: recorder.stopping))
            try:
                await recorder.run()
            finally:
                status.cancel()
    except ExceptionGroup as group:
        # A recorder failure (e.g. disk full) must reach main() as its one-line error, not as
        # a TaskGroup traceback.
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        raise leaf from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


@cli.command("record")
@click.option("--streams", metavar="S[,S..]",
              help="Comma-separated stream names, e.g. btcusdt@aggTrade,!markPrice@arr.")
@click.option("--config", "config_file", metavar="FILE", help="TOML config file.")
@click.option("--archive", metavar="DIR", help=f"Archive root [default: {DEFAULT_ARCHIVE}].")
@click.option("--ws-url", metavar="URL", help=f"Websocket base URL [default: {DEFAULT_WS_URL}].")
@click.option("--rest-url", metavar="URL", help=f"REST base URL [default: {DEFAULT_REST_URL}].")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Record this many seconds, seal everything, exit 0.")
@click.option("--rotate", metavar="DURATION", help="Partition rotation, e.g. 15m [default: 15m].")
@click.option("--metrics-port", type=click.IntRange(0, 65535), metavar="N",
              help="Serve /metrics and /healthz on 127.0.0.1:N.")
@click.option("--user-data", is_flag=True,
              help="Also record the user data stream (API key from $TICKTAPE_API_KEY or .env).")
@click.option("--json-logs/--no-json-logs", default=None,
              help="Structured JSON log lines [default: when stderr is not a terminal].")
def record(streams: str | None, config_file: str | None, archive: str | None,
           ws_url: str | None, rest_url: str | None, duration: float | None,
           rotate: str | None, metrics_port: int | None, user_data: bool,
           json_logs: bool | None) -> None:
    """Record Binance USD-M websocket streams into the Parquet archive."""
    config = build_config(streams, config_file, archive, ws_url, rest_url, duration, rotate,
                          metrics_port, user_data)
    recorder = Recorder(config)
    tty = sys.stderr.isatty()
    as_json = (not tty) if json_logs is None else json_logs
    handler = setup_logging(sys.stderr, as_json, [RedactingFilter(recorder.secrets)])
    try:
        asyncio.run(_record(recorder, tty and not as_json))
    finally:
        logging.getLogger("ticktape").removeHandler(handler)
    summary = sum(c.messages for c in recorder.counters.streams.values())
    click.echo(f"recorded {summary} messages on {len(recorder.counters.streams)} streams, "
               f"{recorder.gaps_written} gaps, into {config.archive}", err=True)


__all__ = ["build_config", "record"]
