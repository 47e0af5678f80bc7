"""Reconnect policy as data: a backoff generator and an exception classifier.

Modelled on python-websockets (``asyncio/client.py``: ``backoff()`` and ``process_exception``):
the reconnect loop asks :func:`classify` whether an error is worth retrying and draws its next
delay from :func:`backoff`; no catch-all ``while True: try/except Exception``.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Iterator

import aiohttp

from schemas.errors import ExchangeError, FatalExchangeError, TicktapeError

INITIAL_DELAY_S = 0.5
MAX_DELAY_S = 60.0
FACTOR = 2.0


class Retry(enum.StrEnum):
    """What the reconnect loop should do after an error."""

    RETRYABLE = "retryable"
    """Transient (network, 5xx, 429, server close): reconnect after a backoff delay."""
    FATAL = "fatal"
    """Retrying cannot help (bad stream, bad credentials, bad configuration): stop."""


def backoff(
    initial: float = INITIAL_DELAY_S,
    cap: float = MAX_DELAY_S,
    factor: float = FACTOR,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield reconnect delays in seconds forever: capped exponential with full jitter.

    The n-th delay is uniform in ``[0, min(cap, initial * factor**n)]`` ("full jitter",
    AWS architecture blog), so many recorders reconnecting at once spread out instead of
    hammering the exchange in lock-step (BINANCE.md section 7: reconnect storms).
    """
    if initial <= 0 or cap <= 0 or factor < 1:
        raise ValueError("backoff needs initial > 0, cap > 0 and factor >= 1")
    draw = rng if rng is not None else random.Random()
    ceiling = initial
    while True:
        yield draw.uniform(0.0, min(cap, ceiling))
        ceiling = min(cap, ceiling * factor)


# HTTP statuses at the websocket handshake or REST call that no retry can fix.
# 400 bad request (bad stream / parameters), 401/403 auth, 404 wrong path.
# 429 and 418 (BINANCE.md section 4) are rate limits: retryable after Retry-After.
_FATAL_STATUSES = frozenset({400, 401, 403, 404, 405, 410})


def classify(exc: BaseException) -> Retry:
    """Say whether ``exc`` (raised while connecting or reading) is retryable or fatal."""
    if isinstance(exc, FatalExchangeError):
        return Retry.FATAL
    if isinstance(exc, aiohttp.WSServerHandshakeError | aiohttp.ClientResponseError):
        return Retry.FATAL if exc.status in _FATAL_STATUSES else Retry.RETRYABLE
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return Retry.FATAL
    if isinstance(
        exc,
        ExchangeError | aiohttp.ClientError | asyncio.TimeoutError | ConnectionError | OSError,
    ):
        return Retry.RETRYABLE
    if isinstance(exc, TicktapeError):
        return Retry.FATAL
    return Retry.FATAL


__all__ = ["FACTOR", "INITIAL_DELAY_S", "MAX_DELAY_S", "Retry", "backoff", "classify"]
