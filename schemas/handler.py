"""The one callback interface shared by live capture, replay and tests.

A handler is either an object with ``on_message`` and ``on_gap`` coroutine methods, or a plain
callable (``async def handler(event)`` or a sync function) that receives both
:class:`~schemas.message.Message` and :class:`~schemas.message.Gap` events. Use
:func:`as_handler` to accept either form.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from schemas.message import Event, Gap, Message


@runtime_checkable
class Handler(Protocol):
    """Receives messages and gaps in archive order."""

    async def on_message(self, msg: Message) -> None:
        """Called once per message."""

    async def on_gap(self, gap: Gap) -> None:
        """Called once per gap, before the first message after the gap's start."""


HandlerLike = Handler | Callable[[Event], Awaitable[Any] | Any]


class CallableHandler:
    """Adapts a plain callable (sync or async) to :class:`Handler`."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Event], Any]) -> None:
        self.func = func

    async def on_message(self, msg: Message) -> None:
        result = self.func(msg)
        if inspect.isawaitable(result):
            await result

    async def on_gap(self, gap: Gap) -> None:
        result = self.func(gap)
        if inspect.isawaitable(result):
            await result


def as_handler(obj: HandlerLike) -> Handler:
    """Return ``obj`` as a :class:`Handler`, wrapping a plain callable if needed."""
    if isinstance(obj, Handler):
        return obj
    if callable(obj):
        return CallableHandler(obj)
    raise TypeError(f"not a handler: {obj!r} (need on_message/on_gap or a callable)")


async def deliver(handler: Handler, event: Event) -> None:
    """Send one event to ``handler`` through the method matching its type."""
    if isinstance(event, Message):
        await handler.on_message(event)
    else:
        await handler.on_gap(event)


__all__ = ["CallableHandler", "Handler", "HandlerLike", "as_handler", "deliver"]
