"""The contract between the Binance wire server and whatever feeds it.

One server, two sources (DESIGN.md "The simulated exchange"): :mod:`replay.wire.server`
speaks the Binance USD-M websocket and REST protocol; a :class:`FrameSource` supplies the data.
``ticktape sim`` plugs in a seeded synthetic market (:mod:`replay.sim`), ``ticktape serve`` an
archive replay.

Division of labour
------------------
The **server** owns every piece of per-connection protocol state: the route (``/public``,
``/market``, ``/private`` or unrouted), raw vs combined mode (including ``SET_PROPERTY
combined``), the subscription set changed by SUBSCRIBE / UNSUBSCRIBE, routing rules
(BINANCE.md section 1: a stream on the wrong route is acknowledged and then silent, so it never
reaches :attr:`Session.streams`), control-message replies, rate limits, pings, the connection
lifetime, the combined envelope and the send log.

The **source** owns the data: for each client session it returns an async iterator of
:data:`Item` values, already paced (the sim broadcasts its live market; an archive source
replays from ``--start`` at ``--speed`` for each client), containing only frames the session
currently wants (read :attr:`Session.streams` and :meth:`Session.user_stream` each time,
they change while the connection lives). It also answers the REST questions.

A source may also implement :class:`SessionQueryCheck`: the server then asks it about the
websocket URL's query parameters before the upgrade and refuses bad ones with HTTP 400 and
the Binance error it returns (``serve``'s per-client ``start=``/``speed=``; the sim, like
Binance, ignores parameters it does not know).

Lifecycle: the server creates one :class:`Session` per accepted websocket, calls
:meth:`FrameSource.open_session` once, iterates it until the connection ends, then calls
``aclose()`` on the iterator (so a source's ``finally`` blocks run). The iterator ending on
its own means "no more data": the server keeps the connection open (pings, control messages)
until the client or the lifetime limit closes it.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

Frame: TypeAlias = tuple[str, str]
"""``(stream_name, payload_text)``: the canonical stream name (as produced by
:func:`schemas.streams.parse_stream`, or :meth:`Session.user_stream` for user data) and the
exact payload JSON text. In combined mode the server wraps it with
:func:`schemas.wire.make_envelope`; in raw mode it sends ``payload_text`` unchanged."""


class Route(enum.StrEnum):
    """The path prefix a client connected under (BINANCE.md section 1)."""

    PUBLIC = "public"
    MARKET = "market"
    PRIVATE = "private"
    UNROUTED = "unrouted"
    """``/ws/..`` or ``/stream?..`` without a route: public-class only, unless legacy routes."""


@dataclass(frozen=True, slots=True)
class Drop:
    """Fault action: end the TCP connection without a close frame (client sees 1006).

    By default the connection is aborted at once (frames still queued are lost, like a
    network failure); with ``flush`` the queued frames are delivered first (``serve``
    replaying a recorded drop: the recorder received everything before it).
    """

    flush: bool = False


@dataclass(frozen=True, slots=True)
class Close:
    """Fault action: send a websocket close frame with ``code`` and ``reason``, then end."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RawFrame:
    """Fault action: send ``data`` verbatim as one frame (``str`` = text, ``bytes`` = binary).

    Used for malformed text and binary frames; never wrapped in an envelope.
    """

    data: str | bytes
    note: str = ""


@dataclass(frozen=True, slots=True)
class Stall:
    """Fault action: send nothing at all (no data, no pings, no replies) for ``seconds``."""

    seconds: float


Action: TypeAlias = Drop | Close | RawFrame | Stall
"""Something other than data the source asks the server to do on this connection."""

Item: TypeAlias = Sequence[Frame] | Action
"""What a session iterator yields: a batch of frames to send in order, or one action."""


