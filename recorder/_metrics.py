"""Prometheus ``/metrics`` and ``/healthz`` on a loopback port.

The recorder keeps plain counters (cheap per message); a custom collector turns them into
metric families at scrape time, so recording never waits on the metrics library.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.errors import ConfigError
from schemas.message import Message

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(slots=True)
class StreamCounters:
    """Per-stream totals."""

    messages: int = 0
    bytes: int = 0
    last_recv_ns: int = 0


@dataclass(slots=True)
class RecorderCounters:
    """Everything ``/metrics`` reports; mutated by the recorder on the event loop."""

    streams: dict[str, StreamCounters] = field(default_factory=dict)
    gaps: dict[str, int] = field(default_factory=dict)
    reconnects: Callable[[], int] = lambda: 0
    queue_depth: Callable[[], dict[str, int]] = dict
    handler_drops: Callable[[], dict[str, int]] = dict
    journal_lag: Callable[[], int] = lambda: 0
    storage_stats: Callable[[], dict[str, int]] = dict
    healthy: Callable[[], bool] = lambda: True

    def count(self, stream: str, size: int, recv_ns: int) -> None:
        """One message of ``size`` characters on ``stream``."""
        c = self.streams.get(stream)
        if c is None:
            c = self.streams[stream] = StreamCounters()
        c.messages += 1
        c.bytes += size
        c.last_recv_ns = recv_ns

    def count_all(self, msgs: Iterable[Message]) -> None:
        """:meth:`count` for each of ``msgs`` (one call per batch on the hot path)."""
        streams = self.streams
        for m in msgs:
            c = streams.get(m.stream)
            if c is None:
                c = streams[m.stream] = StreamCounters()
            c.messages += 1
            c.bytes += len(m.raw)
            c.last_recv_ns = m.recv_ns

    def count_gap(self, kind: str) -> None:
        """One gap written."""
        self.gaps[kind] = self.gaps.get(kind, 0) + 1


class _Collector(Collector):
    def __init__(self, counters: RecorderCounters) -> None:
        self._c = counters

    def collect(self) -> Iterator[Metric]:
        c = self._c
        messages = CounterMetricFamily("ticktape_messages", "Messages recorded", labels=["stream"])
        size = CounterMetricFamily("ticktape_bytes", "Payload bytes recorded", labels=["stream"])
        age = GaugeMetricFamily("ticktape_last_message_age_seconds",
                                "Seconds since the last message", labels=["stream"])
        now = time.time_ns()
        for stream, s in sorted(c.streams.items()):
            messages.add_metric([stream], s.messages)
            size.add_metric([stream], s.bytes)
            age.add_metric([stream], max(0.0, (now - s.last_recv_ns) / 1e9))
        gaps = CounterMetricFamily("ticktape_gaps", "Gaps recorded", labels=["kind"])
        for kind, n in sorted(c.gaps.items()):
            gaps.add_metric([kind], n)
        reconnects = CounterMetricFamily("ticktape_reconnects", "Websocket reconnects")
        reconnects.add_metric([], c.reconnects())
        depth = GaugeMetricFamily("ticktape_queue_depth", "Items waiting in a queue",
                                  labels=["queue"])
        for name, n in sorted(c.queue_depth().items()):
            depth.add_metric([name], n)
        drops = CounterMetricFamily("ticktape_handler_drops", "Events dropped for a slow handler",
                                    labels=["handler"])
        for name, n in sorted(c.handler_drops().items()):
            drops.add_metric([name], n)
        lag = GaugeMetricFamily("ticktape_journal_lag_messages",
                                "Messages journaled but not yet in a sealed Parquet file")
        lag.add_metric([], c.journal_lag())
        storage = GaugeMetricFamily("ticktape_storage", "Storage counters", labels=["counter"])
        for name, n in sorted(c.storage_stats().items()):
            storage.add_metric([name], n)
        yield from (messages, size, age, gaps, reconnects, depth, drops, lag, storage)


class MetricsServer:
    """aiohttp app serving ``/metrics`` and ``/healthz`` on 127.0.0.1 (never all interfaces)."""

    def __init__(self, counters: RecorderCounters, port: int, host: str = "127.0.0.1") -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(counters))
        self._counters = counters
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = 0

    def render(self) -> bytes:
        """The current exposition text."""
        return bytes(generate_latest(self.registry))

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = self._counters.healthy()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "unhealthy\n")

    async def start(self) -> None:
        """Bind and serve; ``port`` is the bound port (useful with port 0)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"cannot serve metrics on {self._host}:{self._port}: "
                              f"{exc.strerror or exc}") from None
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


__all__ = ["MetricsServer", "RecorderCounters", "StreamCounters"]
