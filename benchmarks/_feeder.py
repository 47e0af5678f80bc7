"""Loopback websocket feeder that is never the bottleneck (run as a subprocess).

``python -m benchmarks._feeder --count N [--rate R] [--loops L]`` listens on 127.0.0.1, prints
``{"event": "ready", "port": P}`` on stdout, accepts websocket upgrades on any path (streams
from the ``streams=`` query, ``/ws/<s1>/<s2>`` paths and SUBSCRIBE messages), and once the
subscribed streams cover the benchmark's stream set it sends the pre-encoded frames: all at once
in 256 KB ``transport.write`` chunks (``--rate 0``) or paced to ``R`` msgs/s. It answers the
REST calls a recorder makes on start (depth snapshot, aggTrades, time, ping) with small JSON.
It prints ``{"event": "done", ...}`` when everything was sent, and exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from benchmarks import _wsproto as ws
from benchmarks._feed import STREAMS, FeedMessage, cached

CHUNK_BYTES = 256 * 1024


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    combined: bool
    streams: set[str] = field(default_factory=set)
    closed: bool = False


class Feeder:
    """Serves the benchmark feed to whoever connects; see the module docstring."""

    def __init__(self, messages: list[FeedMessage], rate: float, loops: int) -> None:
        self._messages = messages
        self._rate = rate
        self._loops = loops
        self._conns: list[_Conn] = []
        self._subscribed = asyncio.Event()
        self._frames: dict[bool, list[bytes]] = {}
        self.t_first_ns = 0
        self.t_last_ns = 0
        self.sent = 0

    def frames(self, combined: bool) -> list[bytes]:
        """All frames, enveloped (``/stream``) or bare (``/ws``), encoded once."""
        if combined not in self._frames:
            self._frames[combined] = [
                ws.encode_frame((m.envelope if combined else m.payload).encode())
                for m in self._messages
            ]
        return self._frames[combined]

    def _note_streams(self, conn: _Conn, streams: list[str]) -> None:
        conn.streams.update(streams)
        union: set[str] = set()
        for c in self._conns:
            union |= c.streams
        if union >= set(STREAMS):
            self._subscribed.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One TCP connection: REST request or websocket session."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            req = ws.parse_request(head[:-4])
            if not req.is_upgrade:
                writer.write(ws.http_response(self._rest(req.target)))
                await writer.drain()
                return
            url = urlsplit(req.target)
            combined = "/stream" in url.path
            conn = _Conn(writer, combined)
            self._conns.append(conn)
            writer.write(ws.upgrade_response(req.headers.get("sec-websocket-key", "")))
            streams = [s for v in parse_qs(url.query).get("streams", []) for s in v.split("/")]
            if "/ws/" in url.path:
                streams += unquote(url.path.split("/ws/", 1)[1]).split("/")
            self._note_streams(conn, [s for s in streams if s])
            await self._read_client(reader, conn)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _rest(self, target: str) -> bytes:
        url = urlsplit(target)
        now_ms = time.time_ns() // 1_000_000
        if url.path.endswith("/depth"):
            return orjson.dumps({"lastUpdateId": 1, "E": now_ms, "T": now_ms,
                                 "bids": [], "asks": []})
        if url.path.endswith("/aggTrades"):
            return b"[]"
        if url.path.endswith("/time"):
            return orjson.dumps({"serverTime": now_ms})
        if url.path.endswith("/exchangeInfo"):
            return orjson.dumps({"timezone": "UTC", "serverTime": now_ms, "symbols": []})
        return b"{}"

    async def _read_client(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        buf = bytearray()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            buf += data
            while (frame := ws.parse_frame(buf)) is not None:
                opcode, payload, used = frame
                del buf[:used]
                if opcode == ws.OP_PING:
                    conn.writer.write(ws.encode_frame(payload, ws.OP_PONG))
                elif opcode == ws.OP_CLOSE:
                    conn.writer.write(ws.encode_frame(payload[:2], ws.OP_CLOSE))
                    conn.closed = True
                    return
                elif opcode == ws.OP_TEXT:
                    self._control(conn, payload)
        conn.closed = True

    def _control(self, conn: _Conn, payload: bytes) -> None:
        """Answer SUBSCRIBE / LIST_SUBSCRIPTIONS the way Binance does (BINANCE.md section 2)."""
        try:
            req = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(req, dict):
            return
        result = None
        if req.get("method") == "SUBSCRIBE":
            self._note_streams(conn, [str(s) for s in req.get("params", [])])
        elif req.get("method") == "LIST_SUBSCRIPTIONS":
            result = sorted(conn.streams)
        reply = orjson.dumps({"result": result, "id": req.get("id")})
        conn.writer.write(ws.encode_frame(reply))

    async def run_sending(self) -> None:
        """Wait for the subscriptions, then send everything (bulk or paced)."""
        await self._subscribed.wait()
        # Let late SUBSCRIBEs of other shards arrive and the consumer finish starting up (the
        # recorder's partition writer process imports pyarrow meanwhile): both consumers are
        # measured from the first frame, start-up excluded, as a 24/7 daemon would be.
        await asyncio.sleep(SETTLE_S)
        conns = list(self._conns)
        prepared = [self._chunks(c) for c in conns] if self._rate <= 0 else []
        self.t_first_ns = time.monotonic_ns()
        print(orjson.dumps({"event": "started", "t_first_ns": self.t_first_ns}).decode(),
              flush=True)
        if self._rate > 0:
            await self._send_paced()
        else:
            await asyncio.gather(*(self._send_bulk(c, chunks, n)
                                   for c, (chunks, n) in zip(conns, prepared, strict=True)))
        self.t_last_ns = time.monotonic_ns()

    def _conn_index(self, conn: _Conn) -> list[int]:
        return [i for i, m in enumerate(self._messages) if m.stream in conn.streams]

    def _chunks(self, conn: _Conn) -> tuple[list[bytes], int]:
        """The connection's frames joined into ~256 KB write chunks, and their count."""
        frames = self.frames(conn.combined)
        mine = [frames[i] for i in self._conn_index(conn)]
        chunks: list[bytes] = []
        cur: list[bytes] = []
        size = 0
        for f in mine:
            cur.append(f)
            size += len(f)
            if size >= CHUNK_BYTES:
                chunks.append(b"".join(cur))
                cur, size = [], 0
        if cur:
            chunks.append(b"".join(cur))
        return chunks, len(mine)

    async def _send_bulk(self, conn: _Conn, chunks: list[bytes], count: int) -> None:
        for _ in range(self._loops):
            for chunk in chunks:
                if conn.closed:
                    return
                conn.writer.write(chunk)
                await conn.writer.drain()
            self.sent += count

    async def _send_paced(self) -> None:
        """Write due frames about every millisecond: ``rate`` msgs/s across all connections."""
        routes: dict[str, list[tuple[_Conn, list[bytes]]]] = {}
        for conn in self._conns:
            for s in conn.streams:
                routes.setdefault(s, []).append((conn, self.frames(conn.combined)))
        msgs = self._messages
        total = len(msgs) * self._loops
        t0 = time.monotonic()
        while self.sent < total:
            due = min(total, int((time.monotonic() - t0) * self._rate))
            out: dict[_Conn, list[bytes]] = {}
            for k in range(self.sent, due):
                i = k % len(msgs)
                for conn, frames in routes.get(msgs[i].stream, ()):
                    out.setdefault(conn, []).append(frames[i])
            self.sent = max(self.sent, due)
            for conn, parts in out.items():
                if not conn.closed:
                    conn.writer.write(b"".join(parts))
            await asyncio.sleep(0.001)


