"""The baseline consumer: a bare aiohttp client that reads and orjson-decodes every frame.

Run as ``python -m benchmarks._client --ws-url ws://127.0.0.1:P --count N``. It opens one
combined-stream connection per endpoint class (``/public/stream?streams=..``,
``/market/stream?streams=..``, the same split a Binance recorder must make, BINANCE.md
section 1), decodes every frame with ``orjson.loads`` and stops after ``N`` frames (or on
SIGTERM when ``N`` is 0). With ``--null`` it upgrades by hand and discards the bytes unread,
which measures the feeder's ceiling. It prints one JSON line:
``{"received": n, "t_first_ns": .., "t_last_ns": ..}`` (``time.monotonic_ns``, comparable
across processes on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import aiohttp
import orjson

from benchmarks._feed import STREAMS
from schemas.streams import parse_stream


def vmhwm_mb() -> float:
    """Peak resident set size of this process (``VmHWM``), in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def route_urls(ws_url: str, streams: Sequence[str]) -> list[str]:
    """One combined-stream URL per endpoint class of ``streams``."""
    by_route: dict[str, list[str]] = {}
    for s in streams:
        by_route.setdefault(parse_stream(s).endpoint.value, []).append(s)
    return [f"{ws_url}/{route}/stream?streams={'/'.join(ss)}" for route, ss in by_route.items()]


class Counter:
    """Shared receive counter of the client's connections."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.received = 0
        self.t_first_ns = 0
        self.t_last_ns = 0
        self.done = asyncio.Event()


async def _consume(session: aiohttp.ClientSession, url: str, counter: Counter) -> None:
    async with session.ws_connect(url, max_msg_size=0, autoping=True) as sock:
        while True:
            msg = await sock.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return
            orjson.loads(msg.data)
            if counter.received == 0:
                counter.t_first_ns = time.monotonic_ns()
            counter.received += 1
            if counter.received == counter.target:
                counter.t_last_ns = time.monotonic_ns()
                counter.done.set()


async def _null_sink(url: str, stop: asyncio.Event) -> int:
    """Upgrade by hand and discard every byte (the feeder's ceiling); return bytes read."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    total = 0
    try:
        while not stop.is_set():
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    finally:
        writer.close()
    return total


async def _main_null(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.ensure_future(_null_sink(u, stop)) for u in route_urls(args.ws_url, STREAMS)]
    await stop.wait()
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await t
    print(orjson.dumps({"received": 0, "vmhwm_mb": vmhwm_mb()}).decode(), flush=True)


async def _main(args: argparse.Namespace) -> None:
    if args.null:
        await _main_null(args)
        return
    counter = Counter(args.count)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, counter.done.set)
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.ensure_future(_consume(session, u, counter))
                 for u in route_urls(args.ws_url, STREAMS)]
        try:
            await asyncio.wait_for(counter.done.wait(), timeout=args.timeout)
        except TimeoutError:
            pass
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                    await t
    if counter.t_last_ns == 0:
        counter.t_last_ns = time.monotonic_ns()
    print(orjson.dumps({"received": counter.received, "t_first_ns": counter.t_first_ns,
                        "t_last_ns": counter.t_last_ns, "vmhwm_mb": vmhwm_mb()}).decode(),
          flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks._client``."""
    p = argparse.ArgumentParser(prog="benchmarks._client")
    p.add_argument("--ws-url", required=True)
    p.add_argument("--count", type=int, default=0, help="stop after N frames; 0 = on SIGTERM")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--null", action="store_true",
                   help="discard raw bytes without websocket parsing (feeder ceiling)")
    asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    main()
