"""Instruments and the simulated order book, in integer price and quantity units (pure)."""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Instrument:
    """Price/quantity grid of one symbol. Prices are integers in units of ``10**-price_dp``."""

    symbol: str
    base_price: int
    price_dp: int
    tick: int
    """Price step in price units (BTCUSDT: tickSize 0.10 = 10 units of 0.01)."""
    qty_dp: int
    base_asset: str
    quote_asset: str = "USDT"

    def price(self, units: int) -> str:
        """Price units -> Binance string with fixed decimals (``"68005.00"``)."""
        return _fixed(units, self.price_dp)

    def qty(self, lots: int) -> str:
        """Quantity lots -> Binance string with fixed decimals (``"2.695"``)."""
        return _fixed(lots, self.qty_dp)


@functools.lru_cache(maxsize=1 << 16)  # prices and sizes repeat: format each once
def _fixed(value: int, dp: int) -> str:
    if dp == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**dp)
    return f"{sign}{whole}.{frac:0{dp}d}"


_KNOWN = {
    "BTCUSDT": (6_800_000, 2, 10, 3),
    "ETHUSDT": (350_000, 2, 1, 3),
}


def instrument_for(symbol: str) -> Instrument:
    """A realistic grid: BTCUSDT and ETHUSDT like Binance, others derived from the name."""
    quote = next((q for q in ("USDT", "USDC", "BUSD", "USD") if symbol.endswith(q) and
                  len(symbol) > len(q)), "USDT")
    base = symbol[: -len(quote)] if symbol.endswith(quote) else symbol
    if symbol in _KNOWN:
        price, pdp, tick, qdp = _KNOWN[symbol]
        return Instrument(symbol, price, pdp, tick, qdp, base, quote)
    h = zlib.crc32(symbol.encode())
    return Instrument(symbol, 10_000 + h % 990_000, 4, 1, 1, base, quote)


class Book:
    """One side-pair of price levels with cached best prices. ``qty == 0`` deletes a level."""

    __slots__ = ("asks", "best_ask", "best_bid", "bids", "last_update_id")

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.best_bid = 0
        self.best_ask = 0
        self.last_update_id = 0

    def set(self, is_bid: bool, price: int, qty: int) -> None:
        """Set an absolute level quantity (Binance diff semantics, BINANCE.md section 4)."""
        side = self.bids if is_bid else self.asks
        if qty > 0:
            side[price] = qty
            if is_bid:
                if price > self.best_bid or not self.best_bid:
                    self.best_bid = price
            elif price < self.best_ask or not self.best_ask:
                self.best_ask = price
            return
        side.pop(price, None)
        if is_bid and price == self.best_bid:
            self.best_bid = max(side) if side else 0
        elif not is_bid and price == self.best_ask:
            self.best_ask = min(side) if side else 0

    def top(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Best ``n`` bids (descending) and asks (ascending)."""
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks


__all__ = ["Book", "Instrument", "instrument_for"]
