"""The :class:`Recorder`: owns connections, storage, gap detection, repair, handlers, metrics.

Data path (all on the event loop)::

    Connection -> ShardRunner (rotation dedup) -> Recorder._on_message (collects a batch)
    once per loop turn (call_soon): Recorder._drain
        -> Storage.append (journal first) -> Fanout (handlers) -> GapDetector -> Repairer

A batch is every frame the sockets delivered in one loop turn; it is journaled before any
of it is parsed or queued, and each batch is written to the OS at the end of its loop turn.

Every task is created in one :class:`asyncio.TaskGroup`; :meth:`Recorder.stop` (or the
configured duration) closes the connections, lets repair finish what it has, closes every open
disconnect/silence interval as a gap, and seals every partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import aiohttp

from recorder._config import RecorderConfig
from recorder._connection import ConnectionConfig, MonotonicClock
from recorder._fanout import Fanout
from recorder._gaps import GapDetector
from recorder._metrics import MetricsServer, RecorderCounters
from recorder._repair import Repairer
from recorder._rest import RestClient
from recorder._retention import apply_retention
from recorder._routing import Shard, combined_url, shard, split_for_connect
from recorder._shard import ConnectPlan, ShardPolicy, ShardRunner
from recorder._userdata import USER_STREAM, ListenKeyManager, Secrets, load_api_key
from schemas.errors import FatalExchangeError
from schemas.handler import HandlerLike
from schemas.message import WILDCARD_STREAM, Gap, GapKind, Message
from schemas.streams import parse_stream

log = logging.getLogger("ticktape.recorder")

RETENTION_CHECK_S = 3600.0
HANDOVER_INTERVAL_S = 1.0
"""Batches reach the partition writer at least this often (or when full); the journal is
written every flush regardless."""
GC_THRESHOLD = 50_000
"""Allocations between young-generation collections while recording."""


class StorageLike(Protocol):
    """What the recorder needs from storage (implemented by ``recorder._storage.Storage``)."""

    def open(self) -> Any:
        """Recover the journal; returns a recovery report."""

    def append(self, msgs: Sequence[Message]) -> Any:
        """Journal and buffer messages."""

    def add_gap(self, gap: Gap) -> Any:
        """Journal and store a gap."""

    def flush(self, now_ns: int) -> Any:
        """Flush the journal and rotate partitions due at ``now_ns``."""

    def close(self) -> Any:
        """Seal everything."""


StorageFactory = Callable[[RecorderConfig], StorageLike]


def default_storage(config: RecorderConfig) -> StorageLike:
    """The journaled Parquet storage of ``recorder._storage``."""
    from recorder._storage import Storage

    return Storage(config.archive, rotate_s=config.rotate_s,
                   handover_interval_s=HANDOVER_INTERVAL_S)


class Recorder:
    """Record the configured streams until :meth:`stop` or ``config.duration_s``."""

    def __init__(
        self,
        config: RecorderConfig,
        handlers: Sequence[HandlerLike] = (),
        storage_factory: StorageFactory = default_storage,
    ) -> None:
        self.config = config.validated()
        self.clock = MonotonicClock()
        self.counters = RecorderCounters()
        self.secrets = Secrets()
        self.detector = GapDetector()
        self.shards: list[ShardRunner] = []
        self.metrics: MetricsServer | None = None
        self.storage: StorageLike | None = None
        self.repairer: Repairer | None = None
        self.recovery: Any = None
        self.gaps_written = 0
        self._fanout = Fanout(handlers, self.config.handler_queue)
        self._storage_factory = storage_factory
        self._stop = asyncio.Event()
        self._listen: ListenKeyManager | None = None
        self._down_since: int | None = None
        self._pending: list[Message] = []
        self._drain_due = False
        self._ingest_failed = asyncio.Event()
        self._ingest_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._api_key = ""
        if self.config.user_data:
            self._api_key = load_api_key(self.config.env_file)
            self.secrets.add(self._api_key)

    def stop(self) -> None:
        """Ask :meth:`run` to shut down (safe from a signal handler on the loop)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called or the duration ran out."""
        return self._stop.is_set()

    # -- event path -------------------------------------------------------------------------

    def _store(self, msgs: list[Message]) -> None:
        if self._down_since is not None and msgs:
            # The recorder was not running from the last journaled message until the first
            # row this run stores, whether a websocket frame or a REST snapshot/backfill row.
            start, self._down_since = self._down_since, None
            self._write_gap(Gap(WILDCARD_STREAM, start, max(start, msgs[0].recv_ns),
                                GapKind.RECORDER_DOWN, "recorder was not running"))
        storage = self.storage
        assert storage is not None
        storage.append(msgs)
        self.counters.count_all(msgs)
        if self._fanout:
            publish = self._fanout.publish
            for msg in msgs:
                publish(msg)

    def _on_message(self, msg: Message) -> None:
        """Queue a websocket message for the next :meth:`_drain` (once per loop turn).

        Frames that arrive together (everything a socket read delivered) are journaled,
        gap-checked and published as one batch: one journal append instead of one per frame.
        Nothing is parsed or queued before the batch is in the journal buffer.
        """
        self._pending.append(msg)
        if not self._drain_due:
            self._drain_due = True
            loop = self._loop
            assert loop is not None
            loop.call_soon(self._drain_soon)

    def _drain_soon(self) -> None:
        self._drain_due = False
        try:
            self._drain()
        except Exception as exc:  # a storage error: handed to the ingest task, which stops us
            self._ingest_error = exc
            self._ingest_failed.set()

    async def _ingest_watch(self) -> None:
        """Raise (and so stop the recorder) what a scheduled :meth:`_drain` raised."""
        await self._ingest_failed.wait()
        assert self._ingest_error is not None
        raise self._ingest_error

    def _drain(self) -> None:
        """Journal, count, publish and gap-check every queued websocket message, in order."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if self.config.user_data and any(m.stream == USER_STREAM for m in batch):
            batch = [self._user_message(m) if m.stream == USER_STREAM else m for m in batch]
        self._store(batch)
        gaps = self.detector.on_batch(batch)
        if gaps and self.repairer is not None:
            self.repairer.on_gaps(gaps)

    def _user_message(self, msg: Message) -> Message:
        if msg.stream == USER_STREAM:
            if self._listen is not None:
                self._listen.watch(msg)
            # listenKeyExpired carries the key itself; secrets never reach the archive, so
            # this one event is stored with the key replaced by "<redacted>".
            clean = self.secrets.redact(msg.raw)
            if clean != msg.raw:
                msg = Message(msg.stream, msg.recv_ns, clean, msg.conn_id, msg.seq, msg.source)
        return msg

    def _store_rest(self, msgs: list[Message]) -> None:
        """Store repair results after the websocket messages received before them."""
        self._drain()
        self._store(msgs)

    def _on_gap(self, gap: Gap) -> None:
        """A gap found by a connection (rejected frame, rotation) goes through repair too."""
        self._drain()
        if self.repairer is not None:
            self.repairer.on_gaps([gap])
        else:
            self._write_gap(gap)

    def _write_gap(self, gap: Gap) -> None:
        self._drain()
        gap = Gap(gap.stream, gap.start_ns, gap.end_ns, gap.kind,
                  self.secrets.redact(gap.detail), gap.recovered)
        assert self.storage is not None
        self.storage.add_gap(gap)
        self.gaps_written += 1
        self.counters.count_gap(gap.kind.value)
        self._fanout.publish(gap)

    def _on_down(self, streams: tuple[str, ...], since_ns: int, detail: str) -> None:
        self._drain()  # messages received before the drop are checked before it
        self.detector.on_disconnect(streams, since_ns, self.secrets.redact(detail))

    # -- lifecycle --------------------------------------------------------------------------

    def _plans(self) -> list[Shard]:
        return shard((parse_stream(s) for s in self.config.streams),
                     self.config.streams_per_connection)

    def _runner(self, sh: Shard, session: aiohttp.ClientSession) -> ShardRunner:
        url_streams, batches = split_for_connect(sh.streams)
        plan = ConnectPlan(combined_url(self.config.ws_url, sh.endpoint, url_streams),
                           tuple(tuple(b) for b in batches))
        repairer = self.repairer
        assert repairer is not None
        return ShardRunner(
            sh.label, sh.streams, lambda: plan, session, self.clock, self._on_message,
            self._on_gap, self._on_down, self._conn_config(), self._policy(),
            on_live=lambda _cid: repairer.on_live(sh.streams), redact=self.secrets.redact)

    def _conn_config(self) -> ConnectionConfig:
        c = self.config
        return ConnectionConfig(connect_timeout_s=c.connect_timeout_s,
                                idle_timeout_s=c.idle_timeout_s, control_rate=c.control_rate)

    def _policy(self) -> ShardPolicy:
        c = self.config
        return ShardPolicy(rotate_after_s=c.rotate_after_s, overlap_s=c.overlap_s,
                           backoff_initial_s=c.backoff_initial_s, backoff_cap_s=c.backoff_cap_s)

    def _reconnects(self) -> int:
        return sum(r.reconnects for r in self.shards)

    def _seed_from_recovery(self, report: Any) -> None:
        """Seed the detector with the last journaled message per stream.

        An aggTrade id hole across the downtime then shows up as a sequence gap at the first
        live message and is backfilled (BINANCE.md section 6); the downtime itself becomes a
        ``recorder_down`` gap ending at the first new message.
        """
        for msg in (getattr(report, "last_by_stream", None) or {}).values():
            if isinstance(msg, Message) and msg.stream in self.config.streams:
                self.detector.seed(msg)
        last = getattr(report, "last_recv_ns", None)
        self._down_since = last if isinstance(last, int) and last > 0 else None

    async def run(self) -> None:
        """Record until stopped; every partition is sealed when this returns."""
        storage = self.storage = self._storage_factory(self.config)
        self.recovery = await asyncio.to_thread(storage.open)
        # Every frame allocates a Message (and aiohttp its WSMessage) that lives until its
        # batch is journaled: with the default thresholds the collector ran ~500 times per
        # 300k frames, 1.4 us/frame. Startup objects are frozen out of its way and young
        # collections are made rarer; both are restored when recording ends.
        thresholds = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 100)
        try:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await self._run(session)
            fatal = next((r.fatal for r in self.shards if r.fatal is not None), None)
            if fatal is not None:
                raise FatalExchangeError(f"stopped: {self.secrets.redact(str(fatal))}")
        except BaseExceptionGroup as group:
            # Callers catch TicktapeError, not the TaskGroup's wrapper.
            raise _first_leaf(group) from None
        finally:
            with contextlib.suppress(Exception):
                self._drain()
            with contextlib.suppress(Exception):
                for gap in self.detector.finish(self.clock.now_ns()):
                    self._write_gap(gap)
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            await asyncio.to_thread(storage.close)

    async def _run(self, session: aiohttp.ClientSession) -> None:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        rest = RestClient(session, cfg.rest_url, redact=self.secrets.redact)
        repairer = self.repairer = Repairer(rest, self.clock, self._store_rest, self._write_gap,
                                            cfg.depth_snapshot_limit)
        self._seed_from_recovery(self.recovery)
        self.shards = [self._runner(sh, session) for sh in self._plans()]
        if cfg.user_data:
            self.shards.append(await self._user_runner(session, rest))
        self.counters.reconnects = self._reconnects
        self.counters.queue_depth = lambda: {"repair": repairer.pending, **self._fanout.depths()}
        self.counters.handler_drops = self._fanout.drops
        self.counters.storage_stats = self._storage_stats
        self.counters.journal_lag = lambda: self._storage_stats().get("journal_lag_messages", 0)
        self.counters.healthy = lambda: not self.stopping and all(
            r.fatal is None for r in self.shards)
        log.info("recording %d streams on %d connections into %s", len(cfg.streams),
                 len(self.shards), cfg.archive)
        if cfg.metrics_port is not None:
            self.metrics = MetricsServer(self.counters, cfg.metrics_port)
            await self.metrics.start()
            log.info("metrics on http://127.0.0.1:%d/metrics", self.metrics.port)
        try:
            async with asyncio.TaskGroup() as tg:
                shard_tasks = [tg.create_task(r.run(), name=f"shard {r.label}")
                               for r in self.shards]
                repair_task = tg.create_task(repairer.run(), name="repair")
                ingest = tg.create_task(self._ingest_watch(), name="ingest")
                handler_tasks = await self._fanout.run(tg)
                flusher = tg.create_task(self._flush_loop(), name="flush")
                retention = (tg.create_task(self._retention_loop(), name="retention")
                             if cfg.retention_s else None)
                listen_task = None
                if self._listen is not None:
                    user_runner = self.shards[-1]
                    listen_task = tg.create_task(
                        self._listen.run(lambda: self._restart(user_runner)), name="listenKey")
                await self._wait_for_stop(shard_tasks)
                for r in self.shards:
                    r.stop()
                if self._listen is not None:
                    self._listen.stop()
                await asyncio.gather(*shard_tasks, *( [listen_task] if listen_task else []))
                ingest.cancel()
                self._drain()
                repairer.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(repair_task),
                                           self.config.shutdown_timeout_s / 2)
                repair_task.cancel()
                await self._fanout.drain(handler_tasks, 0.5)
                flusher.cancel()
                if retention is not None:
                    retention.cancel()
        finally:
            if self.metrics is not None:
                await self.metrics.stop()

    def _storage_stats(self) -> dict[str, int]:
        stats = getattr(self.storage, "stats", None)
        if stats is None or not dataclasses.is_dataclass(stats) or isinstance(stats, type):
            return {}
        return {k: v for k, v in dataclasses.asdict(stats).items() if isinstance(v, int)}

    async def _restart(self, runner: ShardRunner) -> None:
        conns = runner.connections
        if conns:
            await conns[-1].close()

    async def _user_runner(self, session: aiohttp.ClientSession, rest: RestClient) -> ShardRunner:
        cfg = self.config
        listen = self._listen = ListenKeyManager(rest, cfg.ws_url, self._api_key, self.secrets,
                                                 cfg.user_events, cfg.keepalive_s)
        await listen.create()
        return ShardRunner("private-0", (USER_STREAM,), listen.plan, session, self.clock,
                           self._on_message, self._on_gap, self._on_down, self._conn_config(),
                           self._policy(), raw_stream=USER_STREAM, redact=self.secrets.redact)

    async def _wait_for_stop(self, shard_tasks: list[asyncio.Task[None]]) -> None:
        timeout = self.config.duration_s
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({stop, *shard_tasks}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop
        self._stop.set()

    async def _retention_loop(self) -> None:
        retention_s = self.config.retention_s
        assert retention_s is not None
        while True:
            await asyncio.to_thread(apply_retention, self.config.archive, time.time_ns(),
                                    retention_s)
            await asyncio.sleep(RETENTION_CHECK_S)

    async def _flush_loop(self) -> None:
        # Journal durability: flushed to the OS at least every 100 ms (issue 4 item 2).
        storage = self.storage
        assert storage is not None
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            self._drain()
            storage.flush(time.time_ns())


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first non-group exception inside ``group`` (depth first)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_leaf(exc)
        return exc
    return group


__all__ = ["Recorder", "StorageFactory", "StorageLike", "default_storage"]
