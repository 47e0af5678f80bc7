"""Keep one shard of streams connected forever: reconnect with backoff, rotate before 24 h.

Every outage is reported through ``on_down(streams, since_ns, detail)`` from the last frame of
the dead connection; the gap detector turns it into a ``disconnect`` gap per stream that ends
at that stream's first message on the replacement. Rotation is make-before-break
(BINANCE.md section 2: connections end after 24 h): open the replacement, overlap, dedupe with
:class:`~recorder._overlap.OverlapDeduper`, then close the old one.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import aiohttp

from recorder._backoff import Retry, backoff, classify
from recorder._connection import (
    Connection,
    ConnectionConfig,
    ConnectionState,
    GapSink,
    MonotonicClock,
)
from recorder._overlap import OverlapDeduper
from schemas.message import Gap, GapKind, Message

log = logging.getLogger("ticktape.recorder")

_conn_ids = itertools.count(1)


class _Role(enum.Enum):
    NORMAL = 0
    OLD = 1
    NEW = 2


@dataclass(frozen=True, slots=True)
class ShardPolicy:
    """Reconnect and rotation timing (seconds)."""

    rotate_after_s: float = 23 * 3600.0
    """Open a replacement this long after a connection went live (Binance limit: 24 h)."""
    overlap_s: float = 10.0
    """Longest overlap of old and new connection during a rotation."""
    backoff_initial_s: float = 0.5
    backoff_cap_s: float = 30.0
    stable_s: float = 10.0
    """A connection live at least this long resets the backoff; a shorter one backs off
    before the next attempt."""


@dataclass(frozen=True, slots=True)
class ConnectPlan:
    """How to open one connection of the shard (URLs may change, e.g. a new listenKey)."""

    url: str
    batches: tuple[tuple[str, ...], ...] = ()


LiveHook = Callable[[int], None]
DownHook = Callable[[tuple[str, ...], int, str], None]
"""``(streams, since_ns, detail)``: the shard's streams are down from ``since_ns``."""


