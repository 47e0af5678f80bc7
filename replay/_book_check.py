"""Check a rebuilt :class:`~replay._book.OrderBook` against recorded ``bookTicker`` frames.

A ``bookTicker`` carries the book update id ``u`` it reflects (BINANCE.md section 3); after
applying the diff event whose final update id is the same ``u``, the local book's best bid
and ask must equal the ticker's ``b``/``B``/``a``/``A``. The two streams arrive on separate
subscriptions in either order, so tops are matched by update id, not by arrival.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from replay._book import Level, OrderBook
from schemas.message import Message
from schemas.streams import parse_stream

Top = tuple[Level | None, Level | None]


@dataclass(slots=True)
class Mismatch:
    """One comparable pair that disagreed."""

    update_id: int
    book: Top
    ticker: Top


@dataclass(slots=True)
class BookCheck:
    """Outcome of :func:`check_book_tickers`."""

    diffs_applied: int = 0
    tickers: int = 0
    comparable: int = 0
    """Tickers whose ``u`` equals the ``u`` of a diff applied while the book was live."""
    matched: int = 0
    resyncs: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def share(self) -> float:
        """``matched / comparable`` (1.0 when nothing was comparable)."""
        return self.matched / self.comparable if self.comparable else 1.0


def check_book_tickers(
    messages: Iterable[Message], symbol: str, keep_mismatches: int = 20
) -> BookCheck:
    """Rebuild ``symbol``'s book from ``messages`` and compare it with its ``bookTicker``."""
    book = OrderBook(symbol)
    tops: dict[int, Top] = {}
    tickers: dict[int, Top] = {}
    result = BookCheck()
    want = symbol.upper()
    for msg in messages:
        stream = parse_stream(msg.stream)
        if stream.symbol != want:
            continue
        if stream.channel == "bookTicker":
            data = msg.data
            tickers[int(data["u"])] = (
                (Decimal(data["b"]), Decimal(data["B"])),
                (Decimal(data["a"]), Decimal(data["A"])),
            )
        elif book.on_message(msg) and stream.channel == "depth":
            assert book.last_update_id is not None
            tops[book.last_update_id] = (book.best_bid(), book.best_ask())
    result.diffs_applied = book.applied
    result.resyncs = book.resyncs
    result.tickers = len(tickers)
    for update_id, ticker in sorted(tickers.items()):
        top = tops.get(update_id)
        if top is None:
            continue
        result.comparable += 1
        if top == ticker:
            result.matched += 1
        elif len(result.mismatches) < keep_mismatches:
            result.mismatches.append(Mismatch(update_id, top, ticker))
    return result


__all__ = ["BookCheck", "Mismatch", "check_book_tickers"]
