"""ticktape: a market-data recorder and replay archive for Binance USD-M futures.

The public API is re-exported here; ``schemas``, ``recorder`` and ``replay`` are the import
packages that implement it.
"""

from recorder import Recorder, RecorderConfig, load_config
from replay import Archive, HashingHandler, OrderBook, Replayer
from replay._catalog import connect
from replay.sim import SimConfig, SimExchange
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
    "Archive",
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
    "HashingHandler",
    "Message",
    "OrderBook",
    "QueryError",
    "Recorder",
    "RecorderConfig",
    "Replayer",
    "SimConfig",
    "SimExchange",
    "Source",
    "StreamName",
    "StreamNameError",
    "TicktapeError",
    "__version__",
    "as_handler",
    "connect",
    "load_config",
    "parse_stream",
]