class ShardRunner:
    """Owns the connections of one shard; :meth:`run` until :meth:`stop`."""

    def __init__(
        self,
        label: str,
        streams: tuple[str, ...],
        plan: Callable[[], ConnectPlan],
        session: aiohttp.ClientSession,
        clock: MonotonicClock,
        on_message: Callable[[Message], None],
        on_gap: GapSink,
        on_down: DownHook,
        config: ConnectionConfig,
        policy: ShardPolicy,
        raw_stream: str | None = None,
        on_live: LiveHook | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.label = label
        self.streams = streams
        self.reconnects = 0
        self.rotations = 0
        self.connections: list[Connection] = []
        self._plan = plan
        self._session = session
        self._clock = clock
        self._on_message = on_message
        self._on_gap = on_gap
        self._on_down = on_down
        self._config = config
        self._policy = policy
        self._raw_stream = raw_stream
        self._on_live = on_live
        self._redact = redact or (lambda s: s)
        self._stop = asyncio.Event()
        self._roles: dict[int, _Role] = {}
        self._dedup: OverlapDeduper | None = None
        self._last_ns: dict[str, int] = {}
        self._delays = self._fresh_backoff()
        self.fatal: BaseException | None = None

    @property
    def state(self) -> ConnectionState:
        """State of the newest connection."""
        return self.connections[-1].state if self.connections else ConnectionState.CONNECTING

    def stop(self) -> None:
        """Ask :meth:`run` to close its connections and return."""
        self._stop.set()

    def _sink(self, conn: Connection, msg: Message) -> None:
        dedup = self._dedup
        if dedup is None:  # no rotation under way: _emit inlined (the hot path)
            last = self._last_ns.get(msg.stream, 0)
            if msg.recv_ns < last:
                msg = Message(msg.stream, last, msg.raw, msg.conn_id, msg.seq, msg.source)
            else:
                self._last_ns[msg.stream] = msg.recv_ns
            self._on_message(msg)
            return
        role = self._roles.get(conn.conn_id, _Role.NORMAL)
        if role is _Role.NORMAL:
            self._emit(msg)
            return
        out = dedup.from_old(msg) if role is _Role.OLD else dedup.from_new(msg)
        for m in out:
            self._emit(m)

    def _emit(self, msg: Message) -> None:
        # A message held during a rotation overlap may carry an earlier recv_ns than the
        # last one stored for its stream; clamp so each stream's recv_ns never decreases.
        last = self._last_ns.get(msg.stream, 0)
        if msg.recv_ns < last:
            msg = Message(msg.stream, last, msg.raw, msg.conn_id, msg.seq, msg.source)
        else:
            self._last_ns[msg.stream] = msg.recv_ns
        self._on_message(msg)

    def _new_connection(self) -> Connection:
        plan = self._plan()
        conn = Connection(next(_conn_ids), plan.url, self.streams, self._session, self._clock,
                          self._sink, self._on_gap, self._config, plan.batches,
                          self._raw_stream, self.label, self._redact)
        alive = [c for c in self.connections if c.state is not ConnectionState.CLOSED]
        self.connections = [*alive[-2:], conn]
        return conn

    async def run(self) -> None:
        """Connect, keep connected, rotate; return after :meth:`stop` with all closed."""
        async with asyncio.TaskGroup() as tg:
            current = await self._connect(tg, since_ns=self._clock.now_ns(), first=True)
            while current is not None:
                current = await self._supervise(tg, current)

    async def _connect(self, tg: asyncio.TaskGroup, since_ns: int,
                       first: bool) -> tuple[Connection, asyncio.Task[None]] | None:
        """Open connections until one is live, with backoff; None if stopped or fatal."""
        delays = self._delays
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            conn = self._new_connection()
            task = tg.create_task(conn.run(), name=f"{self.label}#{conn.conn_id}")
            if await conn.wait_live():
                if not first:
                    self.reconnects += 1
                if self._on_live is not None:
                    self._on_live(conn.conn_id)
                return conn, task
            await task
            err = conn.error
            if first and attempt == 1:
                # The outage starts now; the gap detector closes it at each stream's first
                # message once a connection is live (or at shutdown).
                self._on_down(self.streams, since_ns, f"{self.label}: cannot connect: {err}")
            if err is not None and classify(err) is Retry.FATAL:
                self.fatal = err
                log.error("%s: fatal, not retrying: %s", self.label, err)
                return None
            delay = next(delays)
            log.warning("%s: connect attempt %d failed (%s); retrying in %.1f s",
                        self.label, attempt, err, delay)
            await self._sleep(delay)
        return None

    def _fresh_backoff(self) -> Iterator[float]:
        return backoff(self._policy.backoff_initial_s, self._policy.backoff_cap_s)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True if stop was requested."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _supervise(
        self, tg: asyncio.TaskGroup, current: tuple[Connection, asyncio.Task[None]]
    ) -> tuple[Connection, asyncio.Task[None]] | None:
        conn, task = current
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            deadline = self._policy.rotate_after_s
            done, _ = await asyncio.wait({task, stop}, timeout=deadline,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            await asyncio.gather(stop, return_exceptions=True)
        if self._stop.is_set():
            await conn.close()
            await task
            return None
        if task in done:
            since = conn.last_recv_ns or conn.live_ns
            log.warning("%s: disconnected: %s", self.label, conn.error)
            self._on_down(self.streams, since, f"{self.label}: {conn.error}")
            lived_s = (self._clock.now_ns() - conn.live_ns) / 1e9
            if lived_s >= self._policy.stable_s:
                self._delays = self._fresh_backoff()
            elif await self._sleep(next(self._delays)):
                # A connection that dies soon after going live (flapping server, 1008 for
                # too many requests) must not turn into a reconnect storm (BINANCE.md s7).
                return None
            return await self._connect(tg, since, first=False)
        return await self._rotate(tg, conn, task)

    async def _rotate(self, tg: asyncio.TaskGroup, old: Connection,
                      old_task: asyncio.Task[None]) -> tuple[Connection, asyncio.Task[None]] | None:
        """Make-before-break: new connection live, overlap, dedupe, close the old one."""
        dedup = self._dedup = OverlapDeduper()
        self._roles[old.conn_id] = _Role.OLD
        new = self._new_connection()
        self._roles[new.conn_id] = _Role.NEW
        new_task = tg.create_task(new.run(), name=f"{self.label}#{new.conn_id}")
        if not await new.wait_live():
            await new_task
            log.warning("%s: rotation connect failed (%s); keeping the old connection",
                        self.label, new.error)
            self._dedup = None
            self._roles.pop(old.conn_id, None)
            return old, old_task
        loop = asyncio.get_running_loop()
        end = loop.time() + self._policy.overlap_s
        while loop.time() < end and not old_task.done() and not self._stop.is_set():
            if new.messages and not dedup.pending():
                break
            await asyncio.sleep(min(0.05, self._policy.overlap_s / 20))
        await old.close()
        await old_task
        self._release(dedup)
        # A lagging new connection may still deliver events the old one stored: keep
        # filtering it until every stream has handed over (bounded by the overlap time).
        end = loop.time() + self._policy.overlap_s
        while dedup.pending() and loop.time() < end and not self._stop.is_set():
            await asyncio.sleep(min(0.05, self._policy.overlap_s / 20))
        self._dedup = None
        self._roles.pop(old.conn_id, None)
        self._roles.pop(new.conn_id, None)
        self.rotations += 1
        log.info("%s: rotated connection %d -> %d (%d duplicates dropped)", self.label,
                 old.conn_id, new.conn_id, dedup.dropped_duplicates)
        return new, new_task

    def _release(self, dedup: OverlapDeduper) -> None:
        held, unmatched = dedup.close_old()
        for msg in held:
            self._emit(msg)
        for u in unmatched:
            self._on_gap(Gap(u.stream, u.old_last_ns, max(u.old_last_ns, u.new_first_ns),
                             GapKind.ROTATION, f"{self.label}: no common message in overlap"))


__all__ = ["ConnectPlan", "ShardPolicy", "ShardRunner"]
