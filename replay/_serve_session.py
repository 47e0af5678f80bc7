"""Per-client policy of ``ticktape serve``: URL options, recorded disconnects, resumption.

Pure logic (no sockets, no asyncio) used by :class:`replay._archive_source.ArchiveSource`.

**URL options.** A client may add ``start=``, ``end=`` and ``speed=`` to its websocket URL
(``/stream?streams=a/b&start=2024-08-08T23:54:20Z``, ``/ws/btcusdt@aggTrade?speed=10``), in
the spirit of tardis-machine's ``from``/``to`` replay options. Binance ignores query
parameters it does not know, so client code that builds such a URL runs against both. A
missing option falls back to the server's ``--start`` / ``--speed`` (``end``: none). A bad
value is refused before the websocket upgrade with HTTP 400 and a Binance-shaped error
(``{"code":-1100,"msg":"Illegal characters found in parameter 'start'; ..."}``).

**Recorded disconnects.** Where the recorder lost its connection (a ``disconnect`` gap) or was
not running (``recorder_down``), a live client would have been disconnected too. With
:attr:`GapMode.DISCONNECT` (the default) a session whose replay reaches the start of such a
gap of one of its streams ends the way the recorder saw it end (:func:`close_action`):
a close frame with the recorded close code, or, where the recorder saw no close frame
(network loss, idle watchdog), a TCP connection ended without one once the frames before
the gap are delivered (the client sees 1006); a
``recorder_down`` gap, where nothing was seen, closes with 1001 "going away" like Binance's
maintenance closes (BINANCE.md section 7). Sequence and silence gaps are not disconnects:
Binance did send what was recorded, so they stay in the data unchanged.

**Resumption.** The ended session is parked in a :class:`ResumeBook` under the client's
address and exact URL. The next connection from that address with that URL within
:data:`RESUME_TTL_S` continues it: the session clock kept running while the client was away
(same pacing anchor and speed), and the replay resumes at the gap's end or at the session
clock, whichever is later. A client that reconnects within the recorded outage therefore
waits out its rest and gets the first message the recorder got after it, on schedule; a
client slower than the recorder misses what arrived in between, as it would live. At speed 0
the clock stands at the last delivered message, so the replay resumes exactly at the gap's
end. A resumed session ignores the URL's ``start=`` (it names the same URL as before).
"""

from __future__ import annotations

import enum
import math
import re
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from replay._times import parse_time
from replay.wire.source import Close, Drop, QueryRefusal
from schemas.errors import ConfigError
from schemas.message import Gap, GapKind

RESUME_TTL_S = 120.0
"""How long (wall seconds) a session ended by a recorded disconnect waits for its client."""
MAX_PARKED = 1024
"""Parked sessions kept at most (the oldest go first)."""
DISCONNECT_KINDS = frozenset({GapKind.DISCONNECT, GapKind.RECORDER_DOWN})
"""Gap kinds that end a client's connection (the recorder's connection was down)."""
WILDCARD = "*"

# Binance close reasons (BINANCE.md sections 2 and 7).
_REASONS = {1001: "going away", 1008: "Too many requests"}
_RECORDED_CODE = re.compile(r"\(code (\d{4})\)")
# Codes a close frame may not carry (RFC 6455 section 7.4.1): seen only as "no close frame".
_UNSENDABLE = frozenset({1004, 1005, 1006, 1015})

# Binance's message for -1100 (illegal characters in a parameter).
_ILLEGAL = "Illegal characters found in parameter '{name}'; legal range is '{legal}'."
_TIME_LEGAL = "ISO-8601 UTC time (2024-08-08T23:54:20Z) or epoch ns"


class GapMode(enum.StrEnum):
    """What ``serve`` does when a session reaches a recorded disconnect (``--gaps``)."""

    DISCONNECT = "disconnect"
    """Close the client's websocket as the recorder's was closed; resume after the gap."""
    IGNORE = "ignore"
    """Keep the connection; the data simply resumes after the gap."""


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """A client's replay options from its URL; ``None`` means the server's default."""

    start: int | None = None
    end: int | None = None
    speed: float | None = None


def parse_session_query(query: Mapping[str, str]) -> SessionOptions:
    """Read ``start``, ``end`` and ``speed`` from a websocket URL's query parameters.

    Other parameters (``streams``, ``listenKey``, ...) are not ours and are ignored. Raises
    :class:`SessionQueryError` carrying the Binance error to answer with.
    """
    start = _time_param(query, "start")
    end = _time_param(query, "end")
    speed: float | None = None
    if "speed" in query:
        text = query["speed"]
        try:
            speed = float(text)
        except ValueError:
            speed = math.nan
        if not math.isfinite(speed) or speed < 0:
            raise SessionQueryError(QueryRefusal(
                -1100, _ILLEGAL.format(name="speed", legal="a number >= 0 (0 = flat out)")))
    if start is not None and end is not None and end <= start:
        # Binance -1128: "Combination of optional parameters invalid."
        raise SessionQueryError(QueryRefusal(
            -1128, "Combination of optional parameters invalid: end must be after start."))
    return SessionOptions(start, end, speed)


