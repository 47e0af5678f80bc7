"""User data stream: listenKey life cycle and secret hygiene (BINANCE.md section 5).

* ``POST /fapi/v1/listenKey`` with header ``X-MBX-APIKEY`` creates (or extends) the key;
  ``PUT`` every 30 min keeps it alive (keys last 60 min); a ``-1125`` / 401 / 400 answer or a
  ``listenKeyExpired`` event means: create a new key and reconnect with it.
* The socket is ``/private/ws?listenKey=<k>[&events=A/B]``; events are stored under the stream
  ``userData`` (never a name containing the key).
* The API key comes from the environment (``TICKTAPE_API_KEY``) or a ``.env`` file, never from
  argv. :class:`Secrets` scrubs the key and every listenKey from any text that may reach a log,
  an exception, a gap detail or metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from dotenv import dotenv_values

from recorder._rest import RestClient, RestError
from recorder._routing import private_url
from recorder._shard import ConnectPlan
from schemas.errors import ConfigError, ExchangeError
from schemas.message import Message

log = logging.getLogger("ticktape.recorder")

API_KEY_ENV = "TICKTAPE_API_KEY"
USER_STREAM = "userData"
KEEPALIVE_S = 30 * 60.0
"""Binance: a listenKey lives 60 min; extend it every 30 min."""

_EXPIRED_MARK = '"e":"listenKeyExpired"'
_REDACTED = "<redacted>"


class Secrets:
    """The secret strings of this process and a scrubber for any text leaving it."""

    def __init__(self) -> None:
        self._values: list[str] = []

    def add(self, value: str) -> None:
        """Remember ``value`` (an API key or listenKey) for redaction."""
        if value and value not in self._values:
            self._values.append(value)
            self._values.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``<redacted>``."""
        for value in self._values:
            if value in text:
                text = text.replace(value, _REDACTED)
        return text


class RedactingFilter(logging.Filter):
    """Logging filter that scrubs secrets from every record passing a handler."""

    def __init__(self, secrets: Secrets) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self._secrets.redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True


def load_api_key(env_file: str | Path = ".env") -> str:
    """The API key from ``$TICKTAPE_API_KEY`` or from ``env_file``; ConfigError if absent."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        path = Path(env_file)
        if path.is_file():
            key = (dotenv_values(path).get(API_KEY_ENV) or "").strip()
    if not key:
        raise ConfigError(
            f"user data needs an API key: set {API_KEY_ENV} in the environment or in .env"
        )
    if any(c.isspace() for c in key) or not key.isascii():
        raise ConfigError(f"{API_KEY_ENV} must be one ASCII token without spaces")
    return key


class ListenKeyManager:
    """Creates, keeps alive and re-creates the listenKey; builds the private URL."""

    def __init__(
        self,
        rest: RestClient,
        ws_url: str,
        api_key: str,
        secrets: Secrets,
        events: tuple[str, ...] = (),
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self._rest = rest
        self._ws_url = ws_url
        self._api_key = api_key
        self._secrets = secrets
        self._events = events
        self._keepalive_s = keepalive_s
        self._key = ""
        self._expired = asyncio.Event()
        self._stop = asyncio.Event()
        self.renewals = 0
        self.recreations = 0
        secrets.add(api_key)

    @property
    def ready(self) -> bool:
        """True once a key exists."""
        return bool(self._key)

    async def create(self) -> None:
        """``POST /fapi/v1/listenKey``: create (or extend) the key."""
        key = await self._rest.listen_key(self._api_key, "POST")
        self._secrets.add(key)
        self._key = key

    def plan(self) -> ConnectPlan:
        """Connect plan for the current key (called on every connection attempt)."""
        return ConnectPlan(private_url(self._ws_url, self._key, self._events))

    def watch(self, msg: Message) -> None:
        """Spot ``listenKeyExpired`` in the stored stream and trigger a re-create."""
        if _EXPIRED_MARK in msg.raw:
            self._expired.set()

    def stop(self) -> None:
        """End :meth:`run`."""
        self._stop.set()

    async def run(self, reconnect: Callable[[], asyncio.Future[None] | object]) -> None:
        """Keep the key alive; on expiry or a rejected keepalive, re-create and reconnect."""
        while not self._stop.is_set():
            expired = await self._wait(self._keepalive_s)
            if self._stop.is_set():
                return
            renewed = False
            if not expired:
                try:
                    await self._rest.listen_key(self._api_key, "PUT", self._key)
                    renewed = True
                    self.renewals += 1
                except RestError as exc:
                    # -1125 unknown key, 400/401: the key is gone; make a new one.
                    log.warning("listenKey keepalive failed: %s", self._secrets.redact(str(exc)))
                except ExchangeError as exc:
                    log.warning("listenKey keepalive failed: %s", self._secrets.redact(str(exc)))
                    continue
            if renewed:
                continue
            self._expired.clear()
            old = self._key
            try:
                await self.create()
            except ExchangeError as exc:
                log.warning("listenKey re-create failed: %s", self._secrets.redact(str(exc)))
                continue
            if self._key == old and not expired:
                continue  # Binance returned (and extended) the key we already use
            self.recreations += 1
            log.info("listenKey re-created; reconnecting the user data stream")
            result = reconnect()
            if asyncio.isfuture(result) or asyncio.iscoroutine(result):
                await result

    async def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; True early if the key expired, returns at once when stopped."""
        expired = asyncio.ensure_future(self._expired.wait())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({expired, stop}, timeout=seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (expired, stop):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return self._expired.is_set()


__all__ = [
    "API_KEY_ENV",
    "KEEPALIVE_S",
    "USER_STREAM",
    "ListenKeyManager",
    "RedactingFilter",
    "Secrets",
    "load_api_key",
]
