"""``ticktape sim``: a seeded Binance USD-M compatible exchange on loopback."""

from __future__ import annotations

import asyncio
import signal

import click

from replay.sim import SimConfig, SimExchange, parse_faults, parse_symbols
from replay.wire import ConnLimits, RoutingMode, WireConfig
from ticktape.cli._group import cli


@cli.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="TCP port; 0 picks a free port (the actual one is printed).")
@click.option("--symbols", default="BTCUSDT,ETHUSDT", show_default=True,
              help="Comma-separated symbols to simulate.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed: the same seed gives the same market.")
@click.option("--faults", "faults_spec", default="", metavar="SPEC",
              help="Faults to inject, e.g. 'drop:at=5;skip:every=2,count=3;close:at=30,"
                   "code=1001'. Kinds: drop, stall, skip, break-pu, malformed, binary, close, "
                   "slow; keys: at, every, conn, count, seconds, code, reason, delay.")
@click.option("--legacy-routes", is_flag=True,
              help="Serve every stream and /ws/<listenKey> on the unrouted /ws and /stream "
                   "paths, as Binance did before 2026-04-23.")
@click.option("--rate", type=click.FloatRange(min=1), default=1000.0, show_default=True,
              help="Target messages/s of the real-time streams, summed over symbols.")
@click.option("--ping-interval", type=click.FloatRange(min=0.01), default=180.0,
              show_default=True, help="Seconds between server pings.")
@click.option("--max-conn-age", type=click.FloatRange(min=0.1), default=86400.0,
              show_default=True, help="Connection lifetime in seconds, then close 1001.")
@click.option("--send-log", "send_log", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="Append every frame sent, per connection, as NDJSON.")
@click.option("--cadence-scale", type=click.FloatRange(min=0.001), default=1.0,
              show_default=True,
              help="Multiply the 1 s+ stream cadences (markPrice, tickers, ...) by this.")
def sim_command(host: str, port: int, symbols: str, seed: int, faults_spec: str,
                legacy_routes: bool, rate: float, ping_interval: float, max_conn_age: float,
                send_log: str | None, cadence_scale: float) -> None:
    """Run a simulated Binance USD-M futures exchange until Ctrl-C / SIGTERM.

    Websocket routes /public, /market and /private (raw /ws/<s1>/<s2> and combined
    /stream?streams=a/b), SUBSCRIBE & co. with Binance's replies and limits, REST
    /fapi/v1/{ping,time,exchangeInfo,depth,aggTrades,listenKey}.
    """
    config = SimConfig(symbols=parse_symbols(symbols), seed=seed, rate=rate,
                       cadence_scale=cadence_scale, faults=parse_faults(faults_spec))
    wire = WireConfig(host=host, port=port,
                      routing=RoutingMode.LEGACY if legacy_routes else RoutingMode.STRICT,
                      limits=ConnLimits(ping_interval=ping_interval, max_age=max_conn_age))
    asyncio.run(_run(config, wire, send_log))


async def _run(config: SimConfig, wire: WireConfig, send_log: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with SimExchange(config, wire, send_log_path=send_log,
                               keep_send_log=False) as sim:
            click.echo(f"ticktape sim: websocket {sim.ws_url}  REST {sim.rest_url}")
            click.echo(f"  e.g. {sim.ws_url}/public/ws/{config.symbols[0].lower()}@depth@100ms"
                       f"  {sim.ws_url}/market/stream?streams="
                       f"{config.symbols[0].lower()}@aggTrade")
            click.echo("  Ctrl-C to stop.", nl=True)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    click.echo("ticktape sim: stopped")


__all__ = ["sim_command"]
