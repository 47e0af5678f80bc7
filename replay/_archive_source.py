"""The archive-backed :class:`~replay.wire.source.FrameSource` behind ``ticktape serve``.

Every client session replays, from ``start`` (the server's, or ``start=`` in the client's
URL), the recorded payloads of the streams it is subscribed to, paced like the recording (or
``speed`` times faster, or flat out at 0). A (un)subscription takes effect at the session's
replay clock, as it would live. Where the recorder's connection was down, the client's is
closed too and its reconnection resumes after the gap (:mod:`replay._serve_session`).
Rows backfilled over REST are not sent on the websocket (REST ``aggTrades`` serves them).
REST answers come from the same archive at the replay clock (DESIGN.md "replay: Replay
server"):
``/fapi/v1/depth`` from the recorded ``<symbol>@depthSnapshot`` nearest before it,
``/fapi/v1/time`` is the clock itself, ``exchangeInfo`` lists the recorded symbols.

The REST clock is that of the newest open session (a backtest has one client), or, with no
session open, that of the session most recently ended by a recorded disconnect (its client
is reconnecting), else ``start`` advanced at ``speed`` since the source was created.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from bisect import bisect_right
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
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
from replay._serve_session import (
    RESUME_TTL_S,
    DisconnectPlan,
    GapMode,
    ResumeBook,
    SessionOptions,
    SessionQueryError,
    close_action,
    parse_session_query,
)
from replay._times import TimeLike, format_ns, parse_time
from replay.sim.book import instrument_for
from replay.wire.exchange_info import symbol_entry
from replay.wire.source import Close, Drop, Frame, Item, QueryRefusal, Session
from schemas.errors import ConfigError, StreamNameError
from schemas.message import Gap, Source
from schemas.streams import Endpoint, parse_stream

MAX_BATCH = 1_000
"""Frames handed to the server at once (frames already due are sent together)."""
SLICE_ROWS = 1_024
"""Rows converted to Python at once (keeps each step of the event loop short)."""
IDLE_POLL_S = 0.02
"""How often a session with no servable subscription looks for a change."""


@dataclass(slots=True, eq=False)
class _Clock:
    """One session's replay clock (kept across a resumption after a recorded disconnect)."""

    pacer: Pacer
    last_ns: int
    end: int | None = None
    """The session's ``end=`` option (exclusive), ``None`` for no end."""

    def now_ns(self) -> int:
        if self.pacer.speed == 0:
            return self.last_ns
        return self.pacer.replay_clock_ns()


_Key = tuple[int, int, int, str]
"""Merge order of a delivered row: ``(recv_ns, conn_id, seq, stream)``."""


