"""Pure deduplication of the overlap in a make-before-break connection rotation.

Binance closes every connection after 24 h (BINANCE.md section 2), so the recorder opens a
replacement first, lets both run, then closes the old one. During the overlap both deliver the
same events. Per stream, the switch from old to new happens at the first payload both have
received (payload identity: the exchange sends identical bytes for one event on every
connection). Old messages are emitted until then, new ones after it: no hole, no duplicate.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from schemas.message import Message

MAX_BUFFER_PER_STREAM = 10_000
"""New-connection messages held per stream while waiting for the switch point."""


@dataclass(slots=True)
class _StreamState:
    switched: bool = False
    caught_up: bool = False
    old_seen: set[str] = field(default_factory=set)
    old_order: collections.deque[str] = field(default_factory=collections.deque)
    new_buffer: list[Message] = field(default_factory=list)
    old_last_ns: int = 0


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A stream whose old and new messages never met during the overlap (possible hole)."""

    stream: str
    old_last_ns: int
    new_first_ns: int


class OverlapDeduper:
    """Merge the old and new connection of one rotation into one duplicate-free sequence.

    Feed messages with :meth:`from_old` and :meth:`from_new`; each returns the messages to
    store now. Call :meth:`close_old` once the old connection has ended; keep feeding the new
    connection through :meth:`from_new` until :meth:`pending` is empty (a lagging new
    connection may still deliver events the old one stored).
    """

    def __init__(self, memory: int = MAX_BUFFER_PER_STREAM) -> None:
        self._streams: dict[str, _StreamState] = {}
        self._memory = memory
        self._old_closed = False
        self.dropped_duplicates = 0

    def _state(self, stream: str) -> _StreamState:
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _StreamState()
        return state

    def from_old(self, msg: Message) -> list[Message]:
        """A message from the connection being retired."""
        state = self._state(msg.stream)
        if state.switched:
            self.dropped_duplicates += 1
            return []
        out = [msg]
        for i, held in enumerate(state.new_buffer):
            if held.raw == msg.raw:
                # Switch point: the new connection has this event too; keep what follows it.
                self.dropped_duplicates += i + 1
                out.extend(state.new_buffer[i + 1:])
                self._switch(state)
                return out
        state.old_last_ns = msg.recv_ns
        state.old_seen.add(msg.raw)
        state.old_order.append(msg.raw)
        if len(state.old_order) > self._memory:
            state.old_seen.discard(state.old_order.popleft())
        return out

    def from_new(self, msg: Message) -> list[Message]:
        """A message from the replacement connection."""
        state = self._state(msg.stream)
        if state.switched:
            return [msg]
        if msg.raw in state.old_seen:
            # The old connection already stored this event and everything before it.
            self.dropped_duplicates += len(state.new_buffer) + 1
            state.new_buffer = []
            state.caught_up = True
            return []
        if self._old_closed:
            self._switch(state)
            return [msg]
        if len(state.new_buffer) >= self._memory:
            # Too long without a match: stop waiting and keep the newest data.
            held = state.new_buffer
            self._switch(state)
            return [*held, msg]
        state.new_buffer.append(msg)
        return []

    @staticmethod
    def _switch(state: _StreamState) -> None:
        state.switched = True
        state.new_buffer = []
        state.old_seen.clear()
        state.old_order.clear()

    def close_old(self) -> tuple[list[Message], list[Unmatched]]:
        """The old connection is gone: release held new messages and name unmatched streams.

        A stream that had messages on both sides but no common payload may have lost events
        between them; the caller records that as a ``rotation`` gap.
        """
        self._old_closed = True
        out: list[Message] = []
        unmatched: list[Unmatched] = []
        for stream, state in self._streams.items():
            if state.switched or not state.new_buffer:
                continue
            out.extend(state.new_buffer)
            if state.old_order and not state.caught_up:
                unmatched.append(Unmatched(stream, state.old_last_ns,
                                           state.new_buffer[0].recv_ns))
            self._switch(state)
        out.sort(key=lambda m: m.sort_key)
        return out, unmatched

    def pending(self) -> set[str]:
        """Streams not yet safe to hand over: new messages held, or new not caught up."""
        return {name for name, st in self._streams.items()
                if not st.switched and (st.new_buffer or (st.old_order and not st.caught_up))}

    def switched(self) -> set[str]:
        """Streams that already switched to the new connection."""
        return {name for name, st in self._streams.items() if st.switched}


__all__ = ["OverlapDeduper", "Unmatched"]
