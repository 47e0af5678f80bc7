"""Merged Arrow tables -> :class:`~schemas.message.Message` objects, with gaps interleaved."""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from replay._merge import STREAM_INDEX
from schemas.errors import ArchiveError
from schemas.message import Event, Gap, Message, Source

_SOURCES = {s.value: s for s in Source}
_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend
_new = Message.__new__
# Message is slotted and immutable (its __setattr__ raises); filling the slots through their
# descriptors gives the same object as Message(...) at a fraction of the cost, which is what
# lets a replay reach >= 500k messages/s.
_SET = [
    Message.__dict__[name].__set__
    for name in ("stream", "recv_ns", "raw", "conn_id", "seq", "source", "_data")
]


def ints(column: pa.ChunkedArray[Any] | pa.Array[Any]) -> list[int]:
    """A non-null integer column as a Python list."""
    return cast(list[int], column.to_pylist())


class TableRows:
    """The columns of a merged table as Python lists (converted once), from which
    :class:`Message` objects are built a range at a time.

    Ints and strings are not tracked by the garbage collector, messages are: building them
    in small ranges keeps few of them alive at once and the collector cheap.
    """

    __slots__ = ("conn", "raw", "recv", "seq", "source", "stream")

    def __init__(self, table: pa.Table, names: list[str]) -> None:
        raws = table.column("raw")
        if raws.null_count:
            raise ArchiveError(
                f"{raws.null_count} row(s) without stored raw text in "
                f"{sorted({names[i] for i in set(ints(table.column(STREAM_INDEX)))})}"
            )
        # Repeating per-row values (stream name, source) are looked up by small integer codes.
        encoded = cast("pa.DictionaryArray[Any, Any]",
                       pc.dictionary_encode(table.column("source").combine_chunks()))
        sources = [_SOURCES.get(str(v), Source.WS) for v in encoded.dictionary.to_pylist()]
        self.stream = list(map(names.__getitem__, ints(table.column(STREAM_INDEX))))
        self.recv = ints(table.column("recv_ns"))
        self.raw = cast(list[str], raws.to_pylist())
        self.conn = ints(table.column("conn_id"))
        self.seq = ints(table.column("seq"))
        self.source = list(map(sources.__getitem__, ints(encoded.indices)))

    def messages(self, lo: int, hi: int) -> list[Message]:
        """Messages of rows ``[lo, hi)``."""
        s_stream, s_recv, s_raw, s_conn, s_seq, s_source, s_data = _SET
        n = hi - lo
        msgs = list(map(_new, repeat(Message, n)))
        # One C-level pass per slot (map over the descriptors' __set__), no per-row bytecode.
        _consume(map(s_stream, msgs, self.stream[lo:hi]))
        _consume(map(s_recv, msgs, self.recv[lo:hi]))
        _consume(map(s_raw, msgs, self.raw[lo:hi]))
        _consume(map(s_conn, msgs, self.conn[lo:hi]))
        _consume(map(s_seq, msgs, self.seq[lo:hi]))
        _consume(map(s_source, msgs, self.source[lo:hi]))
        _consume(map(s_data, msgs, repeat(None, n)))
        return msgs


def make_messages(table: pa.Table, names: list[str]) -> list[Message]:
    """The rows of a merged table (``stream_idx`` indexes ``names``) as messages, in order."""
    return TableRows(table, names).messages(0, table.num_rows)


class EventChunker:
    """Cuts merged tables into runs of events, each gap placed before the first message with
    ``recv_ns >= gap.start_ns`` (DESIGN.md "replay: Merge"); gaps after the last message come
    from :meth:`tail`.
    """

    def __init__(self, names: list[str], gaps: list[Gap]) -> None:
        self.names = names
        self.gaps = gaps
        self._gi = 0
        self._rows: TableRows | None = None
        self._recv: list[int] = []
        self._off = 0

    def feed(self, table: pa.Table) -> None:
        """Start cutting ``table`` (the previous one must be used up)."""
        self._rows = TableRows(table, self.names)
        self._recv = self._rows.recv
        self._off = 0

    @property
    def has_rows(self) -> bool:
        """True while the current table has rows left."""
        return self._off < len(self._recv)

    def segments(self, size: int) -> list[tuple[list[Message], Gap | None]]:
        """The next ``size`` messages of the current table, split at the gaps due among
        them: ``(messages, gap delivered after them or None)``."""
        assert self._rows is not None
        off, recv, gaps = self._off, self._recv, self.gaps
        end = min(off + size, len(recv))
        msgs = self._rows.messages(off, end)
        out: list[tuple[list[Message], Gap | None]] = []
        i = off
        while self._gi < len(gaps) and gaps[self._gi].start_ns <= recv[end - 1]:
            j = bisect_left(recv, gaps[self._gi].start_ns, i, end)
            out.append((msgs[i - off : j - off], gaps[self._gi]))
            self._gi += 1
            i = j
        out.append((msgs[i - off :] if i > off else msgs, None))
        self._off = end
        return out

    def chunk(self, size: int) -> list[Event]:
        """Like :meth:`segments`, flattened into one list of events."""
        out: list[Event] = []
        for msgs, gap in self.segments(size):
            out.extend(msgs)
            if gap is not None:
                out.append(gap)
        return out

    def tail(self) -> list[Gap]:
        """The gaps not yet placed (they start after every message); once."""
        rest = self.gaps[self._gi :]
        self._gi = len(self.gaps)
        return rest


__all__ = ["EventChunker", "TableRows", "ints", "make_messages"]
