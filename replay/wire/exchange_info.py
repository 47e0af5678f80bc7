"""``GET /fapi/v1/exchangeInfo`` symbol entries with realistic Binance USD-M filters (pure).

Sources (sim, archive) call :func:`symbol_entry` for each symbol they serve.
"""

from __future__ import annotations

from typing import Any


def symbol_entry(symbol: str, base: str, quote: str, price_dp: int, tick_size: str,
                 qty_dp: int, step_size: str, onboard_ms: int,
                 min_price: str = "0.10", max_price: str = "4529764") -> dict[str, Any]:
    """One ``symbols[]`` entry shaped like Binance's (PERPETUAL, TRADING)."""
    return {
        "symbol": symbol, "pair": symbol, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": onboard_ms, "status": "TRADING",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": base, "quoteAsset": quote, "marginAsset": quote,
        "pricePrecision": price_dp, "quantityPrecision": qty_dp,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
        "underlyingSubType": [], "triggerProtect": "0.0500", "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": min_price, "maxPrice": max_price,
             "tickSize": tick_size},
            {"filterType": "LOT_SIZE", "minQty": step_size, "maxQty": "1000",
             "stepSize": step_size},
            {"filterType": "MARKET_LOT_SIZE", "minQty": step_size, "maxQty": "120",
             "stepSize": step_size},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


__all__ = ["symbol_entry"]
