"""``ticktape replay`` and ``ticktape serve``: play an archive back, locally or over the wire.

``replay`` delivers messages and gaps through the handler interface and prints them as NDJSON
(``{"stream":..,"recv_ns":..,"data":<payload>}`` with the stored payload text spliced in
unchanged, gaps as ``{"gap":{..}}``) or readable text, or runs ``--handler module:callable``,
or prints the content hash (``--hash``). ``serve`` answers Binance clients from the archive.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import signal
import sys
from collections.abc import Callable
from typing import IO, Any

import click
import orjson

from replay import Archive, HashingHandler, Replayer, format_ns
from schemas.errors import ConfigError
from schemas.handler import Handler, as_handler
from schemas.message import Gap, Message
from ticktape.cli._group import cli

DEFAULT_ARCHIVE = "./data/archive"
TIME_HELP = "ISO-8601 UTC (2024-08-08T23:55:00Z) or epoch ns"


class NdjsonWriter:
    """Handler writing one JSON object a line; payload text spliced in without re-encoding."""

    def __init__(self, out: IO[str]) -> None:
        self.write = out.write

    async def on_message(self, msg: Message) -> None:
        """``{"stream":..,"recv_ns":..,"data":<raw>}``."""
        self.write(f'{{"stream":"{msg.stream}","recv_ns":{msg.recv_ns},"data":{msg.raw}}}\n')

    async def on_gap(self, gap: Gap) -> None:
        """``{"gap":{..}}``."""
        self.write('{"gap":' + orjson.dumps(gap.as_dict()).decode() + "}\n")


class TextWriter:
    """Handler writing one readable line per event."""

    def __init__(self, out: IO[str], width: int = 160) -> None:
        self.write = out.write
        self.width = width

    async def on_message(self, msg: Message) -> None:
        """``<time> <stream> <payload, shortened>``."""
        raw = msg.raw if len(msg.raw) <= self.width else msg.raw[: self.width - 3] + "..."
        self.write(f"{format_ns(msg.recv_ns)}  {msg.stream:<28} {raw}\n")

    async def on_gap(self, gap: Gap) -> None:
        """``<time> GAP <kind> <stream> <duration> ...``."""
        state = "recovered" if gap.recovered else "missing"
        self.write(
            f"{format_ns(gap.start_ns)}  GAP {gap.kind.value} {gap.stream} "
            f"{gap.duration_ns / 1e9:.3f}s until {format_ns(gap.end_ns)} ({state})"
            f"{' ' + gap.detail if gap.detail else ''}\n"
        )


class FanOut:
    """Delivers each event to several handlers in order."""

    def __init__(self, handlers: list[Handler]) -> None:
        self.handlers = handlers

    async def on_message(self, msg: Message) -> None:
        """Forward a message."""
        for handler in self.handlers:
            await handler.on_message(msg)

    async def on_gap(self, gap: Gap) -> None:
        """Forward a gap."""
        for handler in self.handlers:
            await handler.on_gap(gap)


def load_handler(spec: str) -> Handler:
    """Import ``module:callable``; a class is instantiated without arguments."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--handler {spec!r}: expected module:callable")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--handler {spec!r}: cannot import {module_name}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"--handler {spec!r}: {module_name} has no {attr}") from None
    if inspect.isclass(obj):
        obj = obj()
    try:
        return as_handler(obj)
    except TypeError as exc:
        raise ConfigError(f"--handler {spec!r}: {exc}") from exc


@cli.command("replay")
@click.option("--archive", "archive_dir", default=DEFAULT_ARCHIVE, show_default=True,
              help="Archive directory (or a pyarrow filesystem URI such as s3://bucket/path).")
@click.option("--streams", default=None, help="Comma-separated streams (default: all).")
@click.option("--start", default=None, help=f"First instant, inclusive: {TIME_HELP}.")
@click.option("--end", default=None, help=f"Last instant, exclusive: {TIME_HELP}.")
@click.option("--speed", type=float, default=None,
              help="1 = original timing (default), N = N times faster, 0 = as fast as possible "
                   "(default with --hash).")
