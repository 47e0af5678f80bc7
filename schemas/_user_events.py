"""User-data events (BINANCE.md section 5) flattened into one ``user_events`` table.

Every event fills ``event_type``, ``event_time_ns`` and, where present,
``transaction_time_ns``; the other columns are filled by the events that carry them and are
null otherwise. Events of an unknown type keep only those first columns (``raw`` has the rest).
The ``listenKey`` of ``listenKeyExpired`` is deliberately not a column (it is a secret).
"""

from __future__ import annotations

from typing import Any

from schemas._columns import BOOL, F64, I64, NS, STR, Col

USER_EVENT_COLUMNS: tuple[Col, ...] = (
    Col("event_type", STR, "e"),
    Col("event_time_ns", NS, "E"),
    Col("transaction_time_ns", NS, "T"),
    Col("symbol", STR, "s"),
    # ORDER_TRADE_UPDATE `o` and TRADE_LITE
    Col("client_order_id", STR, "c"),
    Col("side", STR, "S"),
    Col("order_type", STR, "o"),
    Col("time_in_force", STR, "f"),
    Col("orig_qty", F64, "q"),
    Col("price", F64, "p"),
    Col("avg_price", F64, "ap"),
    Col("stop_price", F64, "sp"),
    Col("execution_type", STR, "x"),
    Col("order_status", STR, "X"),
    Col("order_id", I64, "i"),
    Col("last_filled_qty", F64, "l"),
    Col("cum_filled_qty", F64, "z"),
    Col("last_filled_price", F64, "L"),
    Col("commission_asset", STR, "N"),
    Col("commission", F64, "n"),
    Col("order_trade_time_ns", NS, "o.T"),
    Col("trade_id", I64, "t"),
    Col("is_maker", BOOL, "m"),
    Col("is_reduce_only", BOOL, "R"),
    Col("position_side", STR, "ps"),
    Col("realized_profit", F64, "rp"),
    # ACCOUNT_UPDATE `a`: m = reason, B = balances, P = positions
    Col("reason", STR, "m"),
    Col("balance_assets", STR, "B", "a"),
    Col("balance_wallet", F64, "B", "wb"),
    Col("balance_cross_wallet", F64, "B", "cw"),
    Col("balance_change", F64, "B", "bc"),
    Col("position_symbols", STR, "P", "s"),
    Col("position_sides", STR, "P", "ps"),
    Col("position_amounts", F64, "P", "pa"),
    Col("position_entry_prices", F64, "P", "ep"),
    Col("position_unrealized_pnl", F64, "P", "up"),
    Col("position_margin_types", STR, "P", "mt"),
    # MARGIN_CALL
    Col("cross_wallet_balance", F64, "cw"),
    # ACCOUNT_CONFIG_UPDATE: ac = {s, l} leverage, ai = {j} multi-assets mode
    Col("leverage", I64, "l"),
    Col("multi_assets_mode", BOOL, "j"),
)

_INDEX = {c.name: i for i, c in enumerate(USER_EVENT_COLUMNS)}
_WIDTH = len(USER_EVENT_COLUMNS)
_ORDER_COLS = (
    "client_order_id", "side", "order_type", "time_in_force", "orig_qty", "price", "avg_price",
    "stop_price", "execution_type", "order_status", "order_id", "last_filled_qty",
    "cum_filled_qty", "last_filled_price", "commission_asset", "commission", "trade_id",
    "is_maker", "is_reduce_only", "position_side", "realized_profit",
)
_LITE_COLS = ("symbol", "orig_qty", "price", "is_maker", "client_order_id", "side",
              "last_filled_price", "last_filled_qty", "trade_id", "order_id")
_BALANCE_COLS = ("balance_assets", "balance_wallet", "balance_cross_wallet", "balance_change")
_POSITION_COLS = ("position_symbols", "position_sides", "position_amounts",
                  "position_entry_prices", "position_unrealized_pnl", "position_margin_types")
_MARGIN_POSITION_COLS = ("position_symbols", "position_sides", "position_amounts",
                         "position_unrealized_pnl", "position_margin_types")


def _obj(v: Any) -> dict[str, Any]:
    return v if v.__class__ is dict else {}


def _fill(row: list[Any], src: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        row[_INDEX[name]] = src.get(USER_EVENT_COLUMNS[_INDEX[name]].path)


def extract_user_event(d: Any) -> tuple[Any, ...]:
    """Raw JSON values of one user-data event in :data:`USER_EVENT_COLUMNS` order."""
    row: list[Any] = [None] * _WIDTH
    e = d.get("e")
    row[0], row[1], row[2] = e, d.get("E"), d.get("T")
    if e == "ORDER_TRADE_UPDATE":
        o = _obj(d.get("o"))
        row[_INDEX["symbol"]] = o.get("s")
        _fill(row, o, _ORDER_COLS)
        row[_INDEX["order_trade_time_ns"]] = o.get("T")
    elif e == "TRADE_LITE":
        _fill(row, d, _LITE_COLS)
    elif e == "ACCOUNT_UPDATE":
        a = _obj(d.get("a"))
        row[_INDEX["reason"]] = a.get("m")
        row[_INDEX["symbol"]] = a.get("S")  # FUNDING_FEE carries the symbol (2026-08)
        _fill(row, {"B": a.get("B"), "P": a.get("P")}, _BALANCE_COLS + _POSITION_COLS)
    elif e == "MARGIN_CALL":
        row[_INDEX["cross_wallet_balance"]] = d.get("cw")
        positions = d.get("p")
        for name in _MARGIN_POSITION_COLS:
            row[_INDEX[name]] = positions
    elif e == "ACCOUNT_CONFIG_UPDATE":
        ac = _obj(d.get("ac"))
        row[_INDEX["symbol"]] = ac.get("s")
        row[_INDEX["leverage"]] = ac.get("l")
        row[_INDEX["multi_assets_mode"]] = _obj(d.get("ai")).get("j")
    return tuple(row)


__all__ = ["USER_EVENT_COLUMNS", "extract_user_event"]
