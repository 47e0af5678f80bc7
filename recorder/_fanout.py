"""Live fan-out of messages and gaps to user handlers, never slowing the recorder.

Each handler gets a bounded queue and one worker task. Publishing is ``put_nowait``: when a
handler's queue is full the event is dropped for that handler only, counted, and the handler
later receives one ``rejected`` :class:`~schemas.message.Gap` covering what it missed. A handler
that raises is logged (first error and then every 1000th) and keeps receiving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from schemas.handler import Handler, HandlerLike, as_handler, deliver
from schemas.message import WILDCARD_STREAM, Event, Gap, GapKind, Message

log = logging.getLogger("ticktape.recorder")


class _Subscriber:
    __slots__ = ("drop_end_ns", "drop_start_ns", "dropped", "errors", "handler", "name", "queue",
                 "unreported")

    def __init__(self, handler: Handler, name: str, size: int) -> None:
        self.handler = handler
        self.name = name
        self.queue: asyncio.Queue[Event] = asyncio.Queue(size)
        self.dropped = 0
        self.unreported = 0
        self.drop_start_ns = 0
        self.drop_end_ns = 0
        self.errors = 0


def _event_ns(event: Event) -> int:
    return event.recv_ns if isinstance(event, Message) else event.start_ns


class Fanout:
    """Bounded per-handler delivery; :meth:`run` owns the worker tasks."""

    def __init__(self, handlers: Sequence[HandlerLike], queue_size: int = 10_000) -> None:
        if queue_size < 2:
            raise ValueError("handler queue size must be at least 2")
        self._subs: list[_Subscriber] = []
        for i, h in enumerate(handlers):
            handler = as_handler(h)
            name = f"{i}:{getattr(h, '__name__', type(h).__name__)}"
            self._subs.append(_Subscriber(handler, name, queue_size))

    def __bool__(self) -> bool:
        return bool(self._subs)

    def publish(self, event: Event) -> None:
        """Offer ``event`` to every handler without waiting."""
        for sub in self._subs:
            q = sub.queue
            if sub.unreported and q.maxsize - q.qsize() >= 2:
                q.put_nowait(Gap(WILDCARD_STREAM, sub.drop_start_ns, sub.drop_end_ns,
                                 GapKind.REJECTED,
                                 f"{sub.unreported} events dropped: handler {sub.name} too slow"))
                sub.unreported = 0
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                ns = _event_ns(event)
                if not sub.unreported:
                    sub.drop_start_ns = ns
                sub.drop_end_ns = max(ns, sub.drop_end_ns)
                sub.dropped += 1
                sub.unreported += 1

    def depths(self) -> dict[str, int]:
        """Queue depth per handler (for /metrics and the status display)."""
        return {f"handler:{s.name}": s.queue.qsize() for s in self._subs}

    def drops(self) -> dict[str, int]:
        """Events dropped per handler."""
        return {s.name: s.dropped for s in self._subs}

    async def run(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        """Start one worker per handler in ``tg``; returns the tasks (cancel them to stop)."""
        return [tg.create_task(self._work(sub), name=f"handler {sub.name}") for sub in self._subs]

    async def drain(self, tasks: list[asyncio.Task[None]], timeout_s: float) -> None:
        """Give handlers up to ``timeout_s`` to empty their queues, then cancel the workers."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while any(not s.queue.empty() for s in self._subs) and loop.time() < end:
            await asyncio.sleep(0.02)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @staticmethod
    async def _work(sub: _Subscriber) -> None:
        while True:
            event = await sub.queue.get()
            try:
                await deliver(sub.handler, event)
            except Exception as exc:  # a user handler must never break recording
                sub.errors += 1
                if sub.errors == 1 or sub.errors % 1000 == 0:
                    log.warning("handler %s raised %s: %s (%d errors so far)", sub.name,
                                type(exc).__name__, exc, sub.errors)


__all__ = ["Fanout"]
