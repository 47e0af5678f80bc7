"""Pure routing: which endpoint serves a stream, how streams are sharded, which URL to open.

No sockets here. Binance rules implemented (BINANCE.md sections 1 and 2):

* streams are served per route: ``/public`` (book, trade), ``/market`` (everything else),
  ``/private`` (user data via listenKey); an unrouted or wrong-route stream is acked but silent;
* at most 1024 streams per connection;
* at most 10 inbound (client to server) messages per second per connection, pongs possibly
  included; excess closes the socket with 1008.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from schemas.errors import ConfigError
from schemas.streams import Endpoint, StreamName

MAX_STREAMS_PER_CONNECTION = 1024
"""Binance: a single connection can listen to at most 1024 streams."""

INBOUND_LIMIT_PER_S = 10
"""Binance: 10 incoming messages per second per connection (pings/pongs/control)."""

DEFAULT_CONTROL_RATE = 4
"""Control messages per second the recorder allows itself: well under the limit, leaving
room for pongs (BINANCE.md: whether pongs count is unconfirmed, so assume they do)."""

MAX_URL_STREAM_CHARS = 3000
"""Stream names put in the connect URL; the rest are SUBSCRIBEd (servers cap request lines,
aiohttp at 8190 bytes)."""

MAX_PARAMS_PER_SUBSCRIBE = 200
"""Stream names per SUBSCRIBE message, keeping each control frame small."""

ROUTED_ENDPOINTS = (Endpoint.PUBLIC, Endpoint.MARKET)


@dataclass(frozen=True, slots=True)
class Shard:
    """The streams one connection carries: all of one endpoint class, at most 1024."""

    endpoint: Endpoint
    streams: tuple[str, ...]
    index: int = 0

    @property
    def label(self) -> str:
        """Short name for logs and metrics: ``market-0``."""
        return f"{self.endpoint.value}-{self.index}"


def check_ws_url(url: str) -> str:
    """Validate a websocket base URL (``ws://host:port`` or ``wss://host``); return it trimmed.

    Raises :class:`~schemas.errors.ConfigError` naming the problem.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"malformed --ws-url {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise ConfigError(f"malformed --ws-url {url!r}: scheme must be ws:// or wss://")
    if not parts.hostname:
        raise ConfigError(f"malformed --ws-url {url!r}: no host")
    if parts.query or parts.fragment:
        raise ConfigError(f"malformed --ws-url {url!r}: no query or fragment allowed")
    del port
    return url.rstrip("/")


def check_rest_url(url: str) -> str:
    """Validate a REST base URL (``http://`` or ``https://``); return it trimmed."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(f"malformed --rest-url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"malformed --rest-url {url!r}: expected http(s)://host[:port]")
    if parts.query or parts.fragment:
        raise ConfigError(f"malformed --rest-url {url!r}: no query or fragment allowed")
    return url.rstrip("/")


def route(streams: Iterable[StreamName]) -> dict[Endpoint, list[str]]:
    """Group websocket streams by endpoint class, keeping order; REST-only names are left out.

    Binance (2026-04-23 route split): a stream on the wrong route is acked but never sent, so
    each stream must go to the route that serves it.
    """
    routed: dict[Endpoint, list[str]] = {}
    for stream in streams:
        if stream.endpoint in ROUTED_ENDPOINTS:
            names = routed.setdefault(stream.endpoint, [])
            if stream.name not in names:
                names.append(stream.name)
    return routed


def shard(
    streams: Iterable[StreamName], per_connection: int = MAX_STREAMS_PER_CONNECTION
) -> list[Shard]:
    """Split streams into shards: one endpoint class each, at most ``per_connection`` streams.

    Streams are spread evenly over the fewest connections the 1024 limit allows.
    """
    if not 1 <= per_connection <= MAX_STREAMS_PER_CONNECTION:
        raise ConfigError(
            f"streams per connection must be 1..{MAX_STREAMS_PER_CONNECTION}, not {per_connection}"
        )
    shards: list[Shard] = []
    for endpoint, names in route(streams).items():
        count = -(-len(names) // per_connection)
        size = -(-len(names) // count)
        for i in range(count):
            chunk = tuple(names[i * size:(i + 1) * size])
            if chunk:
                shards.append(Shard(endpoint, chunk, i))
    return shards


def combined_url(base: str, endpoint: Endpoint, streams: Sequence[str]) -> str:
    """``<base>/<route>/stream?streams=a/b``: combined mode, each frame in an envelope."""
    return f"{base}/{endpoint.value}/stream?streams={'/'.join(streams)}"


def raw_url(base: str, endpoint: Endpoint, streams: Sequence[str]) -> str:
    """``<base>/<route>/ws/a/b``: raw mode, bare payloads (only unambiguous for one stream)."""
    return f"{base}/{endpoint.value}/ws/{'/'.join(streams)}"


def private_url(base: str, listen_key: str, events: Sequence[str] = ()) -> str:
    """``<base>/private/ws?listenKey=<k>[&events=A/B]`` (BINANCE.md section 5)."""
    url = f"{base}/private/ws?listenKey={listen_key}"
    return f"{url}&events={'/'.join(events)}" if events else url


def split_for_connect(
    streams: Sequence[str],
    url_chars: int = MAX_URL_STREAM_CHARS,
    per_message: int = MAX_PARAMS_PER_SUBSCRIBE,
) -> tuple[list[str], list[list[str]]]:
    """Which streams go in the connect URL, and the SUBSCRIBE batches for the rest."""
    in_url: list[str] = []
    used = 0
    rest_start = len(streams)
    for i, name in enumerate(streams):
        cost = len(name) + 1
        if in_url and used + cost > url_chars:
            rest_start = i
            break
        in_url.append(name)
        used += cost
    rest = list(streams[rest_start:])
    batches = [rest[i:i + per_message] for i in range(0, len(rest), per_message)]
    return in_url, batches


def subscribe_frame(request_id: int, streams: Sequence[str], method: str = "SUBSCRIBE") -> str:
    """A SUBSCRIBE/UNSUBSCRIBE control frame (BINANCE.md section 2); ``id`` is an unsigned int."""
    params = ",".join(f'"{s}"' for s in streams)
    return f'{{"method":"{method}","params":[{params}],"id":{request_id}}}'


class RateLimiter:
    """Sliding-window limit on messages a connection sends: at most ``rate`` per ``window_s``.

    Pure: callers pass the current time and sleep for the returned delay. Binance closes a
    connection that sends more than 10 messages per second (1008 "Too many requests").
    """

    __slots__ = ("_sent", "rate", "window_s")

    def __init__(self, rate: int = DEFAULT_CONTROL_RATE, window_s: float = 1.0) -> None:
        if not 1 <= rate < INBOUND_LIMIT_PER_S:
            raise ConfigError(f"control rate must be 1..{INBOUND_LIMIT_PER_S - 1} per second")
        self.rate = rate
        # 1 % safety so float rounding and timer jitter never squeeze an extra message in.
        self.window_s = window_s * 1.01
        self._sent: collections.deque[float] = collections.deque()

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next message may be sent."""
        while self._sent and now - self._sent[0] >= self.window_s:
            self._sent.popleft()
        if len(self._sent) < self.rate:
            return 0.0
        return self._sent[0] + self.window_s - now

    def record(self, now: float) -> None:
        """Note that a message was sent at ``now``."""
        self._sent.append(now)


__all__ = [
    "DEFAULT_CONTROL_RATE",
    "INBOUND_LIMIT_PER_S",
    "MAX_STREAMS_PER_CONNECTION",
    "RateLimiter",
    "Shard",
    "check_rest_url",
    "check_ws_url",
    "combined_url",
    "private_url",
    "raw_url",
    "route",
    "shard",
    "split_for_connect",
    "subscribe_frame",
]
