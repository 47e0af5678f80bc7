"""Synthetic but realistic Binance USD-M market data for the benchmarks.

Payloads follow the live key order of BINANCE.md section 3 (aggTrade, depthUpdate, bookTicker,
markPriceUpdate), with the exchange's sequencing rules kept so the recorder's gap detector sees
a clean feed: aggTrade ``a`` contiguous per symbol (BINANCE.md section 6), depth ``pu`` equal to
the previous ``u`` (section 4 step 5), bookTicker ``u`` rising with the book. Everything is
seeded, so two runs produce the same bytes.

Inter-arrival times are realistic for a busy symbol: depth diffs every 100 ms, markPrice every
second, bookTicker and aggTrade in Poisson bursts, so the 1x replay test has real gaps to sleep
across, not a metronome.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from schemas.wire import make_envelope

SYMBOLS = ("btcusdt", "ethusdt")
CHANNELS = ("aggTrade", "depth@100ms", "bookTicker", "markPrice@1s")
STREAMS = tuple(f"{sym}@{ch}" for sym in SYMBOLS for ch in CHANNELS)
"""The 8 streams every benchmark uses (2 symbols x 4 event types)."""

# Share of messages per channel in the mix (bookTicker dominates live traffic, as in the
# hftbacktest capture: 70% bookTicker, 23% trades, 7% depth).
MIX = {"bookTicker": 0.55, "aggTrade": 0.25, "depth@100ms": 0.17, "markPrice@1s": 0.03}

_BASE_PRICE = {"btcusdt": 68005.0, "ethusdt": 3521.0}
_TICK = {"btcusdt": 0.1, "ethusdt": 0.01}
_T0_MS = 1_771_263_510_000


@dataclass(slots=True)
class _SymbolState:
    symbol: str
    price: float
    agg_id: int
    trade_id: int
    book_u: int
    depth_u: int


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One generated frame: stream, offset from the session start (ns) and payload text."""

    stream: str
    offset_ns: int
    payload: str

    @property
    def envelope(self) -> str:
        """The combined-stream frame text (``{"stream":..,"data":..}``)."""
        return make_envelope(self.stream, self.payload)


def _fmt(value: float, tick: float) -> str:
    decimals = 2 if tick >= 0.01 else 3
    return f"{round(value / tick) * tick:.{decimals}f}"