@click.option("--format", "fmt", type=click.Choice(["ndjson", "text"]), default="ndjson",
              show_default=True, help="Output format of the events.")
@click.option("--handler", "handler_spec", default=None, metavar="MODULE:CALLABLE",
              help="Deliver events to this handler (object with on_message/on_gap, a class, or "
                   "a plain callable) instead of printing them.")
@click.option("--hash", "want_hash", is_flag=True,
              help="Print only the SHA-256 content hash of (stream, recv_ns, raw), in order.")
def replay_command(archive_dir: str, streams: str | None, start: str | None, end: str | None,
                   speed: float | None, fmt: str, handler_spec: str | None,
                   want_hash: bool) -> None:
    """Replay recorded messages and gaps, with their original timing by default."""
    if speed is None:
        speed = 0.0 if want_hash else 1.0
    replayer = Replayer(Archive(archive_dir), streams, start, end, speed)
    out: IO[str] = sys.stdout
    handlers: list[Handler] = []
    hasher = HashingHandler() if want_hash else None
    if handler_spec is not None:
        handlers.append(load_handler(handler_spec))
    elif hasher is None:
        handlers.append(NdjsonWriter(out) if fmt == "ndjson" else TextWriter(out))
    if hasher is not None:
        handlers.append(hasher)
    target: Handler = handlers[0] if len(handlers) == 1 else FanOut(handlers)
    try:
        asyncio.run(replayer.run(target))
        if hasher is not None:
            out.write(hasher.hexdigest() + "\n")
        out.flush()
    except BrokenPipeError:  # `ticktape replay | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _install_stop(stop: asyncio.Event) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        for sig in signals:
            loop.remove_signal_handler(sig)

    return remove


@cli.command("serve")
@click.option("--archive", "archive_dir", default=DEFAULT_ARCHIVE, show_default=True,
              help="Archive directory to serve.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=9444, show_default=True,
              help="TCP port (0 = any free port; the banner on stderr shows it).")
@click.option("--start", default=None, help=f"Where each client's replay starts: {TIME_HELP}.")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="1 = original timing, N = N times faster, 0 = as fast as possible.")
@click.option("--strict-routes", is_flag=True,
              help="Enforce today's Binance route split (/public, /market); by default every "
                   "stream is served on every path.")
@click.option("--gaps", "gap_mode", type=click.Choice(["disconnect", "ignore"]),
              default="disconnect", show_default=True,
              help="At a recorded disconnect or recorder downtime of a client's stream: close "
                   "the client's websocket as the recorder's was closed (its reconnection, "
                   "same address and URL, resumes after the gap), or ignore it.")
def serve_command(archive_dir: str, host: str, port: int, start: str | None, speed: float,
                  strict_routes: bool, gap_mode: str) -> None:
    """Serve an archive over the Binance USD-M websocket + REST protocol.

    A client may choose its own start, end and speed with URL parameters that Binance
    ignores: /stream?streams=btcusdt@aggTrade&start=2024-08-08T23:54:20Z&speed=10. Bad
    values are refused with HTTP 400 and a Binance error (-1100).
    """
    from replay._archive_source import ArchiveSource
    from replay._serve_session import GapMode
    from replay.wire.routing import RoutingMode
    from replay.wire.server import WireConfig, WireServer

    source = ArchiveSource(Archive(archive_dir), start=start, speed=speed,
                           gaps=GapMode(gap_mode))
    mode = RoutingMode.STRICT if strict_routes else RoutingMode.OPEN
    server = WireServer(source, WireConfig(host=host, port=port, routing=mode))

    async def main() -> None:
        stop = asyncio.Event()
        remove = _install_stop(stop)
        try:
            async with server:
                click.echo(f"ticktape serve: {source.describe()} on {server.ws_url} "
                           f"(REST {server.rest_url}); Ctrl-C stops", err=True)
                await stop.wait()
        finally:
            remove()

    asyncio.run(main())


__all__ = ["FanOut", "NdjsonWriter", "TextWriter", "load_handler"]
