"""``ticktape serve`` at speed 0 to one websocket client.

The server runs as the real CLI in a subprocess (``python -m ticktape serve --speed 0``) over
the benchmark session archive; one aiohttp client in this process opens
``/stream?streams=<8 streams>`` and counts frames until it has every recorded message. The
rate is messages over the time from the first frame to the last. For scale, the same client
reading the loopback feeder (pre-encoded frames) is the baseline: the most this client can
take.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from pathlib import Path

import aiohttp

from benchmarks._common import Config, Figure, Outcome, at_least, missing
from benchmarks._feed import STREAMS
from benchmarks._procs import BenchError, FeederProc, child_env, python_cmd
from benchmarks._runs import stored_rows
from benchmarks._session import session_archive

NAME = "serve"
KEYS = ["serve_msgs_per_s"]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def count_frames(url: str, expected: int, timeout: float) -> tuple[int, float]:
    """Read text frames from ``url`` until ``expected``; return (frames, first-to-last s)."""
    n, t_first, t_last = 0, 0.0, 0.0
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url, max_msg_size=0) as sock, asyncio.timeout(timeout):
        while n < expected:
            msg = await sock.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            if n == 0:
                t_first = time.perf_counter()
            n += 1
        t_last = time.perf_counter()
    return n, t_last - t_first


async def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"ticktape serve exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"ticktape serve not listening after {timeout:.0f} s")


def serve_rate(root: Path, log: Path, expected: int, timeout: float) -> tuple[int, float]:
    """Start the server, read everything once, stop it."""
    port = free_port()
    cmd = python_cmd("ticktape", "serve", "--archive", str(root), "--port", str(port),
                     "--speed", "0")
    with log.open("ab") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=child_env())
    try:
        async def go() -> tuple[int, float]:
            await _wait_listening(port, proc, 60.0)
            url = f"ws://127.0.0.1:{port}/stream?streams={'/'.join(STREAMS)}"
            return await count_frames(url, expected, timeout)

        return asyncio.run(go())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client_ceiling(n: int, timeout: float) -> float:
    """The same client on the loopback feeder (one ``/stream`` connection of all streams)."""
    with FeederProc(n) as feeder:
        url = f"{feeder.ws_url}/stream?streams={'/'.join(STREAMS)}"
        got, secs = asyncio.run(count_frames(url, n, timeout))
    return got / secs if secs > 0 else 0.0


def run(cfg: Config) -> Outcome:
    """Measure serve, then the client ceiling."""
    out = Outcome()
    reason = missing("replay._archive_source") or missing("replay.wire.server")
    root = session_archive(cfg, cfg.pick(300_000, 1_000_000))
    if reason or isinstance(root, str):
        out.not_measured("ticktape serve, speed 0", KEYS, reason or str(root), "msgs/s")
        return out
    expected = stored_rows(root)
    work = cfg.workdir / NAME
    work.mkdir(exist_ok=True)
    got, secs = serve_rate(root, work / "serve.log", expected, cfg.pick(60, 180))
    rate = got / secs if secs > 0 else 0.0
    ceiling = client_ceiling(expected, cfg.pick(60, 180))
    out.figures.append(Figure(f"ticktape serve, speed 0, 1 client ({got:,} msgs)", rate,
                              "msgs/s", ceiling, ">= 150k msgs/s", at_least(rate, 150_000)))
    if got < expected:
        out.notes.append(f"serve: client got {got:,} of {expected:,} messages")
    out.keys.update({"serve_msgs_per_s": round(rate),
                     "serve_client_ceiling_msgs_per_s": round(ceiling)})
    return out


__all__ = ["NAME", "count_frames", "run"]
