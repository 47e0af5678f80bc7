"""One simulated symbol: its order book, trades and diff-depth windows (pure, seeded).

Id rules it keeps (BINANCE.md sections 3, 4, 6): aggTrade ``a`` rises by one per aggregate;
trade ids rise by one per trade (``X:"NA"`` placeholders consume one too); every book change
takes the next exchange-wide update id; each diff-depth stream's ``pu`` is the ``u`` of its
previous event; bookTicker ``u`` is the update id of the change it shows; the REST snapshot's
``lastUpdateId`` is the id of the last change applied to the book.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass, field

from replay.sim import payloads as pl
from replay.sim.book import Book, Instrument
from replay.sim.stats import Bars, DayStats

Frame = tuple[str, str]
AggRow = tuple[int, int, int, int, int, int, bool]
"""(a, price units, lots, first trade id, last trade id, T, buyer is maker)."""

DIFF_SPEEDS = (100, 250, 500)


@dataclass(slots=True)
class DepthWindow:
    """Changes collected for one diff-depth speed since its last event."""

    first: int = 0
    last: int = 0
    prev: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)


class SymbolMarket:
    """Book, trades and id counters of one symbol."""

    def __init__(self, inst: Instrument, seed: int, now_ms: int, levels: int,
                 update_ids: Callable[[], int], history: int) -> None:
        self.inst = inst
        self.sym = inst.symbol
        low = inst.symbol.lower()
        self.names_agg = f"{low}@aggTrade"
        self.names_trade = f"{low}@trade"
        self.names_book = f"{low}@bookTicker"
        self.names_depth0 = f"{low}@depth@0ms"
        self.rng = random.Random(f"{seed}:{inst.symbol}")
        self.book = Book()
        self.levels = levels
        self._next_update_id = update_ids
        self.agg_id = 1_000_000 + self.rng.randrange(1_000_000)
        self.trade_id = 5_000_000 + self.rng.randrange(1_000_000)
        self.history: deque[AggRow] = deque(maxlen=history)
        self.windows = {speed: DepthWindow() for speed in DIFF_SPEEDS}
        self.prev0 = 0
        self._seed_book()
        self.bars = Bars(now_ms, self.mid())
        self.day = DayStats(self.mid())

    # -- book ------------------------------------------------------------------------
    def _seed_book(self) -> None:
        inst, book = self.inst, self.book
        uid = self._next_update_id()
        for k in range(self.levels):
            book.set(True, inst.base_price - (k + 1) * inst.tick, self._lots())
            book.set(False, inst.base_price + k * inst.tick, self._lots())
        book.last_update_id = uid
        for window in self.windows.values():
            window.prev = uid
        self.prev0 = uid

    def _lots(self) -> int:
        return 1 + int(self.rng.expovariate(1 / 400))

    def mid(self) -> int:
        """Mid price in price units, rounded down to the tick grid."""
        book, tick = self.book, self.inst.tick
        return (book.best_bid + book.best_ask) // 2 // tick * tick

    def _change(self, changes: list[tuple[bool, int, int]], now_ms: int,
                wanted: Container[str], out: list[Frame]) -> None:
        """Apply level changes under one new update id and emit real-time frames."""
        book = self.book
        top = (book.best_bid, book.bids.get(book.best_bid), book.best_ask,
               book.asks.get(book.best_ask))
        uid = self._next_update_id()
        for is_bid, price, qty in changes:
            book.set(is_bid, price, qty)
            for window in self.windows.values():
                if not window.first:
                    window.first = uid
                (window.bids if is_bid else window.asks)[price] = qty
        for window in self.windows.values():
            window.last = uid
        book.last_update_id = uid
        prev0, self.prev0 = self.prev0, uid
        inst = self.inst
        if self.names_depth0 in wanted:
            bids = pl.levels([(inst.price(p), inst.qty(q)) for b, p, q in changes if b])
            asks = pl.levels([(inst.price(p), inst.qty(q)) for b, p, q in changes if not b])
            out.append((self.names_depth0,
                        pl.depth_update(now_ms, now_ms, self.sym, uid, uid, prev0, bids, asks)))
        new_top = (book.best_bid, book.bids.get(book.best_bid), book.best_ask,
                   book.asks.get(book.best_ask))
        if new_top != top and self.names_book in wanted:
            out.append((self.names_book, self.book_ticker(now_ms)))

    def book_ticker(self, now_ms: int) -> str:
        """Current best bid/ask as a bookTicker payload (``u`` = last update id)."""
        book, inst = self.book, self.inst
        return pl.book_ticker(book.last_update_id, self.sym, inst.price(book.best_bid),
                              inst.qty(book.bids[book.best_bid]), inst.price(book.best_ask),
                              inst.qty(book.asks[book.best_ask]), now_ms, now_ms)

    def book_event(self, now_ms: int, wanted: Container[str], out: list[Frame]) -> None:
        """A passive order added, changed or cancelled somewhere in the book."""
        rng, book, tick = self.rng, self.book, self.inst.tick
        is_bid = rng.random() < 0.5
        side = book.bids if is_bid else book.asks
        best = book.best_bid if is_bid else book.best_ask
        sign = -1 if is_bid else 1
        changes: list[tuple[bool, int, int]] = []
        if rng.random() < 0.2 and book.best_ask - book.best_bid > tick:
            changes.append((is_bid, best - sign * tick, self._lots()))  # improve the touch
        else:
            price = best + sign * tick * min(int(rng.expovariate(0.15)), self.levels - 1)
            delete = price in side and rng.random() < 0.25 and len(side) > self.levels // 2
            changes.append((is_bid, price, 0 if delete else self._lots()))
        if len(side) >= self.levels:
            far = min(side) if is_bid else max(side)
            changes.append((is_bid, far, 0))
        elif len(side) < self.levels // 2 + 2:
            far = min(side) if is_bid else max(side)
            changes.append((is_bid, far + sign * tick, self._lots()))
        self._change(changes, now_ms, wanted, out)

    # -- trades ----------------------------------------------------------------------
    def trade_event(self, now_ms: int, wanted: Container[str], out: list[Frame]) -> None:
        """A taker order hitting the touch: 1-3 trades aggregated into one aggTrade."""
        rng, book, inst = self.rng, self.book, self.inst
        if rng.random() < 0.01:
            self.trade_id += 1  # an X:"NA" frame consumes a trade id but is no fill
            if self.names_trade in wanted:
                out.append((self.names_trade, pl.trade(now_ms, now_ms, self.sym,
                                                       self.trade_id, "0", "0", "NA", False)))
        taker_buy = rng.random() < 0.5
        price = book.best_ask if taker_buy else book.best_bid
        level = (book.asks if taker_buy else book.bids)[price]
        fills = [min(level, 1 + int(rng.expovariate(1 / 50))) for _ in range(rng.randint(1, 3))]
        total = 0
        parts: list[int] = []
        for lots in fills:
            if total + lots > level:
                break
            total += lots
            parts.append(lots)
        first = self.trade_id + 1
        self.trade_id += len(parts)
        self.agg_id += 1
        maker_buy = not taker_buy
        row: AggRow = (self.agg_id, price, total, first, self.trade_id, now_ms, maker_buy)
        self.history.append(row)
        self.bars.add(now_ms, price, total, first, self.trade_id, taker_buy)
        self.day.add(price, total, first, self.trade_id)
        p = inst.price(price)
        if self.names_trade in wanted:
            for tid, lots in zip(itertools.count(first), parts, strict=False):
                out.append((self.names_trade, pl.trade(now_ms, now_ms, self.sym, tid, p,
                                                       inst.qty(lots), "MARKET", maker_buy)))
        if self.names_agg in wanted:
            out.append((self.names_agg, pl.agg_trade(now_ms, self.agg_id, self.sym, p,
                                                     inst.qty(total), first, self.trade_id,
                                                     now_ms, maker_buy)))
        changes = [(not taker_buy, price, level - total)]
        if level == total:  # the touch is gone: refill behind so the side keeps its depth
            side = book.asks if taker_buy else book.bids
            far = max(side) if taker_buy else min(side)
            changes.append((not taker_buy, far + (inst.tick if taker_buy else -inst.tick),
                            self._lots()))
        self._change(changes, now_ms, wanted, out)

    # -- diff-depth windows ------------------------------------------------------------
    def close_window(self, speed: int, now_ms: int, names: list[str], partial: list[
            tuple[str, int]], wanted: Container[str], out: list[Frame]) -> None:
        """End the ``speed`` ms window: one diff event per name, top-N frames per partial.

        A window without changes sends nothing. Binance: ``pu`` = previous event's ``u``.
        """
        window = self.windows[speed]
        if not window.first:
            return
        first, last, prev = window.first, window.last, window.prev
        inst = self.inst
        if any(n in wanted for n in names):
            bids = pl.levels([(inst.price(p), inst.qty(q))
                              for p, q in sorted(window.bids.items(), reverse=True)])
            asks = pl.levels([(inst.price(p), inst.qty(q)) for p, q in sorted(window.asks.items())])
            payload = pl.depth_update(now_ms, now_ms, self.sym, first, last, prev, bids, asks)
            out.extend((n, payload) for n in names if n in wanted)
        for name, depth in partial:
            if name in wanted:
                top_b, top_a = self.book.top(depth)
                out.append((name, pl.depth_update(
                    now_ms, now_ms, self.sym, first, last, prev,
                    pl.levels([(inst.price(p), inst.qty(q)) for p, q in top_b]),
                    pl.levels([(inst.price(p), inst.qty(q)) for p, q in top_a]))))
        window.prev = last
        window.first = 0
        window.bids.clear()
        window.asks.clear()

    # -- REST ---------------------------------------------------------------------------
    def snapshot(self, limit: int, now_ms: int) -> dict[str, object]:
        """``GET /fapi/v1/depth`` body: top ``limit`` levels and ``lastUpdateId``."""
        inst = self.inst
        bids, asks = self.book.top(limit)
        return {"lastUpdateId": self.book.last_update_id, "E": now_ms, "T": now_ms,
                "bids": [[inst.price(p), inst.qty(q)] for p, q in bids],
                "asks": [[inst.price(p), inst.qty(q)] for p, q in asks]}

    def agg_rows(self, from_id: int | None, limit: int) -> list[dict[str, object]]:
        """``GET /fapi/v1/aggTrades`` rows; ``from_id`` inclusive, oldest kept first."""
        history = self.history
        if not history:
            return []
        if from_id is None:
            rows = list(itertools.islice(history, max(0, len(history) - limit), None))
        else:
            start = max(0, from_id - history[0][0])
            rows = list(itertools.islice(history, start, start + limit))
        inst = self.inst
        return [pl.agg_trade_row(a, inst.price(p), inst.qty(q), f, last, t, m)
                for a, p, q, f, last, t, m in rows]


__all__ = ["DIFF_SPEEDS", "AggRow", "DepthWindow", "SymbolMarket"]
