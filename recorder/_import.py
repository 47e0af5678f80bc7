"""``import``: turn existing captures into archive partitions, keeping every frame's bytes.

Accepted line formats (plain text or gzip, detected by magic bytes):

* Tardis-style: ``<ISO-8601 local timestamp> <frame>``, e.g.
  ``2024-08-08T23:54:15.0303146Z {"stream":"btcusdt@trade","data":{...}}``, including its
  generated ``{"stream":"btcusdt@depthSnapshot","generated":true,"data":{..}}`` snapshots
  (stored with ``source='rest'``);
* hftbacktest collector: ``<epoch ns> <frame>`` (nkaz001/hftbacktest ``collector``); integer
  epoch seconds, ms or us are recognised by magnitude.

A frame is a Binance combined-stream envelope, split byte-exactly by
:func:`schemas.wire.split_envelope` (the stored ``raw`` is the ``data`` text as received), or a
bare REST depth snapshot ``{"lastUpdateId":..}`` (the hftbacktest collector writes its
``GET /fapi/v1/depth`` answers unwrapped), stored as ``<symbol>@depthSnapshot`` with
``source='rest'``; its symbol is the only depth symbol of the file, else the file name's
prefix (``btcusdt_20240808.gz``). Control replies (``{"result":null,"id":1}``) are skipped.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from recorder._writer import WriterConfig, write_partitions
from schemas import layout
from schemas.errors import ArchiveError, StreamNameError
from schemas.message import Message, Source
from schemas.streams import Endpoint, parse_stream
from schemas.wire import split_envelope

ImportFormat = Literal["auto", "tardis", "hftbacktest"]
FORMATS: tuple[ImportFormat, ...] = ("auto", "tardis", "hftbacktest")
_ISO_RE = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z?")
_SNAPSHOT_PREFIX = '{"lastUpdateId":'
_FILE_SYMBOL_RE = re.compile(r"([a-z0-9]{2,24})(?:[_.@-]|$)")
CHUNK_MESSAGES = 250_000
"""Frames buffered before they are written (bounds memory for multi-GB captures)."""


@dataclass(slots=True)
class ImportResult:
    """What one file contributed."""

    file: str
    format: str
    messages: dict[str, int] = field(default_factory=dict)
    """Messages written per stream."""
    skipped: int = 0
    """Control replies and empty lines."""
    paths: list[Path] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Messages written in all streams."""
        return sum(self.messages.values())


def _iso_ns(text: str) -> int | None:
    m = _ISO_RE.fullmatch(text)
    if m is None:
        return None
    day = datetime.strptime(m.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
    secs = int(day.timestamp()) + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4))
    frac = (m.group(5) or "").ljust(9, "0")
    return secs * 1_000_000_000 + int(frac)


def _int_ns(text: str) -> int | None:
    if not text.isdigit():
        return None
    n = int(text)
    # Epoch magnitude: ns ~1.7e18, us ~1.7e15, ms ~1.7e12, s ~1.7e9.
    for limit, scale in ((10**17, 1), (10**14, 1_000), (10**11, 1_000_000)):
        if n >= limit:
            return n * scale
    return n * 1_000_000_000


def parse_timestamp(text: str, fmt: ImportFormat) -> int | None:
    """Epoch ns of a line's leading timestamp for ``fmt``, or ``None`` if it is not one."""
    if fmt == "tardis":
        return _iso_ns(text)
    if fmt == "hftbacktest":
        return _int_ns(text)
    return _iso_ns(text) if "T" in text else _int_ns(text)


def _open_lines(path: Path) -> Iterator[str]:
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
        opener: Any = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rt", encoding="utf-8", newline="\n") as text:
            yield from text
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())
        raise ArchiveError(f"cannot read {path}: {reason}") from exc


def detect_format(path: Path) -> ImportFormat:
    """``tardis`` or ``hftbacktest`` from the first line's timestamp."""
    for line in _open_lines(path):
        head = line.split(" ", 1)[0].strip()
        if not head:
            continue
        if _iso_ns(head) is not None:
            return "tardis"
        if _int_ns(head) is not None:
            return "hftbacktest"
        break
    raise ArchiveError(f"{path}: not a Tardis (<ISO time> <json>) or hftbacktest "
                       "(<epoch ns> <json>) capture")


