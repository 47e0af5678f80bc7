"""Binance's text layout of each formatted table (used by :mod:`schemas.formatters`).

Key order of each event type, from the live captures in tests/data and the BINANCE.md
section 3 examples. ``$col`` is a typed column, ``$prices&qtys`` a ``[["price","qty"],..]``
level list, ``<?..?>`` a group written only when all its columns are non-null (keys Binance
added later: ``nq``, ``st``, ``ps``). A table may list several variants (older key orders).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from schemas._columns import F64, Col

_ST = '<?,"st":$st?>'
_ST_PS = _ST + '<?,"ps":$ps?>'
_KLINE_K = ('"i":$interval,"f":$F,"L":$L,"o":$open,"c":$close,"h":$high,"l":$low,'
            '"v":$volume,"n":$trades,"x":$is_closed,"q":$quote_volume,"V":$taker_buy_volume,'
            '"Q":$taker_buy_quote_volume,"B":"0"}')
TEMPLATES: dict[str, tuple[str, ...]] = {
    "agg_trades": (
        '{"e":"aggTrade","E":$event_time_ns,"a":$agg_trade_id,"s":$symbol,"p":$price,'
        '"q":$qty<?,"nq":$non_rpi_qty?>,"f":$first_trade_id,"l":$last_trade_id,'
        '"T":$trade_time_ns,"m":$is_buyer_maker' + _ST_PS + "}",
        # REST GET /fapi/v1/aggTrades rows (BINANCE.md section 6): no e/E/s.
        '{"a":$agg_trade_id,"p":$price,"q":$qty<?,"nq":$non_rpi_qty?>,"f":$first_trade_id,'
        '"l":$last_trade_id,"T":$trade_time_ns,"m":$is_buyer_maker}',
    ),
    "trades": (
        '{"e":"trade","E":$event_time_ns,"T":$trade_time_ns,"s":$symbol,"t":$trade_id,'
        '"p":$price,"q":$qty,"X":$order_type,"m":$is_buyer_maker' + _ST_PS + "}",
    ),
    "mark_prices": (
        '{"e":"markPriceUpdate","E":$event_time_ns,"s":$symbol,"p":$mark_price'
        '<?,"ap":$mark_price_avg?>,"P":$estimated_settle_price,"i":$index_price,'
        '"r":$funding_rate,"T":$next_funding_time_ns' + _ST_PS + "}",
        '{"e":"markPriceUpdate","E":$event_time_ns,"s":$symbol,"p":$mark_price,'
        '"i":$index_price,"P":$estimated_settle_price,"r":$funding_rate,'
        '"T":$next_funding_time_ns' + _ST_PS + "}",
    ),
    "klines": (
        '{"e":"kline","E":$event_time_ns,"s":$symbol,"k":{"t":$open_time_ns,'
        '"T":$close_time_ns,"s":$symbol,'
        + _KLINE_K.replace("$F", "$first_trade_id").replace("$L", "$last_trade_id")
        + _ST_PS + "}",
    ),
    "continuous_klines": (
        '{"e":"continuous_kline","E":$event_time_ns,"ps":$symbol,"ct":$contract_type,'
        '"k":{"t":$open_time_ns,"T":$close_time_ns,'
        + _KLINE_K.replace("$F", "$first_update_id").replace("$L", "$last_update_id")
        + _ST + "}",
    ),
    "mini_tickers": (
        '{"e":"24hrMiniTicker","E":$event_time_ns,"s":$symbol,"c":$close,"o":$open,'
        '"h":$high,"l":$low,"v":$volume,"q":$quote_volume' + _ST_PS + "}",
    ),
    "tickers": (
        '{"e":"24hrTicker","E":$event_time_ns,"s":$symbol,"p":$price_change,'
        '"P":$price_change_pct,"w":$weighted_avg_price,"c":$close,"Q":$last_qty,"o":$open,'
        '"h":$high,"l":$low,"v":$volume,"q":$quote_volume,"O":$open_time_ns,'
        '"C":$close_time_ns,"F":$first_trade_id,"L":$last_trade_id,"n":$trade_count'
        + _ST_PS + "}",
    ),
    "book_tickers": (
        '{"e":"bookTicker","u":$update_id,"s":$symbol,"b":$bid_price,"B":$bid_qty,'
        '"a":$ask_price,"A":$ask_qty,"T":$transaction_time_ns,"E":$event_time_ns'
        + _ST_PS + "}",
    ),
    "liquidations": (
        '{"e":"forceOrder","E":$event_time_ns,"o":{"s":$symbol,"S":$side,"o":$order_type,'
        '"f":$time_in_force,"q":$qty,"p":$price,"ap":$avg_price,"X":$order_status,'
        '"l":$last_filled_qty,"z":$cum_filled_qty,"T":$trade_time_ns<?,"ps":$ps?>'
        + _ST + "}}",
    ),
    "depth_updates": (
        '{"e":"depthUpdate","E":$event_time_ns,"T":$transaction_time_ns,"s":$symbol,'
        '"U":$first_update_id,"u":$final_update_id,"pu":$prev_final_update_id,'
        '"b":$bid_prices&bid_qtys,"a":$ask_prices&ask_qtys' + _ST_PS + "}",
    ),
    "depth_snapshots": (
        '{"lastUpdateId":$last_update_id,"E":$event_time_ns,"T":$transaction_time_ns,'
        '"bids":$bid_prices&bid_qtys,"asks":$ask_prices&ask_qtys}',
    ),
}

_TOKEN_RE = re.compile(r"<\?|\?>|\$[a-z_0-9]+(?:&[a-z_0-9]+)?")


@dataclass(frozen=True, slots=True)
class Field:
    """One ``$col`` of a template, or a ``$prices&qtys`` level list (two columns)."""

    cols: tuple[Col, ...]  # one column, or (prices, qtys) for a level list
    slots: tuple[int, ...]  # decimal-place slot of each F64 column, else -1


Part = str | Field | list[Any]
"""A compiled template piece: literal text, a field, or an optional group (a list of parts)."""


def compile_template(template: str, cols: dict[str, Col], slots: dict[str, int]) -> list[Part]:
    """Split a template into literals, fields and optional groups; number the F64 slots.

    ``slots`` maps each F64 column name to its decimal-place slot; it is shared by all the
    variants of a table (filled in first-seen order) so that one ``raw_fmt`` layout fits all.
    """
    stack: list[list[Part]] = [[]]
    pos = 0
    for m in _TOKEN_RE.finditer(template):
        if m.start() > pos:
            stack[-1].append(template[pos:m.start()])
        token = m.group()
        if token == "<?":
            stack.append([])
        elif token == "?>":
            group = stack.pop()
            stack[-1].append(group)
        else:
            names = token[1:].split("&")
            for n in names:
                if cols[n].kind == F64:
                    slots.setdefault(n, len(slots))
            stack[-1].append(Field(tuple(cols[n] for n in names),
                                   tuple(slots.get(n, -1) for n in names)))
        pos = m.end()
    stack[-1].append(template[pos:])
    assert len(stack) == 1, template
    return stack[0]


__all__ = ["TEMPLATES", "Field", "Part", "compile_template"]
