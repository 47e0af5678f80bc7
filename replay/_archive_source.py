"""The archive-backed :class:`~replay.wire.source.FrameSource` behind ``ticktape serve``.

Every client session replays, from ``start``, the recorded payloads of the streams it is
subscribed to, paced like the recording (or ``speed`` times faster, or flat out at 0). A
(un)subscription takes effect at the session's replay clock, as it would live. REST answers
come from the same archive at the replay clock (DESIGN.md "replay: Replay server"):
``/fapi/v1/depth`` from the recorded ``<symbol>@depthSnapshot`` nearest before it,
``/fapi/v1/time`` is the clock itself, ``exchangeInfo`` lists the recorded symbols.

The REST clock is that of the newest open session (a backtest has one client), or, with no
session open, ``start`` advanced at ``speed`` since the source was created.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from replay._archive import Archive
from replay._merge import STREAM_INDEX, merge_archive
from replay._pacer import DEFAULT_SPIN_NS, Pacer
from replay._rows import ints
from replay._schedule import TablePrefetch
from replay._times import TimeLike, format_ns, parse_time
from replay.sim.book import instrument_for
from replay.wire.source import Frame, Item, Session
from schemas.errors import ConfigError, StreamNameError
from schemas.streams import Endpoint, parse_stream

MAX_BATCH = 1_000
"""Frames handed to the server at once (frames already due are sent together)."""
SLICE_ROWS = 1_024
"""Rows converted to Python at once (keeps each step of the event loop short)."""
IDLE_POLL_S = 0.02
"""How often a session with no servable subscription looks for a change."""


@dataclass(slots=True)
class _Clock:
    """One session's replay clock."""

    pacer: Pacer
    last_ns: int

    def now_ns(self) -> int:
        if self.pacer.speed == 0:
            return self.last_ns
        return self.pacer.replay_clock_ns()