class ArchiveSource:
    """Serves an :class:`Archive` to the Binance wire server.

    ``gaps`` says what a session does at a recorded disconnect (:class:`GapMode`; see
    :mod:`replay._serve_session`); ``resume_ttl_s`` how long such a session waits for its
    client to reconnect. Clients may pick ``start=``, ``end=`` and ``speed=`` in their URL.
    """

    def __init__(
        self,
        archive: Archive,
        start: TimeLike | None = None,
        speed: float = 1.0,
        spin_ns: int = DEFAULT_SPIN_NS,
        gaps: GapMode = GapMode.DISCONNECT,
        resume_ttl_s: float = RESUME_TTL_S,
    ) -> None:
        if speed < 0:
            raise ConfigError(f"--speed must be >= 0, not {speed}")
        self.archive = archive
        self.speed = speed
        self.spin_ns = spin_ns
        self.gap_mode = GapMode(gaps)
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
        self.disconnects = DisconnectPlan(
            archive.gaps(self.servable) if self.gap_mode is GapMode.DISCONNECT and self.servable
            else ())
        """Recorded gaps that end a client's connection (empty with ``--gaps ignore``)."""
        idle = Pacer(speed, record=False)
        idle.anchor(self.start)
        self._idle = _Clock(idle, self.start)
        self._sessions: list[_Clock] = []
        self._parked: ResumeBook[_Clock] = ResumeBook(resume_ttl_s)
        self._snapshot_times: dict[str, list[int]] = {}

    def describe(self) -> str:
        """One line for the console."""
        gaps = (f"{len(self.disconnects.gaps)} recorded disconnect(s) close clients"
                if self.gap_mode is GapMode.DISCONNECT else "recorded disconnects ignored")
        return (f"{len(self.servable)} stream(s) of {len(self.symbols)} symbol(s) from "
                f"{format_ns(self.start)} at speed {self.speed:g}; {gaps}")

    # -- websocket data -----------------------------------------------------------------

    def check_session_query(self, query: Mapping[str, str]) -> QueryRefusal | None:
        """Validate a client's ``start=``/``end=``/``speed=`` URL options before the upgrade."""
        try:
            parse_session_query(query)
        except SessionQueryError as exc:
            return exc.refusal
        return None

    def open_session(self, session: Session) -> AsyncIterator[Item]:
        """The paced frames of ``session``'s subscribed streams, from its start.

        A connection resuming a session ended by a recorded disconnect (same client address
        and URL) continues it after the gap; any other starts at its URL's ``start=`` or
        the server's ``start``.
        """
        return self._frames(session)

    def _session_clock(self, session: Session) -> tuple[_Clock, int]:
        parked = self._parked.claim((session.peer, session.url), time.monotonic())
        if parked is not None:
            clock = parked.state
            position = max(parked.resume_ns, clock.now_ns())
            clock.last_ns = position
            return clock, position
        try:
            options = parse_session_query(session.query)
        except SessionQueryError:  # the server refused it already; a direct caller did not
            options = SessionOptions()
        speed = self.speed if options.speed is None else options.speed
        start = self.start if options.start is None else options.start
        pacer = Pacer(speed, self.spin_ns, record=False)
        pacer.anchor(start)
        return _Clock(pacer, start, options.end), start

    async def _frames(self, session: Session) -> AsyncIterator[Item]:
        clock, position = self._session_clock(session)
        self._sessions.append(clock)
        try:
            last_key: _Key | None = None
            while True:
                selection = session.streams
                wanted = sorted(selection & self.servable)
                if not wanted or (clock.end is not None and position >= clock.end):
                    while session.streams is selection:
                        await asyncio.sleep(IDLE_POLL_S)
                    position = max(position, clock.now_ns())
                    continue
                gap = self.disconnects.next_after(position, wanted)
                feed = TablePrefetch(merge_archive(self.archive, wanted, position, clock.end))
                try:
                    while (table := await feed.next()) is not None:
                        table = _websocket_rows(table)
                        for off in range(0, table.num_rows, SLICE_ROWS):
                            part = table.slice(off, SLICE_ROWS)
                            paced = self._paced(part, wanted, session, selection, clock,
                                                last_key, gap)
                            async with aclosing(paced) as items:
                                async for item, key in items:
                                    last_key = key
                                    if gap is not None and isinstance(item, Close | Drop):
                                        # A recorded disconnect: park the session for the
                                        # client's reconnection, then end this connection.
                                        self._parked.park((session.peer, session.url), clock,
                                                          gap.end_ns, time.monotonic())
                                        yield item
                                        return
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
        after: _Key | None,
        gap: Gap | None,
    ) -> AsyncGenerator[tuple[Item, _Key | None], None]:
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
            if gap is not None and recv > gap.start_ns:
                # The recorder's connection went down here: deliver what came before it,
                # then end the client's connection when the replay clock reaches the gap.
                if batch:
                    yield batch, key
                    batch = []
                await pacer.wait(gap.start_ns)
                clock.last_ns = max(clock.last_ns, gap.start_ns)
                yield close_action(gap), key
                return
            if pacer.speed > 0:
                # Frames already due go out together; a frame not yet due first flushes them.
                if batch and (len(batch) >= MAX_BATCH
                              or pacer.deadline(recv) > time.perf_counter_ns()):
                    yield batch, key
                    batch = []
                await pacer.wait(recv)
            elif len(batch) >= MAX_BATCH:
                yield batch, key
                batch = []
            batch.append((names[idx], raw))
            key = row_key
            clock.last_ns = recv
        if batch:
            yield batch, key

    # -- REST ---------------------------------------------------------------------------

    def replay_clock_ns(self) -> int:
        """The newest session's replay clock.

        With no session open: the clock of the session most recently ended by a recorded
        disconnect (its client is reconnecting), else the idle clock.
        """
        if self._sessions:
            return self._sessions[-1].now_ns()
        parked = self._parked.newest(time.monotonic())
        return (parked.state if parked is not None else self._idle).now_ns()

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
        """Recorded aggTrades up to the replay clock, from ``from_id`` (inclusive).

        Ordered by id like Binance's, whatever the storage order: REST-backfilled rows are
        stored when fetched, after websocket rows with higher ids.
        """
        stream = self._stream_of(symbol, "aggTrade")
        if stream is None:
            return None
        clock = self.replay_clock_ns()
        # fromId (inclusive): the first `limit` trades from it; none: the latest `limit`.
        pick = heapq.nsmallest if from_id is not None else heapq.nlargest
        by_id: dict[int, str] = {}
        for batch in self.archive.read_stream(stream, None, clock + 1,
                                              columns=["agg_trade_id", "raw"]):
            if from_id is not None:
                batch = batch.filter(pc.greater_equal(batch.column("agg_trade_id"),
                                                      pa.scalar(from_id, pa.int64())))
            by_id.update(zip(ints(batch.column("agg_trade_id")),
                             cast(list[str], batch.column("raw").to_pylist()), strict=True))
            if len(by_id) > 4 * limit:  # keep memory bounded: only the best `limit` can win
                by_id = {a: by_id[a] for a in pick(limit, by_id)}
        out = []
        for a in sorted(pick(limit, by_id)):
            d = orjson.loads(by_id[a])
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


def _websocket_rows(table: pa.Table) -> pa.Table:
    """Rows the recorder received on a websocket.

    REST-backfilled aggTrades are stored in their stream with ``source='rest'`` (DESIGN.md
    "Partition layout"), but Binance never sent them on a websocket: a live client missed
    them and may fetch them from ``/fapi/v1/aggTrades``, which serves them.
    """
    ws = pc.equal(table.column("source"), pa.scalar(Source.WS.value))
    return table if pc.all(ws).as_py() else table.filter(ws)


def _symbol_info(symbol: str) -> dict[str, Any]:
    inst = instrument_for(symbol)
    tick = f"{inst.tick / 10 ** inst.price_dp:.{inst.price_dp}f}"
    step = f"{1 / 10 ** inst.qty_dp:.{inst.qty_dp}f}"
    return symbol_entry(symbol, inst.base_asset, inst.quote_asset, inst.price_dp, tick,
                        inst.qty_dp, step, 1569398400000, min_price=tick)


__all__ = ["ArchiveSource"]
