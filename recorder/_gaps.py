"""Pure gap detection: fed messages and connection events, returns :class:`Gap` records.

No I/O and no asyncio: the connection layer calls :meth:`GapDetector.on_disconnect` when a
socket goes down and :meth:`GapDetector.on_message` for every frame (after de-duplication of
make-before-break overlaps); both return the gaps they close. Kinds detected here:

* ``sequence``: a diff-depth ``pu`` that is not the previous ``u`` (BINANCE.md section 4
  rule 5), or an aggTrade ``a`` that skips ids (BINANCE.md section 6). The aggTrade detail
  names the first missing id and the count (``aggTrade ids missing: first=<a> count=<n>``,
  parsed by :func:`agg_hole`) so repair can ask REST for ``fromId=<a>``.
* ``disconnect``: from the instant a connection went down to each of its streams' first
  message after the reconnect.
* ``silence``: a stream with a known cadence quiet for longer than ``cadence x factor``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.errors import StreamNameError
from schemas.message import Gap, GapKind, Message
from schemas.streams import parse_stream

_NS_PER_MS = 1_000_000
_OTHER, _DEPTH, _AGG = 0, 1, 2
_AGG_DETAIL_RE = re.compile(r"aggTrade ids missing: first=(\d+) count=(\d+)")


def agg_hole(gap: Gap) -> tuple[int, int] | None:
    """``(first_missing_id, count)`` of an aggTrade sequence gap, else ``None``."""
    if gap.kind is not GapKind.SEQUENCE:
        return None
    m = _AGG_DETAIL_RE.search(gap.detail)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True, slots=True)
class GapDetectorConfig:
    """``silence_factor`` x a stream's cadence (at least ``min_silence_ms``) is silence."""

    silence_factor: float = 5.0
    min_silence_ms: int = 2000
    detect_silence: bool = True


class _State:
    __slots__ = ("down_detail", "down_since", "kind", "last_id", "last_ns", "silence_ns")

    def __init__(self, kind: int, silence_ns: int | None) -> None:
        self.kind = kind
        self.silence_ns = silence_ns
        self.last_ns: int | None = None
        self.last_id: int | None = None
        self.down_since: int | None = None
        self.down_detail = ""


