"""Settings of the simulated exchange (``ticktape sim`` options and the Python API)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from replay.sim.faults import Fault
from schemas.errors import ConfigError

_SYMBOL_RE = re.compile(r"[A-Z0-9]{2,24}")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes the synthetic market and the server around it.

    ``rate`` is the target for the real-time streams summed over all symbols (trade,
    aggTrade, bookTicker, depth@0ms messages per second); cadenced streams (markPrice, klines,
    tickers, 100/250/500 ms depth) come on top at their Binance cadence times
    ``cadence_scale`` (0.1 = ten times faster, for short tests).
    """

    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    seed: int = 1
    rate: float = 1000.0
    tick_ms: int = 10
    """Market clock step; every frame of one step shares its event time."""
    cadence_scale: float = 1.0
    start_ms: int | None = None
    """Event-time origin; ``None`` = wall clock at start (set it for byte-identical runs)."""
    faults: tuple[Fault, ...] = ()
    listen_key_ttl: float = 3600.0
    """Seconds a listenKey lives without keepalive (Binance: 60 min)."""
    user_event_interval: float = 0.5
    """Seconds between simulated user-data events per listenKey."""
    history_seconds: float = 10.0
    """How far back (in seconds of market time) a lagging connection can still catch up."""
    agg_trade_history: int = 200_000
    """aggTrades kept per symbol for REST ``fromId`` backfill."""
    book_levels: int = 200
    """Price levels kept on each side of each book."""

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ConfigError("sim needs at least one symbol")
        for symbol in self.symbols:
            if not _SYMBOL_RE.fullmatch(symbol):
                raise ConfigError(f"bad symbol {symbol!r}: use 2-24 letters/digits, "
                                  "e.g. BTCUSDT")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError("duplicate symbol in --symbols")
        if self.rate <= 0:
            raise ConfigError("--rate must be > 0")
        if not 1 <= self.tick_ms <= 1000:
            raise ConfigError("tick_ms must be within 1..1000")
        if self.cadence_scale <= 0:
            raise ConfigError("cadence_scale must be > 0")
        if self.listen_key_ttl <= 0 or self.user_event_interval <= 0:
            raise ConfigError("listen_key_ttl and user_event_interval must be > 0")
        if self.book_levels < 20:
            raise ConfigError("book_levels must be >= 20")


def parse_symbols(text: str) -> tuple[str, ...]:
    """``"btcusdt, ETHUSDT"`` -> ``("BTCUSDT", "ETHUSDT")``."""
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    if not symbols:
        raise ConfigError("--symbols is empty")
    return symbols


__all__ = ["SimConfig", "parse_symbols"]