@dataclass(eq=False, slots=True)
class Session:
    """One client websocket as the source sees it. Owned and mutated by the server.

    Sources must treat it as read-only. ``streams`` and ``user`` are replaced (never mutated
    in place) whenever the client (un)subscribes, so a source may keep a reference to the old
    value and compare by identity; ``version`` increases on every change.
    """

    conn_id: int
    """Server-wide connection number, starting at 1; also the send log's key."""
    route: Route
    streams: frozenset[str] = frozenset()
    """Canonical market stream names this connection receives (already route-filtered)."""
    user: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    """listenKey -> allowed user event types (``e`` values); ``None`` means all events."""
    user_event_names: bool = True
    """True on ``/private`` (frames named ``<key>@<EVENT>``); False on legacy ``/ws/<key>``."""
    version: int = 0
    peer: str = ""
    """The client's address (``request.remote``), ``""`` when unknown."""
    url: str = ""
    """The path and query the client connected with, exactly as sent (``/ws/a?start=..``)."""
    query: Mapping[str, str] = field(default_factory=dict)
    """The URL's query parameters (first value of each); sources read their options here."""

    def user_stream(self, listen_key: str, event: str) -> str | None:
        """Stream name to frame a user event ``event`` of ``listen_key`` under, or ``None``.

        ``None`` when this session does not carry that key or the ``events`` allow-list
        excludes the event (BINANCE.md section 5: unlisted events never arrive). On
        ``/private`` the name is ``<key>@<EVENT>``; on legacy ``/ws/<key>`` it is ``<key>``.
        """
        if listen_key not in self.user:
            return None
        allowed = self.user[listen_key]
        if allowed is not None and event not in allowed:
            return None
        return f"{listen_key}@{event}" if self.user_event_names else listen_key


@dataclass(frozen=True, slots=True)
class QueryRefusal:
    """A Binance-shaped error refusing a websocket URL (HTTP 400 ``{"code","msg"}``)."""

    code: int
    msg: str


@runtime_checkable
class SessionQueryCheck(Protocol):
    """Optional part of a source: it reads options from the websocket URL's query."""

    def check_session_query(self, query: Mapping[str, str]) -> QueryRefusal | None:
        """``None`` if ``query`` (first value of each parameter) is acceptable."""
        ...


@runtime_checkable
class FrameSource(Protocol):
    """What the wire server needs from a data source. See the module docstring."""

    def open_session(self, session: Session) -> AsyncIterator[Item]:
        """Return the paced, filtered frame iterator for one new connection."""
        ...

    async def depth_snapshot(self, symbol: str, limit: int) -> dict[str, Any] | None:
        """``GET /fapi/v1/depth``: ``{"lastUpdateId","E","T","bids","asks"}`` or ``None``.

        ``symbol`` is uppercase, ``limit`` one of 5/10/20/50/100/500/1000 (validated by the
        server). ``lastUpdateId`` must be consistent with the diff-depth ``U/u/pu`` chain
        (BINANCE.md section 4). ``None`` -> ``-1121 Invalid symbol.``
        """
        ...

    async def agg_trades(
        self, symbol: str, from_id: int | None, limit: int
    ) -> list[dict[str, Any]] | None:
        """``GET /fapi/v1/aggTrades``: rows ``{"a","p","q","nq","f","l","T","m"}``.

        ``from_id`` is inclusive (BINANCE.md section 6); ``None`` means the most recent
        ``limit`` rows. Returning ``None`` means the source cannot answer (an archive
        without trades): the server replies with a Binance-shaped error.
        """
        ...

    async def exchange_symbols(self) -> list[dict[str, Any]]:
        """The ``symbols`` array of ``GET /fapi/v1/exchangeInfo`` (realistic filters)."""
        ...

    def server_time_ms(self) -> int:
        """``GET /fapi/v1/time`` and payload clocks: wall time (sim) or the replay clock."""
        ...

    async def create_listen_key(self, api_key: str) -> str | None:
        """``POST /fapi/v1/listenKey``: the (new or extended) key, ``None`` if unsupported."""
        ...

    async def keepalive_listen_key(self, api_key: str, listen_key: str) -> bool:
        """``PUT /fapi/v1/listenKey``: extend; ``False`` -> ``-1125`` key does not exist.

        ``listen_key`` is ``""`` when the client sent none (Binance USD-M needs none: it
        means the API key's active key).
        """
        ...

    async def delete_listen_key(self, api_key: str, listen_key: str) -> bool:
        """``DELETE /fapi/v1/listenKey``: invalidate and emit ``listenKeyExpired``.

        ``listen_key`` may be ``""`` as for :meth:`keepalive_listen_key`.
        """
        ...

    def listen_key_known(self, listen_key: str) -> bool:
        """Whether a websocket may attach to ``listen_key`` (unknown keys are refused)."""
        ...


__all__ = [
    "Action",
    "Close",
    "Drop",
    "Frame",
    "FrameSource",
    "Item",
    "QueryRefusal",
    "RawFrame",
    "Route",
    "Session",
    "SessionQueryCheck",
    "Stall",
]