class ArchiveSource:
    """Serves an :class:`Archive` to the Binance wire server."""

    def __init__(
        self,
        archive: Archive,
        start: TimeLike | None = None,
        speed: float = 1.0,
        spin_ns: int = DEFAULT_SPIN_NS,
    ) -> None:
        if speed < 0:
            raise ConfigError(f"--speed must be >= 0, not {speed}")
        self.archive = archive
        self.speed = speed
        self.spin_ns = spin_ns
        ranges = archive.time_ranges()
        self.servable = frozenset(
            s for s in ranges
            if parse_stream(s).endpoint not in (Endpoint.REST, Endpoint.PRIVATE)
        )
        """Recorded streams a websocket can carry (not REST snapshots, not user data)."""
        self.symbols = sorted({sym for s in ranges if (sym := parse_stream(s).symbol)})
        first = min((ranges[s][0] for s in self.servable), default=None)
        parsed = parse_time(start)
        self.start: int = parsed if parsed is not None else (first or 0)
        idle = Pacer(speed, record=False)
        idle.anchor(self.start)
        self._idle = _Clock(idle, self.start)
        self._sessions: list[_Clock] = []
        self._snapshot_times: dict[str, list[int]] = {}

    def describe(self) -> str:
        """One line for the console."""
        return (f"{len(self.servable)} stream(s) of {len(self.symbols)} symbol(s) from "
                f"{format_ns(self.start)} at speed {self.speed:g}")

    # -- websocket data -----------------------------------------------------------------

    def open_session(self, session: Session) -> AsyncIterator[Item]:
        """The paced frames of ``session``'s subscribed streams, from ``start``."""
        return self._frames(session)

    async def _frames(self, session: Session) -> AsyncIterator[Item]:
        pacer = Pacer(self.speed, self.spin_ns, record=False)
        pacer.anchor(self.start)
        clock = _Clock(pacer, self.start)
        self._sessions.append(clock)
        try:
            position = self.start
            last_key: tuple[int, int, int, str] | None = None
            while True:
                selection = session.streams
                wanted = sorted(selection & self.servable)
                if not wanted:
                    while session.streams is selection:
                        await asyncio.sleep(IDLE_POLL_S)
                    position = max(position, clock.now_ns())
                    continue
                feed = TablePrefetch(merge_archive(self.archive, wanted, position, None))
                try:
                    while (table := await feed.next()) is not None:
                        for off in range(0, table.num_rows, SLICE_ROWS):
                            part = table.slice(off, SLICE_ROWS)
                            paced = self._paced(part, wanted, session, selection, clock,
                                                last_key)
                            async with aclosing(paced) as items:
                                async for item, key in items:
                                    last_key = key
                                    yield item
                            if session.streams is not selection:
                                break
                        if session.streams is not selection:
                            break
                finally:
                    await feed.aclose()
                # The archive is exhausted for this selection: keep the session's clock
                # (REST answers follow it) until the client (un)subscribes or leaves.
                while session.streams is selection:
                    await asyncio.sleep(IDLE_POLL_S)
                # Binance applies a (un)subscription from "now": resume at the clock.
                position = max(clock.now_ns(), last_key[0] if last_key else position)
        finally:
            self._sessions.remove(clock)

    async def _paced(
        self,
        table: pa.Table,
        names: Sequence[str],
        session: Session,
        selection: frozenset[str],
        clock: _Clock,
        after: tuple[int, int, int, str] | None,
    ) -> AsyncGenerator[tuple[list[Frame], tuple[int, int, int, str]], None]:
        pacer = clock.pacer
        batch: list[Frame] = []
        key = after
        rows = zip(
            ints(table.column(STREAM_INDEX)),
            ints(table.column("recv_ns")),
            ints(table.column("conn_id")),
            ints(table.column("seq")),
            cast(list[str], table.column("raw").to_pylist()),
            strict=True,
        )
        for idx, recv, conn, seq, raw in rows:
            row_key = (recv, conn, seq, names[idx])
            if after is not None and recv == after[0] and row_key <= after:
                continue  # delivered before the selection changed
            if session.streams is not selection:
                break
            if pacer.speed > 0:
                # Frames already due go out together; a frame not yet due first flushes them.
                if batch and (len(batch) >= MAX_BATCH
                              or pacer.deadline(recv) > time.perf_counter_ns()):
                    yield batch, cast(tuple[int, int, int, str], key)
                    batch = []
                await pacer.wait(recv)
            elif len(batch) >= MAX_BATCH:
                yield batch, cast(tuple[int, int, int, str], key)
                batch = []
            batch.append((names[idx], raw))
            key = row_key
            clock.last_ns = recv
        if batch:
            yield batch, cast(tuple[int, int, int, str], key)

    # -- REST ---------------------------------------------------------------------------

    def replay_clock_ns(self) -> int:
        """The newest session's replay clock (or the idle clock with no session)."""
        clock = self._sessions[-1] if self._sessions else self._idle
        return clock.now_ns()

    def server_time_ms(self) -> int:
        """``GET /fapi/v1/time``: the replay clock in ms."""
        return self.replay_clock_ns() // 1_000_000

    def _stream_of(self, symbol: str, channel: str) -> str | None:
        try:
            name = parse_stream(f"{symbol.lower()}@{channel}").name
        except StreamNameError:
            return None
        return name if self.archive.partitions(name) else None

    async def depth_snapshot(self, symbol: str, limit: int) -> dict[str, Any] | None:
        """The recorded snapshot nearest before the replay clock (else the first after it)."""
        stream = self._stream_of(symbol, "depthSnapshot")
        if stream is None:
            return None
        times = self._snapshot_times.get(stream)
        if times is None:
            times = [t for b in self.archive.read_stream(stream, columns=["recv_ns"])
                     for t in ints(b.column("recv_ns"))]
            self._snapshot_times[stream] = times
        if not times:
            return None
        at = times[max(0, bisect_right(times, self.replay_clock_ns()) - 1)]
        for batch in self.archive.read_stream(stream, at, at + 1, columns=["raw"]):
            body = orjson.loads(cast(str, batch.column("raw")[0].as_py()))
            if isinstance(body, dict):
                body["bids"] = body.get("bids", [])[:limit]
                body["asks"] = body.get("asks", [])[:limit]
                return cast(dict[str, Any], body)
        return None

    async def agg_trades(
        self, symbol: str, from_id: int | None, limit: int
    ) -> list[dict[str, Any]] | None:
        """Recorded aggTrades up to the replay clock, from ``from_id`` (inclusive)."""
        stream = self._stream_of(symbol, "aggTrade")
        if stream is None:
            return None
        clock = self.replay_clock_ns()
        # fromId (inclusive): the first `limit` trades from it; none: the latest `limit`.
        rows: deque[str] = deque(maxlen=None if from_id is not None else limit)
        for batch in self.archive.read_stream(stream, None, clock + 1,
                                              columns=["agg_trade_id", "raw"]):
            if from_id is not None:
                batch = batch.filter(pc.greater_equal(batch.column("agg_trade_id"),
                                                      pa.scalar(from_id, pa.int64())))
                batch = batch.slice(0, limit - len(rows))
            rows.extend(cast(list[str], batch.column("raw").to_pylist()))
            if from_id is not None and len(rows) >= limit:
                break
        out = []
        for raw in rows:
            d = orjson.loads(raw)
            out.append({k: d[k] for k in ("a", "p", "q", "nq", "f", "l", "T", "m") if k in d})
        return out

    async def exchange_symbols(self) -> list[dict[str, Any]]:
        """``exchangeInfo`` entries for the recorded symbols (Binance-like filters)."""
        return [_symbol_info(sym) for sym in self.symbols]

    async def create_listen_key(self, api_key: str) -> str | None:
        """User data is not replayed: no listen keys."""
        return None

    async def keepalive_listen_key(self, api_key: str, listen_key: str) -> bool:
        """No listen keys exist."""
        return False

    async def delete_listen_key(self, api_key: str, listen_key: str) -> bool:
        """No listen keys exist."""
        return False

    def listen_key_known(self, listen_key: str) -> bool:
        """No listen keys exist."""
        return False


def _symbol_info(symbol: str) -> dict[str, Any]:
    inst = instrument_for(symbol)
    tick = f"{inst.tick / 10 ** inst.price_dp:.{inst.price_dp}f}"
    step = f"{1 / 10 ** inst.qty_dp:.{inst.qty_dp}f}"
    return {
        "symbol": symbol, "pair": symbol, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
        "baseAsset": inst.base_asset, "quoteAsset": inst.quote_asset,
        "marginAsset": inst.quote_asset, "pricePrecision": inst.price_dp,
        "quantityPrecision": inst.qty_dp, "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "settlePlan": 0, "triggerProtect": "0.0500",
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": tick, "minPrice": tick,
             "maxPrice": "4529764"},
            {"filterType": "LOT_SIZE", "stepSize": step, "minQty": step, "maxQty": "1000"},
            {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "minQty": step,
             "maxQty": "120"},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": "100"},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


__all__ = ["ArchiveSource"]
