"""Byte-exact handling of Binance's combined-stream envelope (BINANCE.md section 1).

Combined mode wraps each payload as ``{"stream":"<name>","data":<payload>}``. ticktape stores
the payload text exactly as it stood inside the envelope, so the frame is rebuilt byte for byte
by :func:`make_envelope`.
"""

from __future__ import annotations

import orjson

_PREFIX = '{"stream":"'
_MIDDLE = '","data":'


def make_envelope(stream: str, payload: str) -> str:
    """Wrap ``payload`` the way Binance's ``/stream`` endpoints do."""
    return f'{_PREFIX}{stream}{_MIDDLE}{payload}}}'


def split_envelope(frame: str) -> tuple[str, str] | None:
    """Return ``(stream, payload_text)`` of a combined frame, or ``None`` if not enveloped.

    The fast path slices the exact payload bytes out of Binance's fixed key order. A frame in
    another key order is decoded and the payload re-encoded compactly (the only case where the
    stored text is not the received substring; the sim and Binance never send it).
    """
    if frame.startswith(_PREFIX):
        end = frame.find('"', len(_PREFIX))
        if end > 0 and frame.startswith(_MIDDLE, end) and frame.endswith("}"):
            return frame[len(_PREFIX):end], frame[end + len(_MIDDLE):-1]
    if not frame.startswith("{") or '"stream"' not in frame:
        return None
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("stream"), str) and "data" in obj:
        return obj["stream"], orjson.dumps(obj["data"]).decode()
    return None


__all__ = ["make_envelope", "split_envelope"]
