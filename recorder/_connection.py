"""One websocket connection to a Binance-compatible server (aiohttp).

A :class:`Connection` is one attempt: connect, subscribe, read frames until the socket ends or
:meth:`Connection.close` is called. Reconnecting and rotation live in
:mod:`recorder._shard`. Every text frame becomes a :class:`~schemas.message.Message` (combined
envelopes unwrapped to the canonical stream name); malformed, binary or unknown-stream frames
become ``rejected`` gaps, never a crash.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from recorder._routing import RateLimiter, subscribe_frame
from schemas.errors import ExchangeError, FatalExchangeError
from schemas.message import WILDCARD_STREAM, Gap, GapKind, Message
from schemas.streams import parse_stream
from schemas.wire import split_envelope

log = logging.getLogger("ticktape.recorder")

_PREFIX = '{"stream":"'
_PREFIX_LEN = len(_PREFIX)
_MIDDLE = '","data":'
_MIDDLE_LEN = len(_MIDDLE)

MAX_FRAME_BYTES = 64 * 1024 * 1024


class ConnectionState(enum.StrEnum):
    """Life cycle of one websocket connection."""

    CONNECTING = "connecting"
    """Handshake and subscriptions in progress."""
    LIVE = "live"
    """Subscribed; frames are being stored."""
    DRAINING = "draining"
    """Being retired (rotation or shutdown): still read until the close completes."""
    CLOSED = "closed"
    """Gone; ``error`` says why if it was not asked to close."""


class MonotonicClock:
    """Wall clock in epoch ns that never goes backwards within one recorder run.

    ``Message.recv_ns`` must never decrease (DESIGN.md); an NTP step back is clamped.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def now_ns(self) -> int:
        """The current time, or the last value returned if the clock stepped back."""
        now = time.time_ns()
        if now < self._last:
            return self._last
        self._last = now
        return now


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Timing knobs of a connection (seconds); tests scale them down."""

    connect_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    """Silence watchdog: no frame for this long means the socket is dead (BINANCE.md s7:
    an open socket with no data happens on wrong routes and half-open TCP)."""
    control_rate: int = 4
    """SUBSCRIBE messages per second (Binance closes above 10 inbound/s)."""
    heartbeat_s: float | None = None
    """Client pings; off by default since Binance pings us every 3 min."""


MessageSink = Callable[["Connection", Message], None]
GapSink = Callable[[Gap], None]
Redactor = Callable[[str], str]


def _no_redact(text: str) -> str:
    return text


class Connection:
    """One websocket attempt; run :meth:`run` as a task owned by the caller."""

    def __init__(
        self,
        conn_id: int,
        url: str,
        streams: Sequence[str],
        session: aiohttp.ClientSession,
        clock: MonotonicClock,
        on_message: MessageSink,
        on_gap: GapSink,
        config: ConnectionConfig | None = None,
        subscribe_batches: Sequence[Sequence[str]] = (),
        raw_stream: str | None = None,
        label: str = "",
        redact: Redactor = _no_redact,
    ) -> None:
        self.conn_id = conn_id
        self.url = url
        self.streams = tuple(streams)
        self.label = label or f"conn-{conn_id}"
        self.state = ConnectionState.CONNECTING
        self.error: BaseException | None = None
        self.live_ns = 0
        self.last_recv_ns = 0
        self.messages = 0
        self.bytes = 0
        self.rejected = 0
        self._session = session
        self._clock = clock
        self._on_message = on_message
        self._on_gap = on_gap
        self._config = config or ConnectionConfig()
        self._batches = [list(b) for b in subscribe_batches]
        self._raw_stream = raw_stream
        self._redact = redact
        self._seq = 0
        self._names = {s.lower(): s for s in streams}
        self._fast_names = {**self._names, **{s: s for s in streams}}
        """Names as sent (canonical or lower case) -> canonical, for the fast path."""
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._live = asyncio.Event()
        self._done = asyncio.Event()
        self._closing = False
        self._last_frame = 0.0

    async def wait_live(self) -> bool:
        """Wait until LIVE (True) or until the attempt ended without getting there (False)."""
        live = asyncio.create_task(self._live.wait())
        done = asyncio.create_task(self._done.wait())
        try:
            await asyncio.wait({live, done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (live, done):
                task.cancel()
            await asyncio.gather(live, done, return_exceptions=True)
        return self._live.is_set() and self.state is not ConnectionState.CLOSED

    async def run(self) -> None:
        """Connect, subscribe, read until closed; network failures end up in ``error``."""
        try:
            await self._run()
        except asyncio.CancelledError:
            self.error = self.error or ExchangeError(f"{self.label}: cancelled")
            raise
        except (ExchangeError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            # Network and protocol failures become data for the reconnect policy; anything
            # else (a storage error raised by the sink) propagates and stops the recorder.
            self.error = self._map(exc)
        finally:
            self.state = ConnectionState.CLOSED
            self._done.set()

    def _map(self, exc: Exception) -> Exception:
        if isinstance(exc, ExchangeError):
            return exc
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            cls = FatalExchangeError if exc.status in (400, 401, 403, 404) else ExchangeError
            return cls(f"{self.label}: handshake refused with HTTP {exc.status}")
        if isinstance(exc, asyncio.TimeoutError):
            return ExchangeError(f"{self.label}: connect timed out")
        text = self._redact(str(exc)) or type(exc).__name__
        return ExchangeError(f"{self.label}: {type(exc).__name__}: {text}")

    async def _run(self) -> None:
        timeout = aiohttp.ClientWSTimeout(ws_close=2.0)
        async with asyncio.timeout(self._config.connect_timeout_s):
            ws = await self._session.ws_connect(
                self.url,
                autoping=True,  # Binance: echo every ping's payload in a pong
                heartbeat=self._config.heartbeat_s,
                max_msg_size=MAX_FRAME_BYTES,
                timeout=timeout,
            )
        self._ws = ws
        try:
            await self._subscribe(ws)
            if self._closing:
                return
            self.live_ns = self._clock.now_ns()
            self.state = ConnectionState.LIVE
            self._live.set()
            await self._read(ws)
        finally:
            await ws.close()

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """SUBSCRIBE the streams that did not fit in the URL, under the inbound rate limit."""
        limiter = RateLimiter(self._config.control_rate)
        loop = asyncio.get_running_loop()
        for request_id, batch in enumerate(self._batches, start=1):
            delay = limiter.delay(loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
            limiter.record(loop.time())
            await ws.send_str(subscribe_frame(request_id, batch))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read frames in a child task while this one is the silence watchdog.

        One timer per idle period instead of one armed and cancelled per frame: the reader
        stamps the loop time of each frame and the watchdog wakes when the newest stamp is
        ``idle_timeout_s`` old (BINANCE.md s7: a silent open socket is a dead one).
        """
        idle = self._config.idle_timeout_s
        loop = asyncio.get_running_loop()
        self._last_frame = loop.time()
        reader = asyncio.create_task(self._read_frames(ws), name=f"{self.label} reader")
        try:
            while True:
                remaining = self._last_frame + idle - loop.time()
                if remaining <= 0:
                    break
                done, _ = await asyncio.wait((reader,), timeout=remaining)
                if done:
                    reader.result()  # re-raise what ended the reader
                    return
        finally:
            if not reader.done():
                reader.cancel()
                await asyncio.wait((reader,))  # unlike `await reader`, keeps our own cancel
        if self._closing:
            return
        raise ExchangeError(f"{self.label}: no frame for {idle:g} s (idle watchdog)")

    async def _read_frames(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        now_ns = self._clock.now_ns
        text_type = aiohttp.WSMsgType.TEXT
        while True:
            frame = await ws.receive()
            self._last_frame = loop.time()
            if frame.type is text_type:
                self._on_text(frame.data, now_ns())
            elif frame.type is aiohttp.WSMsgType.BINARY:
                self._reject(now_ns(), f"binary frame of {len(frame.data)} bytes")
            elif frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.CLOSED):
                if self._closing:
                    return
                code = ws.close_code
                raise ExchangeError(f"{self.label}: server closed the connection (code {code})")
            elif frame.type is aiohttp.WSMsgType.ERROR:
                if self._closing:
                    return
                detail = self._redact(str(frame.data))
                raise ExchangeError(f"{self.label}: websocket error: {detail}")

    def _on_text(self, text: str, recv_ns: int) -> None:
        self.last_recv_ns = recv_ns
        self.bytes += len(text)
        if self._raw_stream is not None:
            self._emit(self._raw_stream, text, recv_ns)
            return
        if text.startswith(_PREFIX):
            # Inlined fast path of schemas.wire.split_envelope (BINANCE.md section 1: fixed
            # key order), the hot line of the recorder; anything else takes the full path.
            end = text.find('"', _PREFIX_LEN)
            if end > 0 and text.startswith(_MIDDLE, end) and text.endswith("}"):
                stream = self._fast_names.get(text[_PREFIX_LEN:end])
                if stream is not None:
                    self._seq += 1
                    self.messages += 1
                    self._on_message(self, Message(stream, recv_ns, text[end + _MIDDLE_LEN:-1],
                                                   self.conn_id, self._seq))
                    return
        split = split_envelope(text)
        if split is None:
            if text.startswith('{"result"') or text.startswith('{"id"'):
                return  # Binance: SUBSCRIBE ack {"result":null,"id":n}
            if text.startswith('{"error"'):
                self._reject(recv_ns, f"control error reply: {self._redact(text[:120])}")
                return
            self._reject(recv_ns, f"malformed frame: {self._redact(text[:60])!r}")
            return
        name, payload = split
        stream = self._names.get(name.lower())
        if stream is None:
            try:
                stream = parse_stream(name).name
            except ValueError:
                self._reject(recv_ns, f"frame for unknown stream {name[:60]!r}")
                return
        self._emit(stream, payload, recv_ns)

    def _emit(self, stream: str, raw: str, recv_ns: int) -> None:
        self._seq += 1
        self.messages += 1
        self._on_message(self, Message(stream, recv_ns, raw, self.conn_id, self._seq))

    def _reject(self, recv_ns: int, detail: str) -> None:
        self.rejected += 1
        log.warning("%s: rejected %s", self.label, detail)
        streams = self.streams if len(self.streams) == 1 else (WILDCARD_STREAM,)
        for stream in streams:
            self._on_gap(Gap(stream, recv_ns, recv_ns, GapKind.REJECTED,
                             f"{self.label}: {detail}"))

    async def close(self) -> None:
        """Retire the connection (DRAINING) and wait until its task has ended."""
        self._closing = True
        if self.state is not ConnectionState.CLOSED:
            self.state = ConnectionState.DRAINING
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()
        await self._done.wait()


__all__ = [
    "Connection",
    "ConnectionConfig",
    "ConnectionState",
    "GapSink",
    "MessageSink",
    "MonotonicClock",
]
