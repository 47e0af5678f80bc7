"""Which streams a connection receives: URL parsing and the route split (pure, no I/O).

BINANCE.md section 1: since 2026-04-23 book and trade streams live on ``/public``, every other
market stream on ``/market``, user data on ``/private``; an unrouted socket is served as
``/public``. A stream on the wrong route is acknowledged and then silent. Before that date
(``RoutingMode.LEGACY``) the unrouted paths served everything, including ``/ws/<listenKey>``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from replay.wire.source import Route
from schemas.errors import StreamNameError
from schemas.streams import Endpoint, parse_stream

_LISTEN_KEY_RE = re.compile(r"[A-Za-z0-9]{8,128}")
_EVENT_RE = re.compile(r"[A-Za-z_]{2,64}")


class RoutingMode(enum.StrEnum):
    """How strictly the route split is enforced."""

    STRICT = "strict"
    """Today's Binance (``ticktape sim`` default, ``serve --strict-routes``)."""
    LEGACY = "legacy"
    """Binance before 2026-04-23: unrouted paths serve every stream and ``/ws/<listenKey>``."""
    OPEN = "open"
    """Every market stream on every path (``ticktape serve`` default); user data as legacy."""


@dataclass(frozen=True, slots=True)
class ConnectTarget:
    """What a websocket URL asks for."""

    route: Route
    combined: bool
    """Initial ``combined`` property: false on ``/ws``, true on ``/stream`` (section 2)."""
    names: tuple[str, ...]
    """Subscription entries named in the URL, in order (streams, listen keys, key@EVENT)."""


def parse_target(route: Route, kind: str, tail: str, query: Mapping[str, list[str]]) -> (
        ConnectTarget | None):
    """Interpret ``/<route>/<kind>/<tail>?<query>``; ``None`` for a path that is not a socket.

    ``kind`` is ``ws`` or ``stream``. Raw mode names streams in the path
    (``/ws/<s1>/<s2>``), combined mode in ``?streams=a/b``. ``/private`` takes
    ``listenKey=<k>&events=A/B`` pairs (repeatable for ``/private/stream``).
    """
    if kind not in ("ws", "stream"):
        return None
    combined = kind == "stream"
    names: list[str] = []
    if route is Route.PRIVATE:
        keys = query.get("listenKey", [])
        events = query.get("events", [])
        for i, key in enumerate(keys):
            allowed = events[i] if i < len(events) else ""
            picked = sorted({e for e in allowed.split("/") if e})
            # events is an allow-list; without it every event arrives (BINANCE.md section 5).
            names.extend([f"{key}@{e}" for e in picked] if picked else [key])
        return ConnectTarget(route, combined, tuple(names))
    if combined:
        for value in query.get("streams", []):
            names.extend(s for s in value.split("/") if s)
    else:
        names.extend(s for s in tail.split("/") if s)
    return ConnectTarget(route, combined, tuple(names))


def serves_market(route: Route, endpoint: Endpoint, mode: RoutingMode) -> bool:
    """Whether a market stream of class ``endpoint`` flows on ``route`` (section 1 table)."""
    if endpoint not in (Endpoint.PUBLIC, Endpoint.MARKET):
        return False
    if mode is RoutingMode.OPEN and route is not Route.PRIVATE:
        return True
    if route is Route.UNROUTED:
        # An unrouted socket is served as /public, unless legacy routes are on.
        return endpoint is Endpoint.PUBLIC or mode is RoutingMode.LEGACY
    return route.value == endpoint.value


def serves_user(route: Route, mode: RoutingMode) -> bool:
    """Whether listen keys may be attached on ``route`` (``/private``, or legacy unrouted)."""
    return route is Route.PRIVATE or (route is Route.UNROUTED and mode is not RoutingMode.STRICT)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The served part of a subscription list."""

    streams: frozenset[str]
    user: dict[str, frozenset[str] | None]


def canonical_entry(name: str) -> str:
    """The form a SUBSCRIBE entry is stored and listed in: canonical stream name if valid."""
    try:
        return parse_stream(name).name
    except StreamNameError:
        return name


def resolve(
    names: Iterable[str],
    route: Route,
    mode: RoutingMode,
    key_known: Callable[[str], bool],
) -> Resolved:
    """Split subscription entries into served market streams and user-data keys.

    Entries that are invalid, wrong-route or unknown keys are simply not served
    (BINANCE.md section 1: acked, then silent).
    """
    streams: set[str] = set()
    user: dict[str, set[str] | None] = {}
    for name in names:
        try:
            parsed = parse_stream(name)
        except StreamNameError:
            parsed = None
        if parsed is not None:
            if serves_market(route, parsed.endpoint, mode):
                streams.add(parsed.name)
            continue
        if not serves_user(route, mode):
            continue
        key, _, event = name.partition("@")
        if not _LISTEN_KEY_RE.fullmatch(key) or not key_known(key):
            continue
        if event and not _EVENT_RE.fullmatch(event):
            continue
        if not event:
            user[key] = None
        elif key not in user:
            user[key] = {event}
        else:
            allowed = user[key]
            if allowed is not None:
                allowed.add(event)
    return Resolved(
        frozenset(streams),
        {k: (frozenset(v) if v is not None else None) for k, v in user.items()},
    )


__all__ = [
    "ConnectTarget",
    "Resolved",
    "RoutingMode",
    "canonical_entry",
    "parse_target",
    "resolve",
    "serves_market",
    "serves_user",
]
