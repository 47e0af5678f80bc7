"""Merged Arrow tables -> :class:`~schemas.message.Message` objects, with gaps interleaved.

A merged table is first *prepared* (:func:`prepare`: checks, contiguous columns, columns
that hold one value throughout), which is Arrow work that can run in the reader thread;
the event loop then converts it a small slice at a time (:class:`EventChunker`). Converting
slices of a few hundred rows, right before their messages are delivered, keeps the Python
objects of a slice in the CPU cache (a whole 64k-row table of strings does not fit) and
every step of the loop short.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar, cast

import pyarrow as pa
import pyarrow.compute as pc

from replay._merge import STREAM_INDEX
from schemas.errors import ArchiveError
from schemas.message import Event, Gap, Message, Source

_SOURCES = {s.value: s for s in Source}
_T = TypeVar("_T")


def ints(column: pa.ChunkedArray[Any] | pa.Array[Any]) -> list[int]:
    """A non-null integer column as a Python list."""
    return cast(list[int], column.to_pylist())


def _lookup(values: Sequence[_T], codes: list[int]) -> Sequence[_T]:
    """``[values[c] for c in codes]`` (``codes`` not empty), in one C call."""
    if len(codes) == 1:
        return [values[codes[0]]]
    return cast("tuple[_T, ...]", itemgetter(*codes)(values))


def _array(table: pa.Table, name: str) -> pa.Array[Any]:
    col = table.column(name)
    if col.num_chunks == 1:
        return cast("pa.Array[Any]", col.chunk(0))
    return col.combine_chunks()


def _only_value(column: pa.Array[Any]) -> Any:
    """The one value every row of ``column`` holds, else ``None``."""
    if len(column) == 0:
        return None
    bounds = cast(dict[str, Any], pc.min_max(column).as_py())
    return bounds["min"] if bounds["min"] == bounds["max"] else None


@dataclass(frozen=True, slots=True)
class PreparedTable:
    """A merged table ready for slice-wise conversion (see :func:`prepare`)."""

    rows: int
    recv: pa.Array[Any]
    raw: pa.Array[Any]
    seq: pa.Array[Any]
    stream: pa.Array[Any] | str
    """``stream_idx`` values, or the one stream name every row has."""
    conn: pa.Array[Any] | int
    """``conn_id`` values, or the one value every row has."""
    source: tuple[pa.Array[Any], list[Source]] | Source
    """Dictionary codes and their sources, or the one source every row has."""


def prepare(table: pa.Table, names: list[str]) -> PreparedTable:
    """Check ``table`` (a merged table whose ``stream_idx`` indexes ``names``) and lay out its
    columns for :class:`EventChunker`. Pure Arrow work: safe in a worker thread."""
    raws = table.column("raw")
    if raws.null_count:
        raise ArchiveError(
            f"{raws.null_count} row(s) without stored raw text in "
            f"{sorted({names[i] for i in set(ints(table.column(STREAM_INDEX)))})}"
        )
    idx = _array(table, STREAM_INDEX)
    only_idx = _only_value(idx)
    conn = _array(table, "conn_id")
    only_conn = _only_value(conn)
    encoded = cast("pa.DictionaryArray[Any, Any]",
                   pc.dictionary_encode(_array(table, "source")))
    sources = [_SOURCES.get(str(v), Source.WS) for v in encoded.dictionary.to_pylist()]
    return PreparedTable(
        rows=table.num_rows,
        recv=_array(table, "recv_ns"),
        raw=_array(table, "raw"),
        seq=_array(table, "seq"),
        stream=names[only_idx] if only_idx is not None else idx,
        conn=int(only_conn) if only_conn is not None else conn,
        source=sources[0] if len(sources) == 1 else (encoded.indices, sources),
    )


def prepared(
    tables: Iterator[pa.Table], names: list[str]
) -> Generator[PreparedTable, None, None]:
    """:func:`prepare` applied to every table of ``tables`` (closes it when closed)."""
    try:
        for table in tables:
            yield prepare(table, names)
    finally:
        close: Callable[[], None] | None = getattr(tables, "close", None)
        if close is not None:
            close()


class EventChunker:
    """Cuts prepared tables into runs of events, each gap placed before the first message
    with ``recv_ns >= gap.start_ns`` (DESIGN.md "replay: Merge"); gaps after the last message
    come from :meth:`tail`.
    """

    def __init__(self, names: list[str], gaps: list[Gap]) -> None:
        self.names = names
        self.gaps = gaps
        self._gi = 0
        self._table: PreparedTable | None = None
        self._off = 0
        self._rows = 0

    def feed(self, table: PreparedTable | pa.Table) -> None:
        """Start cutting ``table`` (the previous one must be used up)."""
        self._table = table if isinstance(table, PreparedTable) else prepare(table, self.names)
        self._off = 0
        self._rows = self._table.rows

    @property
    def has_rows(self) -> bool:
        """True while the current table has rows left."""
        return self._off < self._rows

    def _convert(self, off: int, n: int) -> tuple[list[int], list[Message]]:
        t = self._table
        assert t is not None
        recv = ints(t.recv.slice(off, n))
        stream = t.stream
        streams: Sequence[str]
        sources: Sequence[Source]
        if isinstance(stream, str):
            streams = [stream] * n
        else:
            streams = _lookup(self.names, ints(stream.slice(off, n)))
        conn = [t.conn] * n if isinstance(t.conn, int) else ints(t.conn.slice(off, n))
        source = t.source
        if isinstance(source, Source):
            sources = [source] * n
        else:
            codes, values = source
            sources = _lookup(values, ints(codes.slice(off, n)))
        raws = cast(list[str], t.raw.slice(off, n).to_pylist())
        msgs = Message.from_columns(streams, recv, raws, conn, ints(t.seq.slice(off, n)),
                                    sources)
        return recv, msgs

    def segments(self, size: int) -> list[tuple[list[Message], Gap | None]]:
        """The next ``size`` messages of the current table, split at the gaps due among
        them: ``(messages, gap delivered after them or None)``."""
        off = self._off
        n = min(size, self._rows - off)
        if n <= 0:
            return []
        recv, msgs = self._convert(off, n)
        self._off = off + n
        gaps, gi = self.gaps, self._gi
        if gi >= len(gaps) or gaps[gi].start_ns > recv[-1]:
            return [(msgs, None)]
        out: list[tuple[list[Message], Gap | None]] = []
        i = 0
        while gi < len(gaps) and gaps[gi].start_ns <= recv[-1]:
            j = bisect_left(recv, gaps[gi].start_ns, i)
            out.append((msgs[i:j], gaps[gi]))
            gi += 1
            i = j
        self._gi = gi
        out.append((msgs[i:], None))
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


__all__ = ["EventChunker", "PreparedTable", "ints", "prepare", "prepared"]
