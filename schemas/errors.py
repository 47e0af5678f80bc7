"""The one exception tree of ticktape.

Every error a caller can act on derives from :class:`TicktapeError`; third-party exceptions
(aiohttp, pyarrow, duckdb, OSError) are mapped to these at the module boundary so that callers
catch ours. The CLI prints ``str(exc)`` of a ``TicktapeError`` as one line and exits non-zero.

Tree::

    TicktapeError
    ├── StreamNameError      bad stream name (also a ValueError)
    ├── ConfigError          bad option, config file or environment
    ├── ExchangeError        websocket / REST failure talking to an exchange
    │   └── FatalExchangeError   not worth retrying (bad stream, auth)
    ├── ArchiveError         archive unreadable, unwritable or inconsistent
    │   └── CorruptDataError     a partition or journal segment fails its checks
    └── QueryError           bad SQL or a failed query
"""

from __future__ import annotations


class TicktapeError(Exception):
    """Base class of every error ticktape raises on purpose."""


class StreamNameError(TicktapeError, ValueError):
    """A stream name does not match any Binance USD-M stream form."""


class ConfigError(TicktapeError):
    """An option, a config file or an environment variable is invalid."""


class ExchangeError(TicktapeError):
    """Talking to the exchange (or a compatible server) failed; usually retryable."""


class FatalExchangeError(ExchangeError):
    """The exchange rejected us in a way that retrying cannot fix."""


class ArchiveError(TicktapeError):
    """The archive cannot be read or written as asked."""


class CorruptDataError(ArchiveError):
    """A stored file fails its integrity checks."""


class QueryError(TicktapeError):
    """A SQL query failed."""


__all__ = [
    "ArchiveError",
    "ConfigError",
    "CorruptDataError",
    "ExchangeError",
    "FatalExchangeError",
    "QueryError",
    "StreamNameError",
    "TicktapeError",
]
