"""Pure (sans-I/O) definitions shared by the recorder and the replay side.

What a message, a gap, a stream and a stored table are; no sockets, no files.
"""

from schemas.errors import (
    ArchiveError,
    ConfigError,
    CorruptDataError,
    ExchangeError,
    FatalExchangeError,
    QueryError,
    StreamNameError,
    TicktapeError,
)
from schemas.handler import CallableHandler, Handler, HandlerLike, as_handler, deliver
from schemas.message import WILDCARD_STREAM, Event, Gap, GapKind, Message, Source
from schemas.streams import Endpoint, StreamName, canonical, parse_stream, parse_stream_list
from schemas.wire import make_envelope, split_envelope

__all__ = [
    "WILDCARD_STREAM",
    "ArchiveError",
    "CallableHandler",
    "ConfigError",
    "CorruptDataError",
    "Endpoint",
    "Event",
    "ExchangeError",
    "FatalExchangeError",
    "Gap",
    "GapKind",
    "Handler",
    "HandlerLike",
    "Message",
    "QueryError",
    "Source",
    "StreamName",
    "StreamNameError",
    "TicktapeError",
    "as_handler",
    "canonical",
    "deliver",
    "make_envelope",
    "parse_stream",
    "parse_stream_list",
    "split_envelope",
]