class GapDetector:
    """Per-stream sequence, silence and disconnect state; one instance per recorder."""

    def __init__(self, config: GapDetectorConfig | None = None) -> None:
        self.config = config or GapDetectorConfig()
        self._states: dict[str, _State] = {}

    def _state(self, stream: str) -> _State:
        st = self._states.get(stream)
        if st is None:
            st = self._states[stream] = self._new_state(stream)
        return st

    def _new_state(self, stream: str) -> _State:
        try:
            name = parse_stream(stream)
        except StreamNameError:
            return _State(_OTHER, None)
        kind = _DEPTH if name.is_diff_depth else _AGG if name.channel == "aggTrade" else _OTHER
        silence: int | None = None
        if self.config.detect_silence and name.cadence_ms:
            ms = max(name.cadence_ms * self.config.silence_factor, self.config.min_silence_ms)
            silence = int(ms * _NS_PER_MS)
        return _State(kind, silence)

    def seed(self, msg: Message) -> None:
        """Take ``msg`` as the last one seen on its stream without reporting anything.

        Used on restart with the last journaled message per stream, so that an aggTrade id
        hole spanning the downtime is still reported (and repaired) as a sequence gap.
        """
        st = self._state(msg.stream)
        st.last_ns = msg.recv_ns
        if st.kind == _AGG:
            st.last_id = _field(msg, '"a":', "a")
        elif st.kind == _DEPTH:
            st.last_id = None  # a restart is a resync (BINANCE.md section 4 rule 5)

    def on_disconnect(self, streams: Iterable[str], at_ns: int, detail: str = "") -> None:
        """Mark ``streams`` down from ``at_ns``; each one's gap closes at its next message."""
        for stream in streams:
            st = self._state(stream)
            if st.down_since is None:
                st.down_since = at_ns
                st.down_detail = detail
            if st.kind == _DEPTH:
                # BINANCE.md section 4 rule 5: any reconnect means a resync, so the first
                # depth event of the new connection is not compared with the old chain.
                st.last_id = None

    def on_message(self, msg: Message) -> list[Gap]:
        """Update the state of ``msg.stream``; return the gaps that ``msg`` closes."""
        st = self._states.get(msg.stream)
        if st is None:
            st = self._state(msg.stream)
        gaps: list[Gap] = []
        now = msg.recv_ns
        if st.down_since is not None:
            detail = st.down_detail or "connection down"
            gaps.append(Gap(msg.stream, st.down_since, now, GapKind.DISCONNECT, detail))
            st.down_since = None
            st.down_detail = ""
        elif st.silence_ns is not None and st.last_ns is not None \
                and now - st.last_ns > st.silence_ns:
            quiet = (now - st.last_ns) / 1e9
            gaps.append(Gap(msg.stream, st.last_ns, now, GapKind.SILENCE,
                            f"silent {quiet:.1f}s, limit {st.silence_ns / 1e9:.1f}s"))
        if st.kind == _AGG:
            self._check_agg(msg, st, gaps)
        elif st.kind == _DEPTH:
            self._check_depth(msg, st, gaps)
        st.last_ns = now
        return gaps

    def on_batch(self, msgs: Iterable[Message]) -> list[Gap]:
        """:meth:`on_message` for each of ``msgs`` in order; the gaps they close, in order.

        A message of a stream without a sequence (not aggTrade or diff depth) that is neither
        the first after a disconnect nor past its silence limit only moves the stream's clock:
        that common case is handled here without the per-message call.
        """
        states = self._states
        gaps: list[Gap] = []
        one = self.on_message
        for m in msgs:
            st = states.get(m.stream)
            if st is not None and st.kind == _OTHER and st.down_since is None:
                last, limit = st.last_ns, st.silence_ns
                if limit is None or last is None or m.recv_ns - last <= limit:
                    st.last_ns = m.recv_ns
                    continue
            found = one(m)
            if found:
                gaps.extend(found)
        return gaps

    def _check_agg(self, msg: Message, st: _State, gaps: list[Gap]) -> None:
        # BINANCE.md section 6: per symbol `a` rises by 1 per aggregate; a jump is a hole.
        a = _field(msg, '"a":', "a")
        if a is None:
            return
        last = st.last_id
        if last is not None and a <= last:
            return  # a replayed or duplicate aggregate: not new, not a hole
        if last is not None and a > last + 1:
            start = st.last_ns if st.last_ns is not None else msg.recv_ns
            gaps.append(Gap(msg.stream, start, msg.recv_ns, GapKind.SEQUENCE,
                            f"aggTrade ids missing: first={last + 1} count={a - last - 1}"))
        st.last_id = a

    def _check_depth(self, msg: Message, st: _State, gaps: list[Gap]) -> None:
        # BINANCE.md section 4 rule 5: each `pu` must equal the previous `u`.
        u = _field(msg, '"u":', "u")
        if u is None:
            return
        last = st.last_id
        if last is not None:
            if u <= last:
                return  # already seen (overlap of two connections)
            pu = _field(msg, '"pu":', "pu")
            if pu != last:
                start = st.last_ns if st.last_ns is not None else msg.recv_ns
                gaps.append(Gap(msg.stream, start, msg.recv_ns, GapKind.SEQUENCE,
                                f"depth pu {pu} != previous u {last}"))
        st.last_id = u

    def silent(self, now_ns: int) -> list[str]:
        """Streams (not down) whose silence limit has passed at ``now_ns``, for status/metrics."""
        return [s for s, st in self._states.items()
                if st.down_since is None and st.silence_ns is not None and st.last_ns is not None
                and now_ns - st.last_ns > st.silence_ns]

    def finish(self, now_ns: int) -> list[Gap]:
        """Close every open disconnect and silence interval at ``now_ns`` (on shutdown)."""
        gaps: list[Gap] = []
        for stream, st in self._states.items():
            if st.down_since is not None:
                gaps.append(Gap(stream, st.down_since, now_ns, GapKind.DISCONNECT,
                                st.down_detail or "connection down at shutdown"))
                st.down_since = None
            elif st.silence_ns is not None and st.last_ns is not None \
                    and now_ns - st.last_ns > st.silence_ns:
                gaps.append(Gap(stream, st.last_ns, now_ns, GapKind.SILENCE,
                                f"silent {(now_ns - st.last_ns) / 1e9:.1f}s until shutdown"))
            st.last_ns = max(st.last_ns or now_ns, now_ns)
        return gaps


def _scan_int(raw: str, needle: str) -> int | None:
    """The integer value of top-level key ``needle`` (``'"a":'``) in ``raw``, found by text.

    ``None`` means "cannot tell cheaply" (the caller then decodes the payload). Accepted only
    when the answer is the one a full decode gives: an object whose one and only occurrence
    of the key comes before any nested object or array (so it is top level, the last and
    only duplicate), preceded by ``{`` or ``,`` (so it is a key, not inside a string) and
    followed by plain digits ending at ``,`` or ``}`` (an int, not a float, bool or string).
    Binance's payloads (BINANCE.md sections 4 and 6: ``a``, ``u``, ``pu`` come before the
    ``b``/``a`` level arrays) always take this path.
    """
    i = raw.find(needle)
    if i <= 0 or raw[i - 1] not in "{," or raw[0] != "{" or raw[-1] != "}":
        return None
    start = i + len(needle)
    k = raw.find(",", start)
    if k < 0:
        k = len(raw) - 1
    text = raw[start:k]
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or (len(digits) > 1 and digits[0] == "0"):
        return None
    if raw.find("{", 1, i) >= 0 or raw.find("[", 1, i) >= 0 or raw.find(needle, k) >= 0:
        return None
    return int(text)


def _field(msg: Message, needle: str, key: str) -> int | None:
    """Top-level integer ``key`` of ``msg``'s payload (text scan, else a full decode)."""
    if msg._data is None:
        value = _scan_int(msg.raw, needle)
        if value is not None:
            return value
    return _int_field(_data(msg), key)


def _data(msg: Message) -> Any:
    try:
        return msg.data
    except ValueError:  # a malformed frame: stored raw, never chained
        return None


def _int_field(data: Any, key: str) -> int | None:
    if isinstance(data, dict):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


__all__ = ["GapDetector", "GapDetectorConfig", "agg_hole"]
