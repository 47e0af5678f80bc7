"""Operator view: a rich live table on a terminal, structured JSON log lines otherwise."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from recorder._metrics import RecorderCounters


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``{"ts":..,"level":..,"logger":..,"msg":..}``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
        return orjson.dumps(out).decode()


def setup_logging(stream: TextIO, as_json: bool, filters: list[logging.Filter],
                  level: int = logging.INFO) -> logging.Handler:
    """Route ``ticktape`` logs to ``stream``: JSON lines, or plain text under a live display."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if as_json else
                         logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    for f in filters:
        handler.addFilter(f)
    logger = logging.getLogger("ticktape")
    logger.setLevel(level)
    logger.addHandler(handler)
    logger.propagate = False
    return handler


class _Rates:
    """Per-stream message rate over the last display interval."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._at = time.monotonic()

    def update(self, counters: RecorderCounters) -> dict[str, float]:
        now = time.monotonic()
        dt = max(1e-6, now - self._at)
        rates = {s: (c.messages - self._last.get(s, 0)) / dt for s, c in counters.streams.items()}
        self._last = {s: c.messages for s, c in counters.streams.items()}
        self._at = now
        return rates


def render_table(counters: RecorderCounters, rates: dict[str, float], max_rows: int = 40) -> Table:
    """The status table: per-stream totals, rates, last message age; queues and gaps below."""
    table = Table(title="ticktape record", expand=False)
    for col in ("stream", "messages", "msg/s", "last (s ago)"):
        table.add_column(col, justify="left" if col == "stream" else "right")
    now = time.time_ns()
    for stream, c in sorted(counters.streams.items())[:max_rows]:
        age = (now - c.last_recv_ns) / 1e9 if c.last_recv_ns else float("nan")
        table.add_row(stream, f"{c.messages:,}", f"{rates.get(stream, 0.0):.1f}", f"{age:.1f}")
    hidden = len(counters.streams) - max_rows
    gaps = ", ".join(f"{k}={v}" for k, v in sorted(counters.gaps.items())) or "none"
    queues = ", ".join(f"{k}={v}" for k, v in sorted(counters.queue_depth().items())) or "-"
    table.caption = (f"{'+' + str(hidden) + ' more streams; ' if hidden > 0 else ''}"
                     f"gaps: {gaps} | reconnects: {counters.reconnects()} | queues: {queues}")
    return table


def summary(counters: RecorderCounters) -> str:
    """A one-line summary for the periodic log line."""
    total = sum(c.messages for c in counters.streams.values())
    gaps = sum(counters.gaps.values())
    return (f"status: {total} messages on {len(counters.streams)} streams, {gaps} gaps, "
            f"{counters.reconnects()} reconnects, queues {counters.queue_depth()}")


async def run_status(counters: RecorderCounters, tty: bool, interval_s: float = 1.0,
                     log_every_s: float = 60.0, stopped: Callable[[], bool] = lambda: False,
                     console: Console | None = None) -> None:
    """Show the live table on a TTY, else log :func:`summary` every ``log_every_s``."""
    log = logging.getLogger("ticktape.status")
    if not tty:
        while not stopped():
            await asyncio.sleep(log_every_s)
            log.info("%s", summary(counters))
        return
    rates = _Rates()
    con = console or Console(file=sys.stderr)
    with Live(render_table(counters, {}), console=con, refresh_per_second=4,
              transient=False) as live:
        while not stopped():
            await asyncio.sleep(interval_s)
            live.update(render_table(counters, rates.update(counters)))


__all__ = ["JsonFormatter", "render_table", "run_status", "setup_logging", "summary"]
