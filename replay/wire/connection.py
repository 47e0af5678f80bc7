"""One client websocket of the wire server: control messages, sending, pings, limits.

Four owned tasks per connection (reader, sender, pinger, lifetime); the first to finish ends
the connection and the others are cancelled and awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from replay.wire.control import ControlState
from replay.wire.frames import text_frames
from replay.wire.routing import RoutingMode, resolve
from replay.wire.sendlog import SendLog, SentKind
from replay.wire.source import Close, Drop, FrameSource, RawFrame, Session, Stall
from schemas.wire import make_envelope

_log = logging.getLogger(__name__)
_GONE = ConnectionError
"""The client went away mid-send: normal, not worth a warning."""

CLOSE_TOO_MANY_REQUESTS = 1008
CLOSE_GOING_AWAY = 1001


@dataclass(frozen=True, slots=True)
class ConnLimits:
    """Per-connection rules (BINANCE.md section 2), all configurable for fast tests."""

    ping_interval: float = 180.0
    """Server ping period (Binance: 3 min)."""
    pong_timeout: float = 600.0
    """No pong for this long -> connection dropped (Binance: 10 min)."""
    max_age: float = 86400.0
    """Connection lifetime; then close 1001 (Binance: 24 h)."""
    inbound_per_second: int = 10
    """Inbound messages per second; more closes with 1008 "Too many requests"."""
    max_streams: int = 1024
    write_buffer_limit: int = 4 << 20
    """Bytes queued in the socket before the sender waits for the client to read."""


class Connection:
    """State and tasks of one accepted websocket."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport,
                 session: Session, control: ControlState, source: FrameSource,
                 mode: RoutingMode, limits: ConnLimits, send_log: SendLog | None,
                 clock: Callable[[], int]) -> None:
        self.ws = ws
        self.transport = transport
        self.session = session
        self.control = control
        self.source = source
        self.mode = mode
        self.limits = limits
        self.send_log = send_log
        self.clock = clock
        self._stalled_until = 0.0
        self._unanswered_since: float | None = None
        self._inbound: deque[float] = deque()

    @property
    def conn_id(self) -> int:
        """The server-wide connection number."""
        return self.session.conn_id

    def apply_subscriptions(self) -> None:
        """Recompute what flows from the subscription list (route split, section 1)."""
        resolved = resolve(self.control.subscriptions, self.session.route, self.mode,
                           self.source.listen_key_known)
        self.session.streams = resolved.streams
        self.session.user = resolved.user
        self.session.version += 1

    async def run(self) -> None:
        """Serve the connection until it ends, then release everything."""
        tasks = [asyncio.create_task(coro) for coro in (
            self._reader(), self._sender(), self._pinger(), self._lifetime())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, _GONE):
                    _log.warning("connection %d: %r", self.conn_id, result)
            if not self.ws.closed and not self.transport.is_closing():
                await self.close(1000, "")

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame (logged) and finish the closing handshake."""
        self._log(SentKind.CLOSE, "", f"{code} {reason}")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 2.0)

    def drop(self, flush: bool = False) -> None:
        """End TCP without a close frame (the client sees 1006).

        Aborted at once, or with ``flush`` closed after the queued bytes are sent.
        """
        self._log(SentKind.DROP, "", "")
        if flush:
            self.transport.close()
        else:
            self.transport.abort()

    def _log(self, kind: SentKind, stream: str, payload: str) -> None:
        if self.send_log is not None:
            self.send_log.add(self.conn_id, kind, stream, payload, time.time_ns())

    async def _wait_stall(self) -> None:
        delay = self._stalled_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    # -- inbound -------------------------------------------------------------------------
    async def _reader(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type is WSMsgType.PING:
                await self._wait_stall()
                await self.ws.pong(msg.data)  # Binance echoes the ping payload
                continue
            if msg.type is WSMsgType.PONG:
                self._unanswered_since = None  # unsolicited pongs are fine too
                continue
            if msg.type is WSMsgType.CLOSE:
                # aiohttp answered with a close frame (code 1000) before returning it.
                self._log(SentKind.CLOSE, "", "1000 ")
                return
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            if self._over_rate():
                await self.close(CLOSE_TOO_MANY_REQUESTS, "Too many requests")
                return
            text = msg.data if isinstance(msg.data, str) else bytes(msg.data).decode(
                "utf-8", "replace")
            reply = self.control.handle(text)
            if reply.subscriptions_changed:
                self.apply_subscriptions()
            await self._wait_stall()
            self._log(SentKind.REPLY, "", reply.text)
            await self.ws.send_str(reply.text)

    def _over_rate(self) -> bool:
        # Binance: 10 incoming messages per second per connection, excess closes with 1008.
        now = time.monotonic()
        window = self._inbound
        window.append(now)
        while window and now - window[0] >= 1.0:
            window.popleft()
        return len(window) > self.limits.inbound_per_second

    # -- outbound ------------------------------------------------------------------------
    async def _sender(self) -> None:
        iterator = self.source.open_session(self.session)
        try:
            async for item in iterator:
                if isinstance(item, Drop):
                    self.drop(item.flush)
                    return
                if isinstance(item, Close):
                    await self.close(item.code, item.reason)
                    return
                if isinstance(item, Stall):
                    self._stalled_until = time.monotonic() + item.seconds
                    await asyncio.sleep(item.seconds)
                elif isinstance(item, RawFrame):
                    await self._send_raw(item)
                elif item and not await self._send_batch(item):
                    return
            # The source is exhausted: stay connected (pings, control) until closed.
            await asyncio.Event().wait()
        finally:
            aclose: Any = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send_raw(self, item: RawFrame) -> None:
        if isinstance(item.data, bytes):
            self._log(SentKind.BINARY, "", item.data.decode("latin-1"))
            await self.ws.send_bytes(item.data)
        else:
            self._log(SentKind.MALFORMED, "", item.data)
            await self.ws.send_str(item.data)

    async def _send_batch(self, batch: Any) -> bool:
        frames: list[tuple[str, str]] = list(batch)
        combined = self.control.combined
        if combined:
            texts = [make_envelope(stream, payload) for stream, payload in frames]
        else:
            texts = [payload for _, payload in frames]
        transport = self.transport
        if transport.is_closing() or self.ws.closed:
            return False
        transport.write(text_frames(texts))
        if self.send_log is not None:
            self.send_log.add_batch(self.conn_id, frames, time.time_ns(), combined)
        while transport.get_write_buffer_size() > self.limits.write_buffer_limit:
            if transport.is_closing():
                return False
            await asyncio.sleep(0.002)  # the client reads slowly: back-pressure the source
        return True

    async def _pinger(self) -> None:
        limits = self.limits
        tick = min(limits.ping_interval, limits.pong_timeout) / 4
        next_ping = time.monotonic() + limits.ping_interval
        while True:
            await asyncio.sleep(tick)
            await self._wait_stall()
            now = time.monotonic()
            waiting = self._unanswered_since
            if waiting is not None and now - waiting > limits.pong_timeout:
                self.drop()  # Binance: no pong within 10 min of a ping -> disconnected
                return
            if now >= next_ping:
                next_ping = now + limits.ping_interval
                if waiting is None:
                    self._unanswered_since = now
                await self.ws.ping(str(self.clock()).encode())

    async def _lifetime(self) -> None:
        await asyncio.sleep(self.limits.max_age)
        # Binance: connections last 24 h, then close 1001 "going away" (section 2, 7).
        await self.close(CLOSE_GOING_AWAY, "going away")


__all__ = ["CLOSE_GOING_AWAY", "CLOSE_TOO_MANY_REQUESTS", "ConnLimits", "Connection"]
