"""Binance USD-M stream names: parse, validate, canonicalise, classify.

A stream name becomes a directory name in the archive, so validation is strict: only the forms
listed in BINANCE.md section 3 (plus ticktape's own ``<symbol>@depthSnapshot`` and
``userData[@<label>]``) are accepted, symbols are ASCII ``[a-z0-9_]``, and nothing that could
form a path separator, ``..`` or shell metacharacter survives.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from schemas.errors import StreamNameError

MAX_STREAM_NAME_LENGTH = 128


class Endpoint(enum.StrEnum):
    """The endpoint class that serves a stream (BINANCE.md section 1, route split)."""

    PUBLIC = "public"
    """``/public``: book and trade streams."""
    MARKET = "market"
    """``/market``: every other market stream."""
    PRIVATE = "private"
    """``/private``: user data (listenKey)."""
    REST = "rest"
    """Not a websocket stream: data ticktape fetches over REST (depth snapshots)."""


# Binance kline intervals (BINANCE.md section 3); 1s exists for continuousKline only.
KLINE_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                   "1d", "3d", "1w", "1M")
CONTINUOUS_KLINE_INTERVALS = ("1s", *KLINE_INTERVALS)
CONTRACT_TYPES = ("perpetual", "current_quarter", "next_quarter", "tradifi_perpetual")
DEPTH_LEVELS = (5, 10, 20)
DEPTH_SPEEDS_MS = (0, 100, 250, 500)

_SYMBOL = r"[a-z0-9]{2,24}(?:_[0-9]{6})?"
_SYMBOL_RE = re.compile(_SYMBOL)
_LABEL_RE = re.compile(r"[a-z0-9_-]{1,32}")


@dataclass(frozen=True, slots=True)
class StreamName:
    """A validated stream name and what it implies.

    ``name`` is canonical (lowercase symbol, camelCase channel). ``symbol`` is the uppercase
    payload symbol (``pair`` for continuous klines), or ``None`` for ``!`` and user streams.
    ``is_array`` is true when each payload is a JSON array (``!markPrice@arr``,
    ``!ticker@arr``, ``!miniTicker@arr``, ``!assetIndex@arr``).
    """

    name: str
    channel: str
    event_type: str
    endpoint: Endpoint
    table: str
    symbol: str | None = None
    is_array: bool = False
    interval: str | None = None
    levels: int | None = None
    speed_ms: int | None = None
    contract_type: str | None = None
    cadence_ms: int | None = None

    def __str__(self) -> str:
        return self.name

    @property
    def is_diff_depth(self) -> bool:
        """True for diff-depth streams whose ``pu`` chain must be continuous."""
        return self.channel in ("depth", "rpiDepth")


@dataclass(frozen=True, slots=True)
class _Channel:
    channel: str
    event_type: str
    endpoint: Endpoint
    table: str
    cadence_ms: int | None


# Per-symbol channels. Endpoint per the 2026-04-23 route split (BINANCE.md section 1).
_SYMBOL_CHANNELS = {
    c.channel.lower(): c
    for c in (
        _Channel("aggTrade", "aggTrade", Endpoint.MARKET, "agg_trades", 100),
        _Channel("trade", "trade", Endpoint.PUBLIC, "trades", None),
        _Channel("markPrice", "markPriceUpdate", Endpoint.MARKET, "mark_prices", 3000),
        _Channel("miniTicker", "24hrMiniTicker", Endpoint.MARKET, "mini_tickers", 2000),
        _Channel("ticker", "24hrTicker", Endpoint.MARKET, "tickers", 2000),
        _Channel("bookTicker", "bookTicker", Endpoint.PUBLIC, "book_tickers", None),
        _Channel("forceOrder", "forceOrder", Endpoint.MARKET, "liquidations", None),
        _Channel("compositeIndex", "compositeIndex", Endpoint.MARKET, "composite_index", 1000),
        _Channel("assetIndex", "assetIndexUpdate", Endpoint.MARKET, "asset_index", 1000),
        _Channel("depthSnapshot", "depthSnapshot", Endpoint.REST, "depth_snapshots", None),
    )
}

VALID_FORMS = (
    "<symbol>@aggTrade, <symbol>@trade, <symbol>@markPrice[@1s], !markPrice@arr[@1s], "
    "<symbol>@kline_<1m..1M>, <pair>_<perpetual|current_quarter|next_quarter|tradifi_perpetual>"
    "@continuousKline_<1s..1M>, <symbol>@miniTicker, !miniTicker@arr, <symbol>@ticker, "
    "!ticker@arr, <symbol>@bookTicker, !bookTicker, <symbol>@forceOrder, !forceOrder@arr, "
    "<symbol>@depth<5|10|20>[@100ms|@250ms|@500ms], <symbol>@depth[@0ms|@100ms|@250ms|@500ms], "
    "<symbol>@rpiDepth@500ms, <symbol>@compositeIndex, <symbol>@assetIndex, !assetIndex@arr, "
    "!contractInfo, <symbol>@depthSnapshot, userData[@<label>] "
    "(symbol: 2-24 ASCII letters/digits, e.g. btcusdt)"
)

_DEPTH_RE = re.compile(r"depth(5|10|20)?(?:@(\d+)ms)?", re.IGNORECASE)
_RPI_DEPTH_RE = re.compile(r"rpidepth@500ms", re.IGNORECASE)
_KLINE_RE = re.compile(r"kline_(\w+)", re.IGNORECASE)
_CKLINE_RE = re.compile(r"continuouskline_(\w+)", re.IGNORECASE)
_MARK_PRICE_RE = re.compile(r"markprice(@1s)?", re.IGNORECASE)


def _fail(name: str, reason: str) -> StreamNameError:
    shown = name if len(name) <= 80 else name[:77] + "..."
    return StreamNameError(f"invalid stream {shown!r}: {reason}. Valid forms: {VALID_FORMS}")


def _parse_global(name: str, lowered: str) -> StreamName:
    markets = {
        "!markprice@arr": ("!markPrice@arr", "markPriceUpdate", "mark_prices", True, 3000),
        "!markprice@arr@1s": ("!markPrice@arr@1s", "markPriceUpdate", "mark_prices", True, 1000),
        "!miniticker@arr": ("!miniTicker@arr", "24hrMiniTicker", "mini_tickers", True, 1000),
        "!ticker@arr": ("!ticker@arr", "24hrTicker", "tickers", True, 1000),
        "!forceorder@arr": ("!forceOrder@arr", "forceOrder", "liquidations", False, None),
        "!contractinfo": ("!contractInfo", "contractInfo", "contract_info", False, None),
        "!assetindex@arr": ("!assetIndex@arr", "assetIndexUpdate", "asset_index", True, 1000),
    }
    if lowered == "!bookticker":
        # BINANCE.md: !bookTicker is a public-route stream of single objects.
        return StreamName("!bookTicker", "bookTicker", "bookTicker", Endpoint.PUBLIC,
                          "book_tickers", cadence_ms=5000)
    if lowered in markets:
        canon, event, table, is_array, cadence = markets[lowered]
        channel = canon[1:].split("@", 1)[0]
        return StreamName(canon, channel, event, Endpoint.MARKET, table, is_array=is_array,
                          speed_ms=1000 if canon.endswith("@1s") else None, cadence_ms=cadence)
    raise _fail(name, "unknown all-market stream")


def _parse_channel(name: str, symbol: str, channel: str) -> StreamName:
    upper = symbol.upper()
    lowered = channel.lower()
    simple = _SYMBOL_CHANNELS.get(lowered)
    if simple is not None:
        return StreamName(f"{symbol}@{simple.channel}", simple.channel, simple.event_type,
                          simple.endpoint, simple.table, symbol=upper,
                          cadence_ms=simple.cadence_ms)
    if m := _MARK_PRICE_RE.fullmatch(channel):
        fast = m.group(1) is not None
        return StreamName(f"{symbol}@markPrice{'@1s' if fast else ''}", "markPrice",
                          "markPriceUpdate", Endpoint.MARKET, "mark_prices", symbol=upper,
                          speed_ms=1000 if fast else None, cadence_ms=1000 if fast else 3000)
    if m := _DEPTH_RE.fullmatch(channel):
        levels = int(m.group(1)) if m.group(1) else None
        speed = int(m.group(2)) if m.group(2) is not None else None
        allowed = (100, 250, 500) if levels else DEPTH_SPEEDS_MS
        if speed is not None and speed not in allowed:
            raise _fail(name, f"depth speed must be one of {', '.join(f'{s}ms' for s in allowed)}")
        canon = f"{symbol}@depth{levels or ''}{f'@{speed}ms' if speed is not None else ''}"
        return StreamName(canon, "depthPartial" if levels else "depth", "depthUpdate",
                          Endpoint.PUBLIC, "depth_updates", symbol=upper, levels=levels,
                          speed_ms=speed, cadence_ms=speed if speed else 250)
    if _RPI_DEPTH_RE.fullmatch(channel):
        return StreamName(f"{symbol}@rpiDepth@500ms", "rpiDepth", "depthUpdate",
                          Endpoint.PUBLIC, "depth_updates", symbol=upper, speed_ms=500,
                          cadence_ms=500)
    if m := _KLINE_RE.fullmatch(channel):
        interval = m.group(1)
        if interval not in KLINE_INTERVALS:
            raise _fail(name, f"kline interval must be one of {', '.join(KLINE_INTERVALS)}")
        return StreamName(f"{symbol}@kline_{interval}", "kline", "kline", Endpoint.MARKET,
                          "klines", symbol=upper, interval=interval, cadence_ms=250)
    if m := _CKLINE_RE.fullmatch(channel):
        interval = m.group(1)
        pair, _, contract = symbol.partition("_")
        if contract not in CONTRACT_TYPES or not _SYMBOL_RE.fullmatch(pair):
            raise _fail(name, "continuousKline needs <pair>_<contract type>")
        if interval not in CONTINUOUS_KLINE_INTERVALS:
            raise _fail(name, "continuousKline interval must be one of "
                        + ", ".join(CONTINUOUS_KLINE_INTERVALS))
        return StreamName(f"{symbol}@continuousKline_{interval}", "continuousKline",
                          "continuous_kline", Endpoint.MARKET, "continuous_klines",
                          symbol=pair.upper(), interval=interval, contract_type=contract,
                          cadence_ms=250)
    raise _fail(name, f"unknown channel {channel!r}")


def parse_stream(name: str) -> StreamName:
    """Validate ``name`` and return its canonical :class:`StreamName`.

    ``BTCUSDT@aggTrade`` -> ``btcusdt@aggTrade``; ``!MARKPRICE@ARR@1s`` -> ``!markPrice@arr@1s``.
    Raises :class:`~schemas.errors.StreamNameError` naming the bad stream and the valid forms.
    """
    if not isinstance(name, str):
        raise StreamNameError(f"stream name must be a string, not {type(name).__name__}")
    text = name.strip()
    if not text:
        raise _fail(name, "empty name")
    if len(text) > MAX_STREAM_NAME_LENGTH:
        raise _fail(name, f"longer than {MAX_STREAM_NAME_LENGTH} characters")
    if not text.isascii() or any(not (c.isalnum() or c in "@!_-") for c in text):
        raise _fail(name, "only ASCII letters, digits and @ ! _ - are allowed")
    lowered = text.lower()
    if lowered.startswith("!"):
        return _parse_global(name, lowered)
    if lowered == "userdata" or lowered.startswith("userdata@"):
        label = text.partition("@")[2].lower()
        if label and not _LABEL_RE.fullmatch(label):
            raise _fail(name, "userData label must be 1-32 of [a-z0-9_-]")
        canon = f"userData@{label}" if label else "userData"
        return StreamName(canon, "userData", "userData", Endpoint.PRIVATE, "user_events")
    symbol, sep, channel = text.partition("@")
    if not sep or not channel:
        raise _fail(name, "expected <symbol>@<channel>")
    symbol = symbol.lower()
    if "continuouskline" in channel.lower():
        if not re.fullmatch(r"[a-z0-9]{2,24}_[a-z_]{3,24}", symbol):
            raise _fail(name, "continuousKline needs <pair>_<contract type>")
    elif not _SYMBOL_RE.fullmatch(symbol):
        raise _fail(name, f"bad symbol {symbol!r}")
    return _parse_channel(name, symbol, channel)


def canonical(name: str) -> str:
    """Shorthand for ``parse_stream(name).name``."""
    return parse_stream(name).name


def parse_stream_list(text: str) -> list[StreamName]:
    """Parse a comma-separated list, dropping duplicates and keeping order."""
    seen: dict[str, StreamName] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        stream = parse_stream(part)
        seen.setdefault(stream.name, stream)
    if not seen:
        raise StreamNameError("no streams given. Valid forms: " + VALID_FORMS)
    return list(seen.values())


__all__ = [
    "CONTINUOUS_KLINE_INTERVALS",
    "CONTRACT_TYPES",
    "KLINE_INTERVALS",
    "MAX_STREAM_NAME_LENGTH",
    "VALID_FORMS",
    "Endpoint",
    "StreamName",
    "canonical",
    "parse_stream",
    "parse_stream_list",
]
