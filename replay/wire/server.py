"""The Binance USD-M wire server: websocket routes plus REST, fed by a FrameSource.

Paths (BINANCE.md section 1): ``/{public,market,private}/ws/..``, ``/{..}/stream?streams=``,
and the unrouted ``/ws/..`` and ``/stream?..``. Use :class:`WireServer` as an async context
manager; ``ws_url`` / ``rest_url`` give the bound addresses (port 0 picks a free port).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from aiohttp import web

from replay.wire.connection import CLOSE_GOING_AWAY, Connection, ConnLimits
from replay.wire.control import ControlState
from replay.wire.rest import WEIGHT_LIMIT_1M, RestApi, WeightMeter, binance_error, not_found
from replay.wire.routing import RoutingMode, canonical_entry, parse_target
from replay.wire.sendlog import SendLog
from replay.wire.source import FrameSource, Route, Session, SessionQueryCheck
from schemas.errors import ConfigError

_ROUTES = {"public": Route.PUBLIC, "market": Route.MARKET, "private": Route.PRIVATE}


@dataclass(frozen=True, slots=True)
class WireConfig:
    """Where to listen and which rules to apply."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; read the real one from :attr:`WireServer.port`."""
    routing: RoutingMode = RoutingMode.STRICT
    limits: ConnLimits = field(default_factory=ConnLimits)
    weight_limit: int = WEIGHT_LIMIT_1M
    """REST request weight per minute before 429 ``-1003`` (Binance production: 2400)."""


class WireServer:
    """aiohttp application serving one :class:`FrameSource` over the Binance protocol."""

    def __init__(self, source: FrameSource, config: WireConfig | None = None,
                 send_log: SendLog | None = None) -> None:
        self.source = source
        self.config = config or WireConfig()
        self.send_log = send_log
        self.rest = RestApi(source, WeightMeter(self.config.weight_limit))
        self._ids = itertools.count(1)
        self._connections: dict[int, Connection] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------
    def make_app(self) -> web.Application:
        """The aiohttp application (routes only; :meth:`start` runs it)."""
        app = web.Application()
        app.add_routes(self.rest.routes())
        for prefix in ("", "/{route:public|market|private}"):
            app.router.add_get(prefix + "/ws", self._websocket)
            app.router.add_get(prefix + "/ws/{tail:.*}", self._websocket)
            app.router.add_get(prefix + "/stream", self._websocket)
        app.router.add_route("*", "/{path:.*}", not_found)
        return app

    async def start(self) -> None:
        """Bind and start serving."""
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"cannot listen on {self.config.host}:{self.config.port}: "
                              f"{exc.strerror or exc}") from exc
        self._runner = runner
        addresses = runner.addresses
        self._port = int(addresses[0][1]) if addresses else self.config.port

    async def stop(self) -> None:
        """Close every connection with 1001 and stop listening."""
        self._closing = True
        await asyncio.gather(*(c.close(CLOSE_GOING_AWAY, "going away")
                               for c in list(self._connections.values())),
                             return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WireServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._port

    @property
    def ws_url(self) -> str:
        """Websocket base URL, e.g. ``ws://127.0.0.1:PORT``; append ``/public/ws/..``."""
        return f"ws://{self._host_for_url()}:{self._port}"

    @property
    def rest_url(self) -> str:
        """REST base URL, e.g. ``http://127.0.0.1:PORT``; append ``/fapi/v1/..``."""
        return f"http://{self._host_for_url()}:{self._port}"

    def _host_for_url(self) -> str:
        host = self.config.host
        return f"[{host}]" if ":" in host else host

    @property
    def connections(self) -> dict[int, Connection]:
        """Open connections by id (read-only view for tests and sources)."""
        return dict(self._connections)

    # -- websocket -----------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        route = _ROUTES.get(request.match_info.get("route", ""), Route.UNROUTED)
        kind = "stream" if request.path.endswith("/stream") else "ws"
        target = parse_target(route, kind, request.match_info.get("tail", ""),
                              _multi(request))
        if target is None or self._closing:
            return binance_error(404, -1000, "Unknown path.")
        if route is Route.PRIVATE:
            if not target.names:
                return binance_error(400, -1102, "Mandatory parameter 'listenKey' was not "
                                     "sent, was empty/null, or malformed.")
            if not all(self.source.listen_key_known(n.partition("@")[0])
                       for n in target.names):
                return binance_error(400, -1125, "This listenKey does not exist.")
        limits = self.config.limits
        if len(target.names) > limits.max_streams:
            return binance_error(400, -1130, f"Too many streams (max {limits.max_streams}).")
        query = {key: request.query.getone(key) for key in request.query}
        if isinstance(self.source, SessionQueryCheck):
            refusal = self.source.check_session_query(query)
            if refusal is not None:
                return binance_error(400, refusal.code, refusal.msg)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        transport = request.transport
        if transport is None:
            return ws
        conn_id = next(self._ids)
        session = Session(conn_id, route, user_event_names=route is Route.PRIVATE,
                          peer=request.remote or "", url=request.path_qs, query=query)
        control = ControlState(combined=target.combined, max_streams=limits.max_streams,
                               sorted_listing=route is Route.PRIVATE)
        for name in target.names:
            control.subscriptions.setdefault(canonical_entry(name), None)
        conn = Connection(ws, transport, session, control, self.source, self.config.routing,
                          limits, self.send_log, self.source.server_time_ms)
        conn.apply_subscriptions()
        self._connections[conn_id] = conn
        try:
            await conn.run()
        finally:
            del self._connections[conn_id]
        return ws


def _multi(request: web.Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query.items():
        out.setdefault(key, []).append(value)
    return out


async def serve_forever(server: WireServer, stop: asyncio.Event) -> None:
    """Run ``server`` until ``stop`` is set, then shut it down cleanly."""
    async with server:
        await stop.wait()


__all__ = ["WireConfig", "WireServer", "serve_forever"]