def _snapshot_symbol(path: Path, depth_symbols: set[str], symbols: set[str]) -> str:
    """The symbol of a bare REST depth snapshot (its body names none)."""
    candidates = depth_symbols or symbols
    if len(candidates) == 1:
        return next(iter(candidates))
    m = _FILE_SYMBOL_RE.match(path.name.lower())
    if m is not None and (m.group(1) in candidates or not candidates):
        return m.group(1)
    raise ArchiveError(f"{path}: a REST depth snapshot has no symbol and none can be inferred "
                       "(several symbols in the file and none of them in its name)")


def _split_frame(frame: str) -> tuple[str, str] | None:
    """``(stream, payload)`` of an enveloped frame, payload sliced byte-exactly.

    Besides Binance's ``{"stream":..,"data":..}`` this accepts envelopes with extra keys
    before ``data``, such as Tardis's generated snapshots
    ``{"stream":"btcusdt@depthSnapshot","generated":true,"data":{..}}``.
    """
    split = split_envelope(frame)
    if split is None or frame.startswith('{"stream":"' + split[0] + '","data":'):
        return split
    at = frame.find('"data":')
    if at > 0 and frame.endswith("}"):
        payload = frame[at + len('"data":'):-1]
        try:
            if orjson.loads(payload) == orjson.loads(split[1]):
                return split[0], payload
        except orjson.JSONDecodeError:
            pass
    return split


class _Capture:
    """A streaming parse of one capture file: stream frames as they come, snapshots at end."""

    def __init__(self, path: Path, fmt: ImportFormat, start_ns: int | None,
                 end_ns: int | None) -> None:
        self.path = path
        self.fmt: ImportFormat = detect_format(path) if fmt == "auto" else fmt
        self.start_ns, self.end_ns = start_ns, end_ns
        self.skipped = 0
        self._snapshots: list[tuple[int, int, str]] = []
        self._depth_symbols: set[str] = set()
        self._symbols: set[str] = set()

    def messages(self) -> Iterator[Message]:
        """Every enveloped frame in file order (bare snapshots are kept for the end)."""
        path, fmt = self.path, self.fmt
        for lineno, line in enumerate(_open_lines(path), 1):
            text = line[:-1] if line.endswith("\n") else line
            text = text[:-1] if text.endswith("\r") else text
            if not text.strip():
                self.skipped += 1
                continue
            head, sep, frame = text.partition(" ")
            recv_ns = parse_timestamp(head, fmt)
            if not sep or recv_ns is None or not frame.startswith("{"):
                raise ArchiveError(f"{path}:{lineno}: expected '<timestamp> <json>' "
                                   f"({fmt} format)")
            if (self.start_ns is not None and recv_ns < self.start_ns) or (
                    self.end_ns is not None and recv_ns >= self.end_ns):
                continue
            split = _split_frame(frame)
            if split is None:
                if frame.startswith(_SNAPSHOT_PREFIX):
                    self._snapshots.append((recv_ns, lineno, frame))
                else:
                    self.skipped += 1
                continue
            try:
                stream = parse_stream(split[0])
            except StreamNameError as exc:
                raise ArchiveError(f"{path}:{lineno}: {exc}") from exc
            if stream.symbol is not None:
                self._symbols.add(stream.symbol.lower())
                if stream.is_diff_depth or stream.channel == "depthPartial":
                    self._depth_symbols.add(stream.symbol.lower())
            source = Source.REST if stream.endpoint == Endpoint.REST else Source.WS
            yield Message(stream.name, recv_ns, split[1], seq=lineno, source=source)

    def snapshots(self) -> list[Message]:
        """The bare REST snapshots, named once the file's symbols are known."""
        if not self._snapshots:
            return []
        symbol = _snapshot_symbol(self.path, self._depth_symbols, self._symbols)
        try:
            name = parse_stream(f"{symbol}@depthSnapshot").name
        except StreamNameError as exc:
            raise ArchiveError(f"{self.path}: {exc}") from exc
        return [Message(name, t, body, seq=n, source=Source.REST)
                for t, n, body in self._snapshots]


