"""Binance websocket control messages as a pure state machine (BINANCE.md section 2).

Feed it each inbound text frame; it returns the exact reply text and whether the subscription
list changed. No sockets, no clocks: the server applies routing and rate limits around it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from replay.wire.routing import canonical_entry

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
MAX_STREAMS = 1024
"""Binance: 1024 streams per connection (BINANCE.md section 2)."""

# Binance error codes (section 2): 0 unknown property, 1 bad value type, 2 invalid request,
# 3 invalid JSON.
UNKNOWN_PROPERTY = 0
INVALID_VALUE = 1
INVALID_REQUEST = 2
INVALID_JSON = 3


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def result_reply(result: Any, req_id: Any) -> str:
    """``{"result":<result>,"id":<id>}`` with the id echoed unchanged."""
    return _dumps({"result": result, "id": req_id})


def error_reply(code: int, msg: str, req_id: Any) -> str:
    """``{"error":{"code":C,"msg":"..."},"id":N}`` (``id`` null if the request was unparseable)."""
    return _dumps({"error": {"code": code, "msg": msg}, "id": req_id})


class ControlError(Exception):
    """A request Binance would answer with an error object."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass(slots=True)
class Reply:
    """The outcome of one control message."""

    text: str
    subscriptions_changed: bool = False


@dataclass(slots=True)
class ControlState:
    """Subscription list and properties of one connection.

    ``subscriptions`` keeps SUBSCRIBE order, including entries that will never flow (wrong
    route, unknown stream): Binance acknowledges those too. ``max_streams`` caps the list.
    """

    subscriptions: dict[str, None] = field(default_factory=dict)
    combined: bool = False
    max_streams: int = MAX_STREAMS
    sorted_listing: bool = False
    """``/private`` lists its ``<key>@<EVENT>`` entries sorted (BINANCE.md section 2)."""

    def handle(self, text: str) -> Reply:
        """Answer one inbound text frame exactly as Binance does."""
        try:
            request = json.loads(text)
        except json.JSONDecodeError as exc:
            return Reply(error_reply(
                INVALID_JSON,
                f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}", None))
        req_id = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict):
                raise ControlError(INVALID_REQUEST,
                                   "Invalid request: expected a JSON object")
            _check_id(request)
            return self._dispatch(request, req_id)
        except ControlError as exc:
            bad_id = isinstance(req_id, bool) or not isinstance(req_id, int | str | None) or (
                isinstance(req_id, int) and req_id < 0)
            return Reply(error_reply(exc.code, exc.msg, None if bad_id else req_id))

    def _dispatch(self, request: dict[str, Any], req_id: Any) -> Reply:
        method = request.get("method")
        if method is None:
            raise ControlError(INVALID_REQUEST, "Invalid request: missing field `method`")
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            raise ControlError(INVALID_REQUEST,
                               f"Invalid request: unknown variant `{method}`, "
                               f"expected one of {expected}")
        params = request.get("params", [])
        if not isinstance(params, list):
            raise ControlError(INVALID_REQUEST, "Invalid request: params must be an array")
        if method == "SUBSCRIBE":
            return self._subscribe(params, req_id)
        if method == "UNSUBSCRIBE":
            return self._unsubscribe(params, req_id)
        if method == "LIST_SUBSCRIPTIONS":
            listing = list(self.subscriptions)
            return Reply(result_reply(sorted(listing) if self.sorted_listing else listing,
                                      req_id))
        if method == "SET_PROPERTY":
            if len(params) > 2:
                raise ControlError(INVALID_REQUEST, "Invalid request: too many parameters")
            _property_name(params)
            value = params[1] if len(params) > 1 else None
            if not isinstance(value, bool):
                raise ControlError(INVALID_VALUE, "Invalid value type: expected Boolean")
            self.combined = value
            return Reply(result_reply(None, req_id))
        if len(params) > 1:
            raise ControlError(INVALID_REQUEST, "Invalid request: too many parameters")
        _property_name(params)
        return Reply(result_reply(self.combined, req_id))

    def _subscribe(self, params: list[Any], req_id: Any) -> Reply:
        names = _stream_params(params)
        fresh = [n for n in dict.fromkeys(canonical_entry(p) for p in names)
                 if n not in self.subscriptions]
        if len(self.subscriptions) + len(fresh) > self.max_streams:
            raise ControlError(INVALID_REQUEST,
                               f"Invalid request: too many streams (max {self.max_streams})")
        for name in fresh:
            self.subscriptions[name] = None
        return Reply(result_reply(None, req_id), bool(fresh))

    def _unsubscribe(self, params: list[Any], req_id: Any) -> Reply:
        changed = False
        for name in _stream_params(params):
            if self.subscriptions.pop(canonical_entry(name), 0) is None:
                changed = True
        return Reply(result_reply(None, req_id), changed)


def _check_id(request: dict[str, Any]) -> None:
    # Docs: unsigned integer; the official SDK sends UUID strings, so strings pass too.
    req_id = request.get("id")
    if req_id is None or isinstance(req_id, str):
        return
    if isinstance(req_id, bool) or not isinstance(req_id, int) or req_id < 0:
        raise ControlError(INVALID_REQUEST,
                           "Invalid request: request ID must be an unsigned integer")


def _property_name(params: list[Any]) -> str:
    name = params[0] if params else None
    if not isinstance(name, str):
        raise ControlError(INVALID_REQUEST, "Invalid request: property name must be a string")
    if name != "combined":
        raise ControlError(UNKNOWN_PROPERTY, "Unknown property")
    return name


def _stream_params(params: list[Any]) -> list[str]:
    if not all(isinstance(p, str) for p in params):
        raise ControlError(INVALID_REQUEST, "Invalid request: stream names must be strings")
    return [str(p) for p in params]


__all__ = [
    "INVALID_JSON",
    "INVALID_REQUEST",
    "INVALID_VALUE",
    "MAX_STREAMS",
    "METHODS",
    "UNKNOWN_PROPERTY",
    "ControlError",
    "ControlState",
    "Reply",
    "error_reply",
    "result_reply",
]
