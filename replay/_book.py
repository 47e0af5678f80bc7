"""A local order book rebuilt from a REST depth snapshot plus diff-depth events.

Pure state machine (no I/O), fed parsed payloads in archive order. Sync rules are Binance's
for USD-M futures (BINANCE.md section 4):

1. buffer diff events until a snapshot arrives;
2. drop events with ``u < lastUpdateId``;
3. the first applied event must satisfy ``U <= lastUpdateId <= u``;
4. every later event must have ``pu`` equal to the previous event's ``u``; otherwise the
   book is out of sync and waits for the next snapshot;
5. quantities are absolute and ``"0"`` deletes the level.

Diffs are buffered (bounded) while waiting, because a recorder's snapshot can be *older* than
the diffs received around it (the REST answer arrives after diffs that follow it): the event
that bridges ``lastUpdateId`` may precede the snapshot in archive order.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.errors import CorruptDataError
from schemas.message import Message
from schemas.streams import parse_stream

DEFAULT_MAX_BUFFER = 10_000
"""Diff events kept while waiting for a snapshot (oldest dropped first)."""


class BookState(enum.StrEnum):
    """Where the book is in Binance's sync procedure."""

    WAITING_SNAPSHOT = "waiting_snapshot"
    """No usable snapshot: buffering diffs."""
    SYNCING = "syncing"
    """Snapshot loaded; waiting for the event with ``U <= lastUpdateId <= u``."""
    LIVE = "live"
    """In sync: every applied event chained by ``pu``."""


Level = tuple[Decimal, Decimal]
"""``(price, quantity)``."""


def _dec(text: Any, what: str) -> Decimal:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        raise CorruptDataError(f"bad {what} {text!r} in depth data") from None


class _Side:
    """Price levels of one side: a dict plus a sorted price list (best at one end)."""

    __slots__ = ("prices", "qty")

    def __init__(self) -> None:
        self.qty: dict[Decimal, Decimal] = {}
        self.prices: list[Decimal] = []

    def clear(self) -> None:
        self.qty.clear()
        self.prices.clear()

    def apply(self, levels: Iterable[Sequence[Any]]) -> None:
        qty_of = self.qty
        for level in levels:
            price = _dec(level[0], "price")
            qty = _dec(level[1], "quantity")
            if qty == 0:  # Binance: quantity "0" removes the level (it may be absent locally)
                if qty_of.pop(price, None) is not None:
                    del self.prices[bisect_left(self.prices, price)]
            else:
                if price not in qty_of:
                    insort(self.prices, price)
                qty_of[price] = qty


class OrderBook:
    """One symbol's book, synchronised with Binance's snapshot + diff rules.

    Feed it with :meth:`on_message` (archive messages: ``<symbol>@depthSnapshot`` and diff
    ``<symbol>@depth[@..ms]`` streams) or directly with :meth:`on_snapshot` / :meth:`on_diff`.
    """

    def __init__(self, symbol: str | None = None, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.symbol = symbol.upper() if symbol else None
        self.state = BookState.WAITING_SNAPSHOT
        self.last_update_id: int | None = None
        """``u`` of the last applied event (or the snapshot's ``lastUpdateId``)."""
        self.bids = _Side()
        self.asks = _Side()
        self._buffer: deque[Mapping[str, Any]] = deque(maxlen=max_buffer)
        self.resyncs = 0
        """Times the ``pu`` chain broke (or a snapshot could not be bridged)."""
        self.applied = 0

    # -- inputs -------------------------------------------------------------------------

    def on_message(self, msg: Message) -> bool:
        """Route an archive message; True if it changed the book. Other streams are ignored."""
        stream = parse_stream(msg.stream)
        if self.symbol is not None and stream.symbol != self.symbol:
            return False
        if stream.channel == "depthSnapshot":
            return self.on_snapshot(msg.data)
        if stream.channel == "depth" and stream.levels is None:
            return self.on_diff(msg.data)
        return False

    def on_snapshot(self, body: Mapping[str, Any]) -> bool:
        """Load a ``GET /fapi/v1/depth`` body when out of sync; True if it was loaded.

        While live, snapshots are ignored: the ``pu`` chain already proves the book current.
        """
        if self.state is BookState.LIVE:
            return False
        self.bids.clear()
        self.asks.clear()
        self.bids.apply(body.get("bids", ()))
        self.asks.apply(body.get("asks", ()))
        self.last_update_id = int(body["lastUpdateId"])
        self.state = BookState.SYNCING
        pending = list(self._buffer)
        self._buffer.clear()
        for event in pending:
            self.on_diff(event)
        return True

    def on_diff(self, event: Mapping[str, Any]) -> bool:
        """Apply (or buffer, or drop) one ``depthUpdate``; True if it was applied."""
        if self.state is BookState.WAITING_SNAPSHOT:
            self._buffer.append(event)
            return False
        first, last, prev = int(event["U"]), int(event["u"]), int(event["pu"])
        assert self.last_update_id is not None
        if self.state is BookState.SYNCING:
            if last < self.last_update_id:  # Binance: drop events with u < lastUpdateId
                return False
            if not first <= self.last_update_id <= last:
                # Binance: the first event must bracket lastUpdateId; this snapshot is
                # unusable, wait for the next one.
                self._out_of_sync(event)
                return False
        elif prev != self.last_update_id:  # Binance: pu must equal the previous u
            self._out_of_sync(event)
            return False
        self.bids.apply(event.get("b", ()))
        self.asks.apply(event.get("a", ()))
        self.last_update_id = last
        self.state = BookState.LIVE
        self.applied += 1
        return True

    def _out_of_sync(self, event: Mapping[str, Any]) -> None:
        self.resyncs += 1
        self.state = BookState.WAITING_SNAPSHOT
        self.bids.clear()
        self.asks.clear()
        self._buffer.clear()
        self._buffer.append(event)

    # -- outputs ------------------------------------------------------------------------

    @property
    def is_synced(self) -> bool:
        """True while the book is live."""
        return self.state is BookState.LIVE

    def best_bid(self) -> Level | None:
        """Highest bid ``(price, qty)``, or ``None`` when empty."""
        if not self.bids.prices:
            return None
        price = self.bids.prices[-1]
        return price, self.bids.qty[price]

    def best_ask(self) -> Level | None:
        """Lowest ask ``(price, qty)``, or ``None`` when empty."""
        if not self.asks.prices:
            return None
        price = self.asks.prices[0]
        return price, self.asks.qty[price]

    def top(self, depth: int = 10) -> tuple[list[Level], list[Level]]:
        """The best ``depth`` levels: bids high to low, asks low to high."""
        bids = [(p, self.bids.qty[p]) for p in reversed(self.bids.prices[-depth:])]
        asks = [(p, self.asks.qty[p]) for p in self.asks.prices[:depth]]
        return bids, asks


__all__ = ["DEFAULT_MAX_BUFFER", "BookState", "Level", "OrderBook"]