class FeedGenerator:
    """Deterministic generator of the benchmark message mix."""

    def __init__(self, seed: int = 7, rate_per_s: float = 2_000.0) -> None:
        self._rng = random.Random(seed)
        self._rate = rate_per_s
        self._state = {
            sym: _SymbolState(sym, _BASE_PRICE[sym], 3_141_966_230 + i * 1_000_000,
                              7_297_376_181 + i * 1_000_000, 9_924_360_161_244 + i,
                              9_924_360_134_447 + i)
            for i, sym in enumerate(SYMBOLS)
        }
        # A pool of quantity strings, 20% of them level deletions ("0" deletes, section 4).
        self._qtys = [
            "0.000" if self._rng.random() < 0.2 else f"{self._rng.randint(1, 9000) / 1000:.3f}"
            for _ in range(1000)
        ]

    def _agg_trade(self, st: _SymbolState, e_ms: int) -> str:
        rng = self._rng.random
        st.price += (int(rng() * 4) // 2 * 2 - 1 if rng() < 0.5 else 0) * _TICK[st.symbol]
        st.agg_id += 1
        first = st.trade_id + 1
        st.trade_id += 1 + int(rng() * 4)
        qty = self._qtys[1 + int(rng() * 999)]
        return (
            f'{{"e":"aggTrade","E":{e_ms},"a":{st.agg_id},"s":"{st.symbol.upper()}",'
            f'"p":"{_fmt(st.price, _TICK[st.symbol])}","q":"{qty}","nq":"{qty}",'
            f'"f":{first},"l":{st.trade_id},"T":{e_ms - 1 - int(rng() * 150)},'
            f'"m":{"true" if rng() < 0.5 else "false"},"st":1}}'
        )

    def _levels(self, st: _SymbolState, side: int, n: int) -> str:
        rng = self._rng.random
        tick = _TICK[st.symbol]
        decimals = 2 if tick >= 0.01 else 3
        base = round(st.price / tick)
        qtys = self._qtys
        parts = [
            f'["{(base + side * (i + int(rng() * 40))) * tick:.{decimals}f}",'
            f'"{qtys[int(rng() * 1000)]}"]'
            for i in range(n)
        ]
        return "[" + ",".join(parts) + "]"

    def _depth(self, st: _SymbolState, e_ms: int) -> str:
        rng = self._rng.random
        pu = st.depth_u
        first = pu + 1 + int(rng() * 200)
        st.depth_u = first + int(rng() * 2000)
        return (
            f'{{"e":"depthUpdate","E":{e_ms},"T":{e_ms - 1},"s":"{st.symbol.upper()}",'
            f'"U":{first},"u":{st.depth_u},"pu":{pu},'
            f'"b":{self._levels(st, -1, 1 + int(rng() * 12))},'
            f'"a":{self._levels(st, 1, 1 + int(rng() * 12))}}}'
        )

    def _book_ticker(self, st: _SymbolState, e_ms: int) -> str:
        rng = self._rng.random
        st.book_u += 1 + int(rng() * 500)
        tick = _TICK[st.symbol]
        qtys = self._qtys
        return (
            f'{{"e":"bookTicker","u":{st.book_u},"s":"{st.symbol.upper()}",'
            f'"b":"{_fmt(st.price, tick)}","B":"{qtys[1 + int(rng() * 999)]}",'
            f'"a":"{_fmt(st.price + tick, tick)}","A":"{qtys[1 + int(rng() * 999)]}",'
            f'"T":{e_ms},"E":{e_ms}}}'
        )

    def _mark_price(self, st: _SymbolState, e_ms: int) -> str:
        rng = self._rng
        mark = st.price + rng.uniform(-2, 2) * _TICK[st.symbol]
        return (
            f'{{"e":"markPriceUpdate","E":{e_ms},"s":"{st.symbol.upper()}",'
            f'"p":"{mark:.2f}","ap":"{mark:.2f}","P":"{mark * 1.0001:.2f}",'
            f'"i":"{mark * 0.9999:.2f}","r":"0.0000{rng.randint(1000, 9999)}",'
            f'"T":{(e_ms // 28_800_000 + 1) * 28_800_000},"st":1}}'
        )

    def agg_trades(self, symbol: str, count: int, span_ns: int) -> Iterator[FeedMessage]:
        """``count`` aggTrades of one symbol spread evenly over ``span_ns``."""
        st = self._state[symbol]
        step = max(1, span_ns // max(1, count))
        for k in range(count):
            offset = k * step
            yield FeedMessage(f"{symbol}@aggTrade", offset,
                              self._agg_trade(st, _T0_MS + offset // 1_000_000))

    def messages(self, count: int) -> Iterator[FeedMessage]:
        """Yield ``count`` messages in arrival order with realistic inter-arrival times."""
        rng = self._rng
        # 100 slots filled in proportion to MIX: one random index picks a channel.
        table = [c for c, share in MIX.items() for _ in range(round(share * 100))]
        rand = rng.random

        def pick() -> str:
            return table[int(rand() * len(table))]

        mean_gap_ns = 1e9 / self._rate
        offset = 0
        for _ in range(count):
            # Bursty arrivals: 70% of frames come close behind the previous one.
            if rng.random() < 0.7:
                offset += int(rng.expovariate(1.0) * mean_gap_ns * 0.2) + 1_000
            else:
                offset += int(rng.expovariate(1.0) * mean_gap_ns * 2.9) + 1_000
            channel = pick()
            sym = SYMBOLS[0] if rng.random() < 0.6 else SYMBOLS[1]
            st = self._state[sym]
            e_ms = _T0_MS + offset // 1_000_000
            if channel == "aggTrade":
                payload = self._agg_trade(st, e_ms)
            elif channel == "depth@100ms":
                payload = self._depth(st, e_ms)
            elif channel == "bookTicker":
                payload = self._book_ticker(st, e_ms)
            else:
                payload = self._mark_price(st, e_ms)
            yield FeedMessage(f"{sym}@{channel}", offset, payload)


def generate(count: int, seed: int = 7, rate_per_s: float = 2_000.0) -> list[FeedMessage]:
    """``count`` messages of the standard mix as a list."""
    return list(FeedGenerator(seed, rate_per_s).messages(count))


def cache_dir() -> Path:
    """``benchmarks/.cache`` (created, and git-ignored by its own ``.gitignore``)."""
    path = Path(__file__).resolve().parent / ".cache"
    path.mkdir(exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return path


def cached(count: int, seed: int = 7, rate_per_s: float = 2_000.0,
           directory: Path | None = None) -> list[FeedMessage]:
    """Like :func:`generate`, but kept on disk (zstd) so later runs load instead of build.

    ``directory`` defaults to :func:`cache_dir`.
    """
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    path = (directory or cache_dir()) / f"feed-{seed}-{int(rate_per_s)}-{count}.tsv.zst"
    if path.exists():
        with path.open("rb") as fh:
            text = zstandard.ZstdDecompressor().stream_reader(fh).read().decode()
        out = []
        for line in text.splitlines():
            stream, offset, payload = line.split("\t", 2)
            out.append(FeedMessage(stream, int(offset), payload))
        if len(out) == count:
            return out
    msgs = generate(count, seed, rate_per_s)
    body = "\n".join(f"{m.stream}\t{m.offset_ns}\t{m.payload}" for m in msgs).encode()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(zstandard.ZstdCompressor(level=1).compress(body))
    tmp.replace(path)
    return msgs


__all__ = ["CHANNELS", "MIX", "STREAMS", "SYMBOLS", "FeedGenerator", "FeedMessage", "cache_dir",
           "cached", "generate"]