def _time_param(query: Mapping[str, str], name: str) -> int | None:
    if name not in query:
        return None
    try:
        return parse_time(query[name])
    except ConfigError:
        raise SessionQueryError(QueryRefusal(
            -1100, _ILLEGAL.format(name=name, legal=_TIME_LEGAL))) from None


class SessionQueryError(ConfigError):
    """A websocket URL carries a bad replay option; :attr:`refusal` is the Binance error."""

    def __init__(self, refusal: QueryRefusal) -> None:
        super().__init__(refusal.msg)
        self.refusal = refusal


class DisconnectPlan:
    """The recorded disconnects of an archive, looked up by position and stream selection."""

    def __init__(self, gaps: Iterable[Gap]) -> None:
        kept = sorted((g for g in gaps if g.kind in DISCONNECT_KINDS),
                      key=lambda g: (g.start_ns, g.end_ns, g.stream))
        self.gaps = kept
        self._starts = [g.start_ns for g in kept]

    def next_after(self, position: int, streams: Collection[str]) -> Gap | None:
        """The first disconnect of ``streams`` (or ``*``) starting at or after ``position``.

        A gap that began before ``position`` (the session started or resumed inside it) does
        not end the session again: its data simply resumes at its end.
        """
        for gap in self.gaps[bisect_left(self._starts, position):]:
            if gap.stream == WILDCARD or gap.stream in streams:
                return gap
        return None


def close_action(gap: Gap) -> Close | Drop:
    """How the server ends a client's connection at recorded gap ``gap``.

    The recorder writes ``server closed the connection (code N)`` when it got a close
    frame: the client gets the same code (with Binance's reason text for 1001 and 1008).
    Without a recorded close frame (network loss, watchdog, cannot connect) the client's
    TCP connection ends without one (after the frames before the gap, which the recorder
    did receive), so it sees 1006 as the recorder did. ``recorder_down`` (the
    recorder was not running, nothing was seen) closes with 1001 "going away".
    """
    if gap.kind is GapKind.RECORDER_DOWN:
        return Close(1001, _REASONS[1001])
    found = _RECORDED_CODE.search(gap.detail)
    if found is not None:
        code = int(found.group(1))
        if 1000 <= code <= 4999 and code not in _UNSENDABLE:
            return Close(code, _REASONS.get(code, ""))
    return Drop(flush=True)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Parked(Generic[T]):
    """A session ended by a recorded disconnect, waiting for its client to come back."""

    state: T
    """The session's clock and options, continued by the resuming connection."""
    resume_ns: int
    """Where the replay resumes at the earliest: the recorded gap's end."""
    parked_at: float
    """Monotonic seconds when it was parked."""


class ResumeBook(Generic[T]):
    """Parked sessions by ``(client address, URL)``, first in first out, with expiry."""

    def __init__(self, ttl_s: float = RESUME_TTL_S, max_entries: int = MAX_PARKED) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._parked: OrderedDict[tuple[str, str], deque[Parked[T]]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def park(self, key: tuple[str, str], state: T, resume_ns: int, now: float) -> None:
        """Keep ``state`` for the next connection with ``key`` (expires after ``ttl_s``)."""
        self.expire(now)
        while self._count >= self.max_entries:
            self._pop_oldest()
        self._parked.setdefault(key, deque()).append(Parked(state, resume_ns, now))
        self._parked.move_to_end(key)
        self._count += 1

    def claim(self, key: tuple[str, str], now: float) -> Parked[T] | None:
        """The oldest live parked session under ``key``, removed from the book; else ``None``."""
        self.expire(now)
        queue = self._parked.get(key)
        if not queue:
            return None
        parked = queue.popleft()
        self._count -= 1
        if not queue:
            del self._parked[key]
        return parked

    def newest(self, now: float) -> Parked[T] | None:
        """The most recently parked live session (for the REST clock with no client online)."""
        self.expire(now)
        best: Parked[T] | None = None
        for queue in self._parked.values():
            if queue and (best is None or queue[-1].parked_at >= best.parked_at):
                best = queue[-1]
        return best

    def expire(self, now: float) -> None:
        """Forget sessions parked longer than ``ttl_s`` ago."""
        for key in list(self._parked):
            queue = self._parked[key]
            while queue and now - queue[0].parked_at > self.ttl_s:
                queue.popleft()
                self._count -= 1
            if not queue:
                del self._parked[key]

    def _pop_oldest(self) -> None:
        key = min(self._parked, key=lambda k: self._parked[k][0].parked_at)
        queue = self._parked[key]
        queue.popleft()
        self._count -= 1
        if not queue:
            del self._parked[key]


__all__ = [
    "DISCONNECT_KINDS",
    "RESUME_TTL_S",
    "DisconnectPlan",
    "GapMode",
    "Parked",
    "ResumeBook",
    "SessionOptions",
    "SessionQueryError",
    "close_action",
    "parse_session_query",
]
