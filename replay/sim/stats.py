"""Running kline bars and 24 h statistics of a simulated symbol (pure, integer units)."""

from __future__ import annotations

import calendar
import datetime as dt

from schemas.streams import CONTINUOUS_KLINE_INTERVALS

_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_MONDAY_OFFSET_MS = 4 * 86_400_000  # 1970-01-01 was a Thursday; Binance weeks start Monday


def interval_bounds(interval: str, t_ms: int) -> tuple[int, int]:
    """``(open_ms, close_ms)`` of the ``interval`` bar containing ``t_ms`` (close inclusive)."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC)
        start = dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)
        days = calendar.monthrange(day.year, day.month)[1]
        open_ms = int(start.timestamp() * 1000)
        return open_ms, open_ms + days * 86_400_000 - 1
    length = int(interval[:-1]) * _UNIT_MS[interval[-1]]
    shift = _MONDAY_OFFSET_MS if interval.endswith("w") else 0
    open_ms = (t_ms - shift) // length * length + shift
    return open_ms, open_ms + length - 1


class Bar:
    """One kline bar being built from trades. Quote volume is in price*qty units."""

    __slots__ = ("buy_q", "buy_v", "close", "close_ms", "first", "high", "last", "low",
                 "n", "open", "open_ms", "q", "v")

    def __init__(self, open_ms: int, close_ms: int, price: int) -> None:
        self.open_ms = open_ms
        self.close_ms = close_ms
        self.open = self.high = self.low = self.close = price
        self.v = self.q = self.buy_v = self.buy_q = self.n = 0
        self.first = self.last = -1

    def add(self, price: int, lots: int, tid_first: int, tid_last: int, buyer_taker: bool
            ) -> None:
        """Fold one aggregate trade into the bar."""
        if self.n == 0:
            self.open = self.high = self.low = price
            self.first = tid_first
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.v += lots
        self.q += price * lots
        if buyer_taker:
            self.buy_v += lots
            self.buy_q += price * lots
        self.n += tid_last - tid_first + 1
        self.last = tid_last


    def merge(self, other: Bar) -> None:
        """Fold a later bar of trades (same interval) into this one."""
        if other.n == 0:
            return
        if self.n == 0:
            self.open, self.high, self.low = other.open, other.high, other.low
            self.first = other.first
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.close = other.close
        self.v += other.v
        self.q += other.q
        self.buy_v += other.buy_v
        self.buy_q += other.buy_q
        self.n += other.n
        self.last = other.last


class Bars:
    """Current and just-closed bars for every kline interval of one symbol."""

    def __init__(self, now_ms: int, price: int) -> None:
        self.current: dict[str, Bar] = {}
        self.closed: dict[str, Bar] = {}
        self._pending: Bar | None = None
        for interval in CONTINUOUS_KLINE_INTERVALS:
            self.current[interval] = Bar(*interval_bounds(interval, now_ms), price)

    def roll(self, now_ms: int) -> None:
        """Start new bars where ``now_ms`` passed a bar's close; keep the closed one."""
        if self._pending is not None and now_ms > self._pending.close_ms:
            self.flush()
        for interval, bar in self.current.items():
            if now_ms > bar.close_ms:
                self.closed[interval] = bar
                self.current[interval] = Bar(*interval_bounds(interval, now_ms), bar.close)

    def add(self, now_ms: int, price: int, lots: int, tid_first: int, tid_last: int,
            buyer_taker: bool) -> None:
        """Fold a trade into the pending 1 s bucket (merged into every interval on flush)."""
        pending = self._pending
        if pending is None or now_ms > pending.close_ms:
            self.flush()
            self.roll(now_ms)
            pending = self._pending = Bar(*interval_bounds("1s", now_ms), price)
        pending.add(price, lots, tid_first, tid_last, buyer_taker)

    def flush(self) -> None:
        """Merge the pending bucket into every current bar (before reading or rolling)."""
        pending, self._pending = self._pending, None
        if pending is None or pending.n == 0:
            return
        for bar in self.current.values():
            bar.merge(pending)

    def take_closed(self, interval: str) -> Bar | None:
        """The bar that closed since the last call (sent once with ``x: true``)."""
        return self.closed.pop(interval, None)


class DayStats:
    """Rolling-24h stand-in: statistics since the sim started (the sim has no older data)."""

    __slots__ = ("first_tid", "high", "last_lots", "last_price", "last_tid", "low", "n",
                 "open", "q", "v")

    def __init__(self, price: int) -> None:
        self.open = self.high = self.low = self.last_price = price
        self.v = self.q = self.n = self.last_lots = 0
        self.first_tid = self.last_tid = -1

    def add(self, price: int, lots: int, tid_first: int, tid_last: int) -> None:
        """Fold one aggregate trade."""
        if self.first_tid < 0:
            self.first_tid = tid_first
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.last_price = price
        self.last_lots = lots
        self.last_tid = tid_last
        self.v += lots
        self.q += price * lots
        self.n += tid_last - tid_first + 1


__all__ = ["Bar", "Bars", "DayStats", "interval_bounds"]
