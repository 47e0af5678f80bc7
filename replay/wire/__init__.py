"""The Binance USD-M wire-protocol server shared by ``ticktape sim`` and ``ticktape serve``.

The server (:class:`WireServer`) speaks websocket + REST; a :class:`FrameSource` feeds it
(DESIGN.md: one server, two sources). :class:`SendLog` records every frame it sent.
"""

from replay.wire.connection import ConnLimits
from replay.wire.exchange_info import symbol_entry
from replay.wire.routing import RoutingMode
from replay.wire.sendlog import SendLog, SentFrame, SentKind
from replay.wire.server import WireConfig, WireServer
from replay.wire.source import (
    Action,
    Close,
    Drop,
    Frame,
    FrameSource,
    Item,
    QueryRefusal,
    RawFrame,
    Route,
    Session,
    SessionQueryCheck,
    Stall,
)

__all__ = [
    "Action",
    "Close",
    "ConnLimits",
    "Drop",
    "Frame",
    "FrameSource",
    "Item",
    "QueryRefusal",
    "RawFrame",
    "Route",
    "RoutingMode",
    "SendLog",
    "SentFrame",
    "SentKind",
    "Session",
    "SessionQueryCheck",
    "Stall",
    "WireConfig",
    "WireServer",
    "symbol_entry",
]