SETTLE_S = 1.0
"""Pause between the last subscription and the first frame."""


async def _main(args: argparse.Namespace) -> None:
    feeder = Feeder(cached(args.count, args.seed), args.rate, args.loops)
    feeder.frames(True)  # encode before anyone connects
    server = await asyncio.start_server(feeder.handle, "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    print(orjson.dumps({"event": "ready", "port": port}).decode(), flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    stdin_closed = asyncio.ensure_future(stdin.read())
    async with server:
        sending = asyncio.ensure_future(feeder.run_sending())
        try:
            done, _ = await asyncio.wait({sending, stdin_closed}, timeout=args.lifetime,
                                         return_when=asyncio.FIRST_COMPLETED)
            if sending in done:
                print(orjson.dumps({"event": "done", "sent": feeder.sent,
                                    "t_first_ns": feeder.t_first_ns,
                                    "t_last_ns": feeder.t_last_ns}).decode(), flush=True)
                await asyncio.wait({stdin_closed}, timeout=args.lifetime)
        finally:
            for task in (sending, stdin_closed):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks._feeder``."""
    p = argparse.ArgumentParser(prog="benchmarks._feeder")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rate", type=float, default=0.0, help="msgs/s; 0 = as fast as possible")
    p.add_argument("--loops", type=int, default=1)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--lifetime", type=float, default=600.0)
    asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    main()