def read_capture(path: Path, fmt: ImportFormat = "auto", start_ns: int | None = None,
                 end_ns: int | None = None) -> tuple[dict[str, list[Message]], int, str]:
    """Parse a whole capture in memory: ``({stream: messages}, skipped_lines, format)``.

    Only frames received in ``[start_ns, end_ns)`` are kept.
    """
    cap = _Capture(path, fmt, start_ns, end_ns)
    by_stream: dict[str, list[Message]] = {}
    for m in [*cap.messages(), *cap.snapshots()]:
        by_stream.setdefault(m.stream, []).append(m)
    for msgs in by_stream.values():
        msgs.sort(key=lambda m: m.sort_key)
    return by_stream, cap.skipped, cap.fmt


def _check_free(root: Path, stream: str, first: int, last: int) -> None:
    base = root / layout.stream_dir(stream)
    if not base.is_dir():
        return
    for f in base.glob(f"date=*/*{layout.PARTITION_SUFFIX}"):
        rng = layout.parse_partition_name(f.name)
        if rng is not None and rng[0] <= last and first <= rng[1]:
            raise ArchiveError(f"{stream} already has data in {first}-{last} ({f.name}); "
                               "was this file imported before?")


class _Sink:
    """Writes one file's messages as sealed partitions, per stream, in bounded chunks."""

    def __init__(self, root: Path, src: Path, rotate_s: float) -> None:
        self.root, self.src = root, src
        self.config = WriterConfig(rotate_s=rotate_s)
        self.pending: dict[str, list[Message]] = {}
        self.count = 0
        self.last: dict[str, int] = {}
        self.result_paths: list[Path] = []
        self.messages: dict[str, int] = {}

    def add(self, m: Message) -> None:
        self.pending.setdefault(m.stream, []).append(m)
        self.count += 1
        if self.count >= CHUNK_MESSAGES:
            self.flush()

    def flush(self) -> None:
        for stream, msgs in sorted(self.pending.items()):
            msgs.sort(key=lambda m: m.sort_key)
            first, last = msgs[0].recv_ns, msgs[-1].recv_ns
            if stream in self.last and first < self.last[stream]:
                raise ArchiveError(f"{self.src}: {stream} frames are not in receive-time order "
                                   "across the file; sort it first")
            if stream not in self.last:
                _check_free(self.root, stream, first, last)
            self.result_paths.extend(write_partitions(self.root, stream, msgs, self.config))
            self.last[stream] = last
            self.messages[stream] = self.messages.get(stream, 0) + len(msgs)
        self.pending.clear()
        self.count = 0

    def rollback(self) -> None:
        for p in self.result_paths:
            p.unlink(missing_ok=True)
        self.result_paths.clear()


def import_file(archive: Path | str, path: Path | str, fmt: ImportFormat = "auto",
                start_ns: int | None = None, end_ns: int | None = None,
                rotate_s: float = 900.0) -> ImportResult:
    """Import one capture into ``archive`` as sealed partitions (rotated like live data).

    The file is streamed (at most :data:`CHUNK_MESSAGES` frames in memory; each chunk
    becomes partitions, which ``compact`` merges later). Raises
    :class:`~schemas.errors.ArchiveError` (one line) for an unreadable or malformed file, or
    when the archive already holds data of a stream in the file's time range; then every
    partition already written from this file is removed again.
    """
    root, src = Path(archive), Path(path)
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown import format {fmt!r}; use one of {', '.join(FORMATS)}")
    cap = _Capture(src, fmt, start_ns, end_ns)
    sink = _Sink(root, src, rotate_s)
    try:
        for m in cap.messages():
            if not sink.last and not sink.pending:
                root.mkdir(parents=True, exist_ok=True)
            sink.add(m)
        sink.flush()
        snaps = cap.snapshots()
        for m in snaps:
            sink.add(m)
        sink.flush()
    except BaseException:
        sink.rollback()
        raise
    if not sink.messages:
        raise ArchiveError(f"{src}: no market data frames found")
    return ImportResult(str(src), cap.fmt, dict(sink.messages), cap.skipped,
                        sorted(sink.result_paths))


__all__ = ["FORMATS", "ImportFormat", "ImportResult", "detect_format", "import_file",
           "parse_timestamp", "read_capture"]
