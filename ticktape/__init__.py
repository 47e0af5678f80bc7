"""ticktape: a market-data recorder and replay archive for Binance USD-M futures.

The public API is re-exported here; ``schemas``, ``recorder`` and ``replay`` are the import
packages that implement it.
"""

from schemas import (
    ArchiveError,
    ConfigError,
    CorruptDataError,
    Endpoint,
    Event,
    ExchangeError,
    FatalExchangeError,
    Gap,
    GapKind,
    Handler,
    HandlerLike,
    Message,
    QueryError,
    Source,
    StreamName,
    StreamNameError,
    TicktapeError,
    as_handler,
    parse_stream,
)
from ticktape._version import __version__

__all__ = [
    "ArchiveError",
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
    "__version__",
    "as_handler",
    "parse_stream",
]
