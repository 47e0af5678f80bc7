"""The sim's :class:`~replay.wire.source.FrameSource`: a live broadcast of the market.

One owned producer task advances the :class:`~replay.sim.market.Market` on its clock and
appends each tick's frames to a bounded ring; every connection reads the ring from the tick
after it connected, keeps what it subscribed to and applies its faults. A connection that
falls more than ``history_seconds`` behind is dropped (its frames are gone from the ring).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from replay.sim.book import instrument_for
from replay.sim.config import SimConfig
from replay.sim.exchange_info import symbol_info
from replay.sim.faults import Fault, FaultClock, FaultKind
from replay.sim.market import Market
from replay.sim.symbol import Frame
from replay.sim.user import UserData, UserFrame
from replay.wire.source import Close, Drop, Item, RawFrame, Session, Stall
from schemas.errors import StreamNameError
from schemas.streams import parse_stream

MAX_BATCH = 4096
_MALFORMED = '{"e":"aggTrade","E":17712635'
_BINARY = b"\x00\x01\x02sim-binary-frame\xff"


@functools.lru_cache(maxsize=4096)
def _kind(name: str) -> str:
    """``agg`` for aggTrade streams, ``diff`` for diff-depth streams, else ``""``."""
    try:
        parsed = parse_stream(name)
    except StreamNameError:
        return ""
    if parsed.channel == "aggTrade":
        return "agg"
    return "diff" if parsed.is_diff_depth else ""


class _Faulty:
    """Per-connection fault state: counters of frames still to withhold, slow mode."""

    def __init__(self) -> None:
        self.skip_agg = 0
        self.skip_diff = 0
        self.slow_until = 0.0
        self.slow_delay = 0.0

    def withhold(self, frames: list[Frame]) -> list[Frame]:
        if not (self.skip_agg or self.skip_diff):
            return frames
        kept: list[Frame] = []
        for frame in frames:
            kind = _kind(frame[0])
            if kind == "agg" and self.skip_agg:
                self.skip_agg -= 1
            elif kind == "diff" and self.skip_diff:
                self.skip_diff -= 1
            else:
                kept.append(frame)
        return kept


class SimSource:
    """Seeded market + user data behind the wire server. Start it before serving."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        start_ms = config.start_ms if config.start_ms is not None else time.time_ns() // 10**6
        self.market = Market(config, start_ms)
        self.user = UserData(config.seed, config.listen_key_ttl, config.user_event_interval,
                             list(config.symbols), self._price_of)
        ticks = max(1, int(config.history_seconds * 1000 / config.tick_ms))
        self._ring: deque[tuple[list[Frame], list[UserFrame]]] = deque(maxlen=ticks)
        self._next_seq = 0
        self._new_tick = asyncio.Event()
        self._sessions: set[Session] = set()
        self._wanted: frozenset[str] = frozenset()
        self._wanted_key: tuple[tuple[int, int], ...] = ()
        self._task: asyncio.Task[None] | None = None
        self.faults: tuple[Fault, ...] = config.faults
        self.lag_ticks = 0
        """Ticks the producer was behind its clock at the last step (throughput diagnostic)."""

    def _price_of(self, symbol: str) -> str:
        sym = self.market.symbols[symbol]
        return sym.inst.price(sym.mid())

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the producer task (owned; :meth:`stop` cancels and awaits it)."""
        if self._task is None:
            self._task = asyncio.create_task(self._produce(), name="sim-market")

    async def stop(self) -> None:
        """Stop producing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise

    async def _produce(self) -> None:
        tick_s = self.config.tick_ms / 1000
        loop = asyncio.get_running_loop()
        origin = loop.time()
        while True:
            due = int((loop.time() - origin) / tick_s)
            self.lag_ticks = due - self.market.tick
            if self.market.tick >= due:
                await asyncio.sleep(origin + (self.market.tick + 1) * tick_s - loop.time())
                continue
            for _ in range(min(due - self.market.tick, 5)):  # catch up, but keep serving
                frames = self.market.step(self._wanted_streams())
                self._ring.append((frames, self.user.step(self.market.now_ms())))
                self._next_seq += 1
            event, self._new_tick = self._new_tick, asyncio.Event()
            event.set()
            await asyncio.sleep(0)

    def _wanted_streams(self) -> frozenset[str]:
        key = tuple(sorted((s.conn_id, s.version) for s in self._sessions))
        if key != self._wanted_key:
            self._wanted_key = key
            self._wanted = frozenset().union(*(s.streams for s in self._sessions))
        return self._wanted

    # -- sessions -------------------------------------------------------------------------
    def open_session(self, session: Session) -> AsyncIterator[Item]:
        """The live frames of ``session`` (see :class:`~replay.wire.source.FrameSource`)."""
        return self._session(session)

    async def _session(self, session: Session) -> AsyncIterator[Item]:
        loop = asyncio.get_running_loop()
        opened = loop.time()
        clock = FaultClock(self.faults, session.conn_id, self.config.seed)
        state = _Faulty()
        cursor = self._next_seq
        self._sessions.add(session)
        try:
            while True:
                for fault in clock.pop_due(loop.time() - opened):
                    action = self._fire(fault, state, loop.time())
                    if action is not None:
                        yield action
                        if isinstance(action, Drop | Close):
                            return
                if cursor >= self._next_seq:
                    await self._wait_tick(clock.next_due(), opened, loop)
                    continue
                if cursor < self._next_seq - len(self._ring):
                    yield Drop()  # too slow: what it missed is gone from the ring
                    return
                frames = state.withhold(self._collect(session, cursor))
                cursor = self._next_seq
                if not frames:
                    continue
                if state.slow_until > loop.time():
                    for frame in frames:
                        yield (frame,)
                        await asyncio.sleep(state.slow_delay)
                else:
                    for start in range(0, len(frames), MAX_BATCH):
                        yield frames[start:start + MAX_BATCH]
        finally:
            self._sessions.discard(session)

    async def _wait_tick(self, next_fault: float | None, opened: float,
                         loop: asyncio.AbstractEventLoop) -> None:
        timeout = None if next_fault is None else max(0.0, opened + next_fault - loop.time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._new_tick.wait(), timeout)

    def _collect(self, session: Session, cursor: int) -> list[Frame]:
        behind = self._next_seq - cursor
        entries = list(itertools.islice(reversed(self._ring), behind))
        entries.reverse()
        streams, user = session.streams, session.user
        out: list[Frame] = []
        for frames, user_frames in entries:
            if streams:
                out.extend(f for f in frames if f[0] in streams)
            if user:
                for key, event, payload in user_frames:
                    name = session.user_stream(key, event)
                    if name is not None:
                        out.append((name, payload))
        return out

    def _fire(self, fault: Fault, state: _Faulty, now: float) -> Item | None:
        kind = fault.kind
        if kind is FaultKind.DROP:
            return Drop()
        if kind is FaultKind.CLOSE:
            return Close(fault.code, fault.reason)
        if kind is FaultKind.STALL:
            return Stall(fault.seconds)
        if kind is FaultKind.MALFORMED:
            return RawFrame(_MALFORMED, "malformed")
        if kind is FaultKind.BINARY:
            return RawFrame(_BINARY, "binary")
        if kind is FaultKind.SKIP:
            state.skip_agg += fault.count
        elif kind is FaultKind.BREAK_PU:
            state.skip_diff += fault.count
        elif kind is FaultKind.SLOW:
            state.slow_until = now + fault.seconds
            state.slow_delay = fault.delay
        return None

    # -- REST -------------------------------------------------------------------------------
    async def depth_snapshot(self, symbol: str, limit: int) -> dict[str, Any] | None:
        """Top ``limit`` levels of the live book, ``lastUpdateId`` = its last update id."""
        sym = self.market.symbols.get(symbol)
        return None if sym is None else sym.snapshot(limit, self.market.now_ms())

    async def agg_trades(self, symbol: str, from_id: int | None, limit: int
                         ) -> list[dict[str, Any]] | None:
        """aggTrades the market generated, including ids a fault withheld from a socket."""
        sym = self.market.symbols.get(symbol)
        return None if sym is None else sym.agg_rows(from_id, limit)

    async def exchange_symbols(self) -> list[dict[str, Any]]:
        """exchangeInfo entries of the simulated symbols."""
        return [symbol_info(instrument_for(s), self.market.start_ms) for s in self.config.symbols]

    def server_time_ms(self) -> int:
        """Wall clock in ms."""
        return time.time_ns() // 10**6

    async def create_listen_key(self, api_key: str) -> str | None:
        """Create or extend the API key's listenKey."""
        return self.user.create(api_key, self.market.now_ms())

    async def keepalive_listen_key(self, api_key: str, listen_key: str) -> bool:
        """Extend a listenKey (``""`` = the API key's active one)."""
        return self.user.keepalive(api_key, listen_key, self.market.now_ms())

    async def delete_listen_key(self, api_key: str, listen_key: str) -> bool:
        """Invalidate a listenKey; its sockets get ``listenKeyExpired``."""
        return self.user.delete(api_key, listen_key)

    def listen_key_known(self, listen_key: str) -> bool:
        """Whether the key is alive."""
        return self.user.known(listen_key)


__all__ = ["SimSource"]
