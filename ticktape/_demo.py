"""``ticktape demo``: simulated exchange -> record -> query -> replay, offline, in one process.

Everything runs on 127.0.0.1: a seeded :class:`~replay.sim.exchange.SimExchange` with two
injected faults (a dropped connection and skipped aggTrade ids, so the gap detector and the
REST repair have something to show), the real :class:`~recorder.Recorder` writing an archive,
then the same ``stats``/``gaps``/``query`` commands a user would type, and a replay of the first
seconds at original speed through a printing handler.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from recorder import Recorder, RecorderConfig
from replay import Archive, Replayer
from replay.sim.config import SimConfig
from replay.sim.exchange import SimExchange
from replay.sim.faults import Fault, FaultKind
from replay.wire.server import WireConfig
from schemas.errors import ConfigError
from schemas.message import Gap, Message

DEMO_STREAMS = (
    "btcusdt@aggTrade",
    "btcusdt@depth@100ms",
    "btcusdt@bookTicker",
    "btcusdt@markPrice@1s",
    "btcusdt@kline_1m",
    "ethusdt@aggTrade",
    "ethusdt@bookTicker",
    "!markPrice@arr@1s",
)
_ARCHIVE_PARTS = {"streams", "gaps", "journal"}

OHLCV_SQL = """
SELECT symbol,
       time_bucket(INTERVAL 1 minute, trade_time) AS minute,
       first(price ORDER BY agg_trade_id) AS open, max(price) AS high,
       min(price) AS low, last(price ORDER BY agg_trade_id) AS close,
       round(sum(qty), 3) AS volume, count(*) AS trades
FROM agg_trades GROUP BY ALL ORDER BY symbol, minute
""".strip()


def _fresh_archive(path: Path) -> None:
    """Empty ``path`` if it holds only a previous demo archive; refuse anything else."""
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(f"demo archive {path} exists and is not a directory")
    strangers = {p.name for p in path.iterdir()} - _ARCHIVE_PARTS
    if strangers:
        raise ConfigError(f"{path} holds files that are not a ticktape archive "
                          f"({', '.join(sorted(strangers)[:3])}); move them or pick --archive")
    shutil.rmtree(path)


class PrintingHandler:
    """A live/replay handler that prints aggTrades and gaps and counts everything."""

    def __init__(self, console: Console, limit: int = 25) -> None:
        self.console = console
        self.counts: Counter[str] = Counter()
        self.limit = limit
        self.printed = 0

    async def on_message(self, msg: Message) -> None:
        self.counts[msg.stream] += 1
        if msg.stream.endswith("@aggTrade") and self.printed < self.limit:
            self.printed += 1
            d = msg.data
            side = "sell" if d.get("m") else "buy "
            self.console.print(f"  {msg.recv_ns}  {d.get('s')} trade #{d.get('a')} {side} "
                               f"{d.get('q')} @ {d.get('p')}", highlight=False)

    async def on_gap(self, gap: Gap) -> None:
        self.counts["<gaps>"] += 1
        self.console.print(f"  [yellow]gap[/] {gap.kind.value} on {gap.stream}: "
                           f"{gap.duration_ns / 1e6:.0f} ms {gap.detail}")


async def _record(console: Console, archive: Path, seconds: float) -> Recorder:
    faults = (Fault(FaultKind.DROP, at=seconds * 0.4, conn=1),
              Fault(FaultKind.SKIP, at=seconds * 0.6, count=3))
    sim_config = SimConfig(seed=7, rate=400.0, faults=faults)
    async with SimExchange(sim_config, WireConfig(port=0), keep_send_log=False) as sim:
        console.print(f"[bold]1. simulated exchange[/] on {sim.ws_url} (seeded, offline), "
                      "faults: one dropped connection, three skipped aggTrade ids")
        config = RecorderConfig(streams=DEMO_STREAMS, archive=archive, ws_url=sim.ws_url,
                                rest_url=sim.rest_url, duration_s=seconds, rotate_s=5.0)
        recorder = Recorder(config)
        console.print(f"[bold]2. recording[/] {len(DEMO_STREAMS)} streams for {seconds:.0f} s "
                      f"into {archive}")
        with Progress(TextColumn("  {task.description}"), BarColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[status]}"), console=console,
                      transient=False) as progress:
            task = progress.add_task("recording", total=seconds, status="")
            run = asyncio.create_task(recorder.run())
            started = time.monotonic()
            try:
                while not run.done():
                    msgs = sum(c.messages for c in recorder.counters.streams.values())
                    gaps = sum(recorder.counters.gaps.values())
                    progress.update(task, completed=min(seconds, time.monotonic() - started),
                                    status=f"{msgs:>7} msgs  {gaps} gaps")
                    await asyncio.wait({run}, timeout=0.25)
            finally:
                if not run.done():
                    recorder.stop()
                await run
            progress.update(task, completed=seconds)
    return recorder


async def _replay(console: Console, archive: Path, seconds: float) -> None:
    first = min((r[0] for r in Archive(archive).time_ranges().values()), default=None)
    if first is None:
        console.print("  (nothing recorded)")
        return
    handler = PrintingHandler(console)
    end = first + int(seconds * 1e9)
    await Replayer(archive, start=first, end=end, speed=1.0).run(handler)
    total = sum(v for k, v in handler.counts.items() if k != "<gaps>")
    console.print(f"  replayed {total} messages of {len(handler.counts)} streams in "
                  f"{seconds:.0f} s of original time (first {handler.printed} aggTrades shown)")


def run_demo(archive: Path, seconds: float = 15.0, replay_seconds: float = 5.0) -> None:
    """Run the whole tour; raises :class:`~schemas.errors.TicktapeError` on failure."""
    from ticktape.cli import cli  # the same commands a user types

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    _fresh_archive(archive)
    recorder = asyncio.run(_record(console, archive, seconds))
    msgs = sum(c.messages for c in recorder.counters.streams.values())
    console.print(f"  recorded {msgs} messages, {recorder.gaps_written} gap records\n")
    for title, args in (
        ("3. stats", ["stats", "--archive", str(archive)]),
        ("4. gaps (every hole is data; recovered = backfilled from REST)",
         ["gaps", "--archive", str(archive)]),
        ("5. 1-minute OHLCV with DuckDB SQL", ["query", "--archive", str(archive), OHLCV_SQL]),
    ):
        console.print(f"[bold]{title}[/]")
        cli.main(args=args, prog_name="ticktape", standalone_mode=False)
        console.print()
    console.print(f"[bold]6. replay[/] the first {replay_seconds:.0f} s at original speed "
                  "through a printing handler (the same handler type live recording uses)")
    asyncio.run(_replay(console, archive, replay_seconds))
    console.print(f"""
[bold]Next:[/]
  ticktape query --archive {archive} "SELECT stream, count(*) FROM messages GROUP BY 1"
  ticktape replay --archive {archive} --speed 10 --format text
  ticktape serve --archive {archive} --port 9443     # then point a Binance client at it
  ticktape verify --archive {archive}
  ticktape query --archive data/sample "SELECT count(*) FROM book_tickers"   # real BTCUSDT data
  ticktape sim --port 9443 & ticktape record --streams btcusdt@aggTrade \\
      --ws-url ws://127.0.0.1:9443 --rest-url http://127.0.0.1:9443 --duration 30
""", soft_wrap=True)


__all__ = ["DEMO_STREAMS", "OHLCV_SQL", "PrintingHandler", "run_demo"]
