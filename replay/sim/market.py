"""The seeded synthetic market: every stream of BINANCE.md section 3 for each symbol (pure).

:meth:`Market.step` advances the market clock by one tick and returns the frames of that
tick. Market state depends only on the seed and the tick number; ``wanted`` only decides which
payloads are rendered (nobody subscribed = no formatting cost), never what happens.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Container
from dataclasses import dataclass

from replay.sim import payloads as pl
from replay.sim.book import instrument_for
from replay.sim.config import SimConfig
from replay.sim.stats import Bar
from replay.sim.symbol import Frame, SymbolMarket
from schemas.streams import CONTINUOUS_KLINE_INTERVALS, CONTRACT_TYPES, KLINE_INTERVALS

FUNDING_PERIOD_MS = 8 * 3_600_000
MSGS_PER_EVENT = 2.5
"""Rough real-time frames per market event (trade, aggTrade, bookTicker, depth@0ms)."""
TRADE_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class _Names:
    low: str
    diff: dict[int, list[str]]
    partial: dict[int, list[tuple[str, int]]]
    mark3: str
    mark1: str
    klines: list[tuple[str, str]]
    cklines: list[tuple[str, str, str]]
    mini: str
    ticker: str
    force: str
    composite: str
    asset: str


def _names(symbol: str) -> _Names:
    low = symbol.lower()
    return _Names(
        low=low,
        diff={100: [f"{low}@depth@100ms"], 250: [f"{low}@depth", f"{low}@depth@250ms"],
              500: [f"{low}@depth@500ms", f"{low}@rpiDepth@500ms"]},
        partial={100: [(f"{low}@depth{n}@100ms", n) for n in (5, 10, 20)],
                 250: [(f"{low}@depth{n}{s}", n) for n in (5, 10, 20) for s in ("", "@250ms")],
                 500: [(f"{low}@depth{n}@500ms", n) for n in (5, 10, 20)]},
        mark3=f"{low}@markPrice", mark1=f"{low}@markPrice@1s",
        klines=[(f"{low}@kline_{i}", i) for i in KLINE_INTERVALS],
        cklines=[(f"{low}_{ct}@continuousKline_{i}", i, ct.upper())
                 for ct in CONTRACT_TYPES for i in CONTINUOUS_KLINE_INTERVALS],
        mini=f"{low}@miniTicker", ticker=f"{low}@ticker", force=f"{low}@forceOrder",
        composite=f"{low}@compositeIndex", asset=f"{low}@assetIndex")


class Market:
    """All simulated symbols plus the cadenced streams built from them."""

    def __init__(self, config: SimConfig, start_ms: int) -> None:
        self.config = config
        self.start_ms = start_ms
        self.tick = 0
        self.rng = random.Random(f"{config.seed}:market")
        ids = itertools.count(9_924_000_000_000 + self.rng.randrange(10**9))
        self.symbols = {
            s: SymbolMarket(instrument_for(s), config.seed, start_ms, config.book_levels,
                            ids.__next__, config.agg_trade_history)
            for s in config.symbols}
        self._names = {s: _names(s) for s in config.symbols}
        self._acc = 0.0
        per_second = config.rate / MSGS_PER_EVENT / len(config.symbols)
        self._events_per_tick = per_second * config.tick_ms / 1000
        self._every = {key: self._period(ms) for key, ms in (
            ("mark3", 3000), ("mark1", 1000), ("ticker1", 2000), ("arr1", 1000),
            ("book_all", 5000), ("force", 1000), ("index", 1000), ("contract", 60000))}
        self._contract_sent = 0

    def _period(self, ms: float, scaled: bool = True) -> int:
        scale = self.config.cadence_scale if scaled else 1.0
        return max(1, round(ms * scale / self.config.tick_ms))

    def now_ms(self) -> int:
        """Event time of the current tick."""
        return self.start_ms + self.tick * self.config.tick_ms

    def step(self, wanted: Container[str]) -> list[Frame]:
        """Advance one tick; return the frames of the streams in ``wanted``."""
        self.tick += 1
        now = self.now_ms()
        out: list[Frame] = []
        self._acc += self._events_per_tick
        events = int(self._acc)
        self._acc -= events
        for sym in self.symbols.values():
            for _ in range(events):
                if sym.rng.random() < TRADE_SHARE:
                    sym.trade_event(now, wanted, out)
                else:
                    sym.book_event(now, wanted, out)
        elapsed = self.tick * self.config.tick_ms
        for speed in (100, 250, 500):
            if elapsed % speed < self.config.tick_ms:
                for s, sym in self.symbols.items():
                    names = self._names[s]
                    sym.close_window(speed, now, names.diff[speed], names.partial[speed],
                                     wanted, out)
        if elapsed % 250 < self.config.tick_ms:
            self._klines(now, wanted, out)
        self._cadenced(now, wanted, out)
        return out

    def _due(self, key: str) -> bool:
        return self.tick % self._every[key] == 0

    def _cadenced(self, now: int, wanted: Container[str], out: list[Frame]) -> None:
        for key, single, arr in (("mark3", "mark3", "!markPrice@arr"),
                                 ("mark1", "mark1", "!markPrice@arr@1s")):
            if self._due(key):
                objs = []
                for s in self.symbols:
                    name = getattr(self._names[s], single)
                    payload = self._mark_price(s, now)
                    if name in wanted:
                        out.append((name, payload))
                    objs.append(payload)
                if arr in wanted:
                    out.append((arr, "[" + ",".join(objs) + "]"))
        if self._due("ticker1"):
            for s in self.symbols:
                names = self._names[s]
                if names.mini in wanted:
                    out.append((names.mini, self._mini(s, now)))
                if names.ticker in wanted:
                    out.append((names.ticker, self._ticker(s, now)))
        if self._due("arr1"):
            for arr, render in (("!miniTicker@arr", self._mini), ("!ticker@arr", self._ticker)):
                if arr in wanted:
                    out.append((arr, "[" + ",".join(render(s, now) for s in self.symbols) + "]"))
        if self._due("book_all") and "!bookTicker" in wanted:
            out.extend(("!bookTicker", sym.book_ticker(now)) for sym in self.symbols.values())
        if self._due("force"):
            self._force_orders(now, wanted, out)
        if self._due("index"):
            self._indexes(now, wanted, out)
        if self._due("contract"):
            self._contract_sent += 1
            if "!contractInfo" in wanted:
                brackets = self._contract_sent % 3 == 1
                out.extend(("!contractInfo", pl.contract_info(now, s, self.start_ms, brackets))
                           for s in self.symbols)

    # -- renderers ------------------------------------------------------------------------
    def _mark(self, symbol: str) -> int:
        return self.symbols[symbol].mid()

    def _mark_price(self, symbol: str, now: int) -> str:
        sym = self.symbols[symbol]
        inst, mark = sym.inst, sym.mid()
        index = mark - inst.tick * (self.tick % 3)
        rate = 5 + (self.tick // 100) % 10  # in 1e-5: a slowly cycling funding rate
        next_funding = (now // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS
        return pl.mark_price(now, symbol, inst.price(mark), inst.price(mark),
                             inst.price(index), inst.price(index), f"0.000{rate:02d}000",
                             next_funding)

    def _mini(self, symbol: str, now: int) -> str:
        sym = self.symbols[symbol]
        inst, day = sym.inst, sym.day
        return pl.mini_ticker(now, symbol, inst.price(day.last_price), inst.price(day.open),
                              inst.price(day.high), inst.price(day.low), inst.qty(day.v),
                              _quote(day.q, inst.price_dp + inst.qty_dp))

    def _ticker(self, symbol: str, now: int) -> str:
        sym = self.symbols[symbol]
        inst, day = sym.inst, sym.day
        change = day.last_price - day.open
        pct = change * 10000 // day.open if day.open else 0
        avg = day.q // day.v if day.v else day.last_price
        first = day.first_tid if day.first_tid >= 0 else 0
        return pl.ticker(now, symbol, inst.price(change), _quote(pct, 2), inst.price(avg),
                         inst.price(day.last_price), inst.qty(day.last_lots),
                         inst.price(day.open), inst.price(day.high), inst.price(day.low),
                         inst.qty(day.v), _quote(day.q, inst.price_dp + inst.qty_dp),
                         now - 86_400_000, now, first, max(day.last_tid, 0), day.n)

    def _klines(self, now: int, wanted: Container[str], out: list[Frame]) -> None:
        for s, sym in self.symbols.items():
            names = self._names[s]
            sym.bars.flush()
            sym.bars.roll(now)
            closed = {i: sym.bars.take_closed(i) for i in CONTINUOUS_KLINE_INTERVALS}
            for name, interval in names.klines:
                if name in wanted:
                    for bar, final in _bars(closed[interval], sym.bars.current[interval]):
                        out.append((name, pl.kline(now, s, self._bar(s, bar, interval, final,
                                                                     True))))
            for name, interval, ct in names.cklines:
                if name in wanted:
                    for bar, final in _bars(closed[interval], sym.bars.current[interval]):
                        out.append((name, pl.continuous_kline(
                            now, s, ct, self._bar(s, bar, interval, final, False))))

    def _bar(self, symbol: str, bar: Bar, interval: str, final: bool, with_s: bool) -> str:
        inst = self.symbols[symbol].inst
        dp = inst.price_dp + inst.qty_dp
        return pl.kline_body(bar.open_ms, bar.close_ms, symbol if with_s else None, interval,
                             bar.first, bar.last, inst.price(bar.open), inst.price(bar.close),
                             inst.price(bar.high), inst.price(bar.low), inst.qty(bar.v), bar.n,
                             final, _quote(bar.q, dp), inst.qty(bar.buy_v),
                             _quote(bar.buy_q, dp))

    def _force_orders(self, now: int, wanted: Container[str], out: list[Frame]) -> None:
        # Binance: at most one forceOrder per symbol per second (BINANCE.md section 3).
        for s, sym in self.symbols.items():
            if self.rng.random() >= 0.3:
                continue
            side = "BUY" if self.rng.random() < 0.5 else "SELL"
            lots = 1 + self.rng.randrange(500)
            inst, price = sym.inst, sym.mid()
            payload = pl.force_order(now, s, side, inst.qty(lots), inst.price(price),
                                     inst.price(price), now)
            for name in (self._names[s].force, "!forceOrder@arr"):
                if name in wanted:
                    out.append((name, payload))

    def _indexes(self, now: int, wanted: Container[str], out: list[Frame]) -> None:
        assets = []
        for s, sym in self.symbols.items():
            names, inst = self._names[s], sym.inst
            price = inst.price(sym.mid())
            if names.composite in wanted:
                parts = [(o.inst.base_asset, "1.00000000", f"{1 / len(self.symbols):.8f}",
                          o.inst.price(o.mid())) for o in self.symbols.values()]
                out.append((names.composite, pl.composite_index(now, s, price, parts)))
            payload = pl.asset_index(now, s, price, price, price)
            if names.asset in wanted:
                out.append((names.asset, payload))
            assets.append(payload)
        if "!assetIndex@arr" in wanted:
            out.append(("!assetIndex@arr", "[" + ",".join(assets) + "]"))


def _bars(closed: Bar | None, current: Bar) -> list[tuple[Bar, bool]]:
    return ([(closed, True)] if closed is not None else []) + [(current, False)]


def _quote(units: int, dp: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**dp)
    return f"{sign}{whole}.{frac:0{dp}d}" if dp else f"{sign}{whole}"


__all__ = ["Market"]
