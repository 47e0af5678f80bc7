"""Archive reading, merge, pacing, the Binance wire server (replay and sim), order book, catalog."""

from replay._archive import BASE_COLUMNS, Archive, Partition
from replay._book import BookState, OrderBook
from replay._book_check import BookCheck, check_book_tickers
from replay._hash import ContentHasher, HashingHandler
from replay._merge import merge_archive, merge_runs
from replay._pacer import Pacer, PacerStats
from replay._replayer import Replayer, ReplayStats
from replay._times import format_ns, parse_time


def __getattr__(name: str) -> object:
    # ArchiveSource pulls in the wire server and the sim's instruments: imported on first use.
    if name == "ArchiveSource":
        from replay._archive_source import ArchiveSource

        return ArchiveSource
    raise AttributeError(f"module 'replay' has no attribute {name!r}")


__all__ = [
    "BASE_COLUMNS",
    "Archive",
    "ArchiveSource",
    "BookCheck",
    "BookState",
    "ContentHasher",
    "HashingHandler",
    "OrderBook",
    "Pacer",
    "PacerStats",
    "Partition",
    "ReplayStats",
    "Replayer",
    "check_book_tickers",
    "format_ns",
    "merge_archive",
    "merge_runs",
    "parse_time",
]
