"""The Binance USD-M REST endpoints real client libraries call (BINANCE.md sections 4-6).

Answers come from the :class:`~replay.wire.source.FrameSource`; this module validates
parameters, meters request weight and shapes errors like Binance
(``{"code": -1121, "msg": "Invalid symbol."}``).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web

from replay.wire.source import FrameSource

# Binance request weights (BINANCE.md section 4 and 6).
DEPTH_WEIGHTS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
AGG_TRADES_WEIGHT = 20
WEIGHT_LIMIT_1M = 2400
"""Production IP budget per minute (section 4)."""


class WeightMeter:
    """``X-MBX-USED-WEIGHT-1M``: request weight used over the last 60 s."""

    def __init__(self, limit: int = WEIGHT_LIMIT_1M) -> None:
        self.limit = limit
        self._spent: deque[tuple[float, int]] = deque()
        self._used = 0

    def spend(self, weight: int) -> bool:
        """Add ``weight``; ``False`` if that would exceed the limit (the request is refused)."""
        now = time.monotonic()
        while self._spent and now - self._spent[0][0] >= 60.0:
            self._used -= self._spent.popleft()[1]
        if self._used + weight > self.limit:
            return False
        self._spent.append((now, weight))
        self._used += weight
        return True

    @property
    def used(self) -> int:
        """Weight used in the current minute window."""
        return self._used


def binance_error(status: int, code: int, msg: str, meter: WeightMeter | None = None,
                  headers: dict[str, str] | None = None) -> web.Response:
    """A Binance-shaped JSON error response."""
    extra = dict(headers or {})
    if meter is not None:
        extra["X-MBX-USED-WEIGHT-1M"] = str(meter.used)
    return web.Response(status=status, body=orjson.dumps({"code": code, "msg": msg}),
                        content_type="application/json", headers=extra)


def _json(obj: Any, meter: WeightMeter) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json",
                        headers={"X-MBX-USED-WEIGHT-1M": str(meter.used)})


def _mandatory(name: str) -> str:
    return f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


class RestApi:
    """aiohttp handlers for ``/fapi/v1/*`` backed by a source."""

    def __init__(self, source: FrameSource, meter: WeightMeter | None = None) -> None:
        self.source = source
        self.meter = meter or WeightMeter()

    def routes(self) -> list[web.RouteDef]:
        """The route table to add to an ``aiohttp`` application."""
        return [
            web.get("/fapi/v1/ping", self.ping),
            web.get("/fapi/v1/time", self.time),
            web.get("/fapi/v1/exchangeInfo", self.exchange_info),
            web.get("/fapi/v1/depth", self.depth),
            web.get("/fapi/v1/aggTrades", self.agg_trades),
            web.post("/fapi/v1/listenKey", self.listen_key),
            web.put("/fapi/v1/listenKey", self.listen_key),
            web.delete("/fapi/v1/listenKey", self.listen_key),
        ]

    def _over_budget(self, weight: int) -> web.Response | None:
        if self.meter.spend(weight):
            return None
        # Binance: over the IP budget -> 429 with -1003 and Retry-After in seconds.
        return binance_error(429, -1003, "Too many requests; current limit of IP request "
                             f"weight per 1 MINUTE is {self.meter.limit}.", self.meter,
                             {"Retry-After": "60"})

    async def ping(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/ping`` -> ``{}``."""
        return self._over_budget(1) or _json({}, self.meter)

    async def time(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/time`` -> ``{"serverTime": ms}`` (the source's clock)."""
        return self._over_budget(1) or _json({"serverTime": self.source.server_time_ms()},
                                             self.meter)

    async def exchange_info(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/exchangeInfo`` with the source's symbols."""
        if refused := self._over_budget(1):
            return refused
        symbols = await self.source.exchange_symbols()
        return _json({
            "timezone": "UTC",
            "serverTime": self.source.server_time_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.meter.limit},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True,
                        "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        }, self.meter)

    async def depth(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/depth?symbol=&limit=`` (default 500; weight by limit)."""
        symbol = request.query.get("symbol", "").upper()
        if not symbol:
            return binance_error(400, -1102, _mandatory("symbol"), self.meter)
        try:
            limit = int(request.query.get("limit", "500"))
        except ValueError:
            limit = -1
        if limit not in DEPTH_WEIGHTS:
            return binance_error(400, -1130, "Data sent for parameter 'limit' is not valid.",
                                 self.meter)
        if refused := self._over_budget(DEPTH_WEIGHTS[limit]):
            return refused
        snapshot = await self.source.depth_snapshot(symbol, limit)
        if snapshot is None:
            return binance_error(400, -1121, "Invalid symbol.", self.meter)
        return _json(snapshot, self.meter)

    async def agg_trades(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/aggTrades?symbol=&fromId=&limit=`` (``fromId`` inclusive)."""
        query = request.query
        symbol = query.get("symbol", "").upper()
        if not symbol:
            return binance_error(400, -1102, _mandatory("symbol"), self.meter)
        from_id: int | None = None
        if "fromId" in query:
            text = query["fromId"]
            if not text.isdigit() or len(text) > 20:
                return binance_error(400, -1100, "Illegal characters found in parameter "
                                     "'fromId'; legal range is '^[0-9]{1,20}$'.", self.meter)
            from_id = int(text)
        try:
            limit = int(query.get("limit", "500"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 1000:
            return binance_error(400, -1130, "Data sent for parameter 'limit' is not valid.",
                                 self.meter)
        if refused := self._over_budget(AGG_TRADES_WEIGHT):
            return refused
        rows = await self.source.agg_trades(symbol, from_id, limit)
        if rows is None:
            return binance_error(400, -1121, "Invalid symbol.", self.meter)
        return _json(rows, self.meter)

    async def listen_key(self, request: web.Request) -> web.Response:
        """``POST`` create/extend, ``PUT`` keep alive, ``DELETE`` close (section 5)."""
        if refused := self._over_budget(1):
            return refused
        api_key = request.headers.get("X-MBX-APIKEY", "").strip()
        if not api_key:
            return binance_error(400, -2014, "API-key format invalid.", self.meter)
        if request.method == "POST":
            key = await self.source.create_listen_key(api_key)
            if key is None:
                return binance_error(401, -2015, "Invalid API-key, IP, or permissions for "
                                     "action.", self.meter)
            return _json({"listenKey": key}, self.meter)
        given = request.query.get("listenKey", "")
        if not given and request.can_read_body:
            given = (await request.post()).get("listenKey", "")  # type: ignore[assignment]
        if request.method == "PUT":
            if not await self.source.keepalive_listen_key(api_key, str(given)):
                return binance_error(400, -1125, "This listenKey does not exist.", self.meter)
            return _json({"listenKey": await self.source.create_listen_key(api_key)},
                         self.meter)
        if not await self.source.delete_listen_key(api_key, str(given)):
            return binance_error(400, -1125, "This listenKey does not exist.", self.meter)
        return _json({}, self.meter)


async def not_found(request: web.Request) -> web.Response:
    """Any other path: a Binance-shaped JSON 404."""
    return binance_error(404, -1000, f"Unknown path {request.path}.")


__all__ = ["AGG_TRADES_WEIGHT", "DEPTH_WEIGHTS", "WEIGHT_LIMIT_1M", "RestApi", "WeightMeter",
           "binance_error",
           "not_found"]
