"""Retry policy as data: full-jitter capped backoff and error classification."""

from __future__ import annotations

import itertools
import random

import aiohttp
import pytest

from recorder._backoff import Retry, backoff, classify
from schemas.errors import ConfigError, ExchangeError, FatalExchangeError


def test_backoff_is_full_jitter_and_capped() -> None:
    delays = list(itertools.islice(backoff(0.5, 8.0, 2.0, random.Random(1)), 200))
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(200)]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[10:]) > 4.0  # reaches near the cap
    assert len(set(delays)) == len(delays)  # jittered, not lock-step


def test_backoff_is_endless() -> None:
    gen = backoff(0.01, 0.02)
    assert len(list(itertools.islice(gen, 10_000))) == 10_000


def test_backoff_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        next(backoff(0, 1))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ExchangeError("closed"), Retry.RETRYABLE),
        (FatalExchangeError("bad stream"), Retry.FATAL),
        (ConnectionResetError(), Retry.RETRYABLE),
        (TimeoutError(), Retry.RETRYABLE),
        (aiohttp.ClientConnectionError("refused"), Retry.RETRYABLE),
        (aiohttp.ServerDisconnectedError(), Retry.RETRYABLE),
        (ConfigError("bad"), Retry.FATAL),
        (RuntimeError("bug"), Retry.FATAL),
    ],
)
def test_classify(exc: BaseException, expected: Retry) -> None:
    assert classify(exc) is expected


def _handshake(status: int) -> aiohttp.WSServerHandshakeError:
    return aiohttp.WSServerHandshakeError(None, (), status=status)  # type: ignore[arg-type]


def test_classify_handshake_status() -> None:
    assert classify(_handshake(401)) is Retry.FATAL
    assert classify(_handshake(400)) is Retry.FATAL
    assert classify(_handshake(429)) is Retry.RETRYABLE
    assert classify(_handshake(503)) is Retry.RETRYABLE
