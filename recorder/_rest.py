"""REST client for depth snapshots, aggTrade backfill and listenKeys, under a weight budget.

Binance rules (BINANCE.md section 4): every request costs a weight (depth: limit 5-50 -> 2,
100 -> 5, 500 -> 10, 1000 -> 20; aggTrades -> 20; listenKey -> 1), the IP budget is 2400 per
minute, ``X-MBX-USED-WEIGHT-1M`` reports usage, and overuse answers 429 then 418 (ban) with
``Retry-After`` in seconds. :class:`WeightBudget` is the pure bookkeeping; :class:`RestClient`
the aiohttp boundary that maps every failure to :class:`~schemas.errors.ExchangeError`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from schemas.errors import ExchangeError, FatalExchangeError

WEIGHT_LIMIT_PER_MIN = 2400
AGG_TRADES_WEIGHT = 20
LISTEN_KEY_WEIGHT = 1
_WINDOW_S = 60.0


def depth_weight(limit: int) -> int:
    """Request weight of ``GET /fapi/v1/depth`` for ``limit`` (BINANCE.md section 4)."""
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


class WeightBudget:
    """Sliding one-minute request-weight budget, plus bans announced by ``Retry-After``.

    Pure: pass the current (monotonic) time. Keeps a margin below the exchange limit so the
    recorder never draws a 429 under normal operation.
    """

    def __init__(self, limit_per_min: int = WEIGHT_LIMIT_PER_MIN, margin: float = 0.8) -> None:
        self.limit = int(limit_per_min * margin)
        self._spent: collections.deque[tuple[float, int]] = collections.deque()
        self._used = 0
        self._server_used = 0
        self._server_seen = 0.0
        self.blocked_until = 0.0

    def _expire(self, now: float) -> None:
        while self._spent and now - self._spent[0][0] >= _WINDOW_S:
            self._used -= self._spent.popleft()[1]

    def used(self, now: float) -> int:
        """Weight spent in the last minute (ours, or the server's report if higher)."""
        self._expire(now)
        server = self._server_used if now - self._server_seen < _WINDOW_S else 0
        return max(self._used, server)

    def delay(self, now: float, weight: int) -> float:
        """Seconds to wait before a request of ``weight`` fits the budget (0 = go)."""
        if now < self.blocked_until:
            return self.blocked_until - now
        if self.used(now) + weight <= self.limit or not self._spent:
            return 0.0
        # Wait until enough old requests leave the window.
        need = self.used(now) + weight - self.limit
        freed = 0
        for at, w in self._spent:
            freed += w
            if freed >= need:
                return max(0.0, at + _WINDOW_S - now)
        return _WINDOW_S

    def spend(self, now: float, weight: int) -> None:
        """Record a request of ``weight`` sent at ``now``."""
        self._spent.append((now, weight))
        self._used += weight

    def observe(self, now: float, server_used: int) -> None:
        """Take the server's ``X-MBX-USED-WEIGHT-1M`` report into account."""
        self._server_used = server_used
        self._server_seen = now

    def block(self, now: float, seconds: float) -> None:
        """429/418 with ``Retry-After``: send nothing until it has passed."""
        self.blocked_until = max(self.blocked_until, now + max(1.0, seconds))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A depth snapshot: the exact response text and its ``lastUpdateId``."""

    raw: str
    last_update_id: int


class RestError(ExchangeError):
    """A REST call failed; ``status`` and Binance ``code`` when known."""

    def __init__(self, message: str, status: int = 0, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class FatalRestError(RestError, FatalExchangeError):
    """A REST call failed in a way retrying cannot fix (bad symbol, bad key)."""


class RestClient:
    """Binance-compatible REST calls used by repair and user data. Never logs secrets."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        budget: WeightBudget | None = None,
        timeout_s: float = 10.0,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.base_url = base_url
        self.budget = budget or WeightBudget()
        self.requests = 0
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._redact = redact or (lambda s: s)

    async def _request(self, method: str, path: str, weight: int,
                       params: dict[str, str] | None = None,
                       headers: dict[str, str] | None = None) -> str:
        loop = asyncio.get_running_loop()
        delay = self.budget.delay(loop.time(), weight)
        if delay > 0:
            await asyncio.sleep(delay)
        self.budget.spend(loop.time(), weight)
        self.requests += 1
        what = f"{method} {path}"
        try:
            async with self._session.request(method, self.base_url + path, params=params,
                                             headers=headers, timeout=self._timeout) as resp:
                text = await resp.text()
                used = resp.headers.get("X-MBX-USED-WEIGHT-1M")
                if used is not None and used.isdigit():
                    self.budget.observe(loop.time(), int(used))
                status = resp.status
                retry_after = resp.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            detail = self._redact(str(exc)) or type(exc).__name__
            raise RestError(f"{what} failed: {type(exc).__name__}: {detail}") from None
        if status in (418, 429):
            # Binance: 429 = slow down, 418 = banned; Retry-After says for how long.
            seconds = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 60.0
            self.budget.block(loop.time(), seconds)
            raise RestError(f"{what}: rate limited (HTTP {status}), retry after {seconds:g} s",
                            status)
        if status >= 400:
            code, msg = _binance_error(text)
            cls = FatalRestError if status in (400, 401, 403, 404) and code != -1125 else RestError
            shown = self._redact(msg)[:200]
            raise cls(f"{what}: HTTP {status} {code if code is not None else ''} {shown}".rstrip(),
                      status, code)
        return text

    async def depth_snapshot(self, symbol: str, limit: int = 1000) -> Snapshot:
        """``GET /fapi/v1/depth``; the stored row is the exact response text."""
        text = await self._request("GET", "/fapi/v1/depth", depth_weight(limit),
                                   {"symbol": symbol.upper(), "limit": str(limit)})
        data = _json(text, "depth snapshot")
        last = data.get("lastUpdateId") if isinstance(data, dict) else None
        if not isinstance(last, int):
            raise RestError("depth snapshot without lastUpdateId")
        return Snapshot(text, last)

    async def agg_trades(self, symbol: str, from_id: int, limit: int = 1000) -> list[str]:
        """``GET /fapi/v1/aggTrades?fromId=`` (inclusive): each row as compact JSON text.

        Binance returns rows without ``e``/``E``/``s`` (BINANCE.md section 6), so a row is
        not a websocket payload; it is stored as its own JSON text with ``source='rest'``
        rather than dressed up as a frame that was never received. orjson keeps key order,
        so for Binance's compact responses the row text is the exact response substring.
        """
        text = await self._request("GET", "/fapi/v1/aggTrades", AGG_TRADES_WEIGHT,
                                   {"symbol": symbol.upper(), "fromId": str(from_id),
                                    "limit": str(limit)})
        rows = _json(text, "aggTrades")
        if not isinstance(rows, list):
            raise RestError("aggTrades answer is not a list")
        return [orjson.dumps(row).decode() for row in rows if isinstance(row, dict)]

    async def listen_key(self, api_key: str, method: str = "POST", key: str = "") -> str:
        """``POST`` (create/extend) or ``PUT`` (keepalive ``key``) ``/fapi/v1/listenKey``.

        The keepalive names the key it extends, as python-binance does; Binance's futures
        endpoint extends the account's key either way.
        """
        params = {"listenKey": key} if key else None
        text = await self._request(method, "/fapi/v1/listenKey", LISTEN_KEY_WEIGHT, params,
                                   headers={"X-MBX-APIKEY": api_key})
        data = _json(text, "listenKey")
        answer = data.get("listenKey") if isinstance(data, dict) else None
        if method == "PUT" and not answer:
            return ""
        if not isinstance(answer, str) or not answer:
            raise RestError("listenKey answer without a key")
        return answer


def _json(text: str, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise RestError(f"{what}: answer is not JSON") from None


def _binance_error(text: str) -> tuple[int | None, str]:
    """``{"code": -1121, "msg": "Invalid symbol."}`` -> ``(-1121, "Invalid symbol.")``."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, ""
    if isinstance(data, dict):
        code = data.get("code")
        return (code if isinstance(code, int) else None), str(data.get("msg", ""))
    return None, ""


__all__ = [
    "AGG_TRADES_WEIGHT",
    "WEIGHT_LIMIT_PER_MIN",
    "FatalRestError",
    "RestClient",
    "RestError",
    "Snapshot",
    "WeightBudget",
    "depth_weight",
]
