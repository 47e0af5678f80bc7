"""Test data for the schemas tests: the real captures under tests/data (see its README) and
the BINANCE.md example payloads with their expected typed rows."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from schemas.message import Message, Source
from schemas.wire import split_envelope

DATA = Path(__file__).resolve().parent / "data"
HFT = DATA / "hftbacktest_btcusdt_20240808_head2500.txt.gz"
CF_WS = DATA / "cryptofeed_BINANCE_FUTURES.ws.1.0.gz"
CF_HTTP = DATA / "cryptofeed_BINANCE_FUTURES.http.0.0.gz"


def hftbacktest_messages() -> dict[str, list[Message]]:
    """Messages by stream; the bare REST snapshot line becomes ``btcusdt@depthSnapshot``."""
    out: dict[str, list[Message]] = {}
    with gzip.open(HFT, "rt", encoding="utf-8") as f:
        for seq, line in enumerate(f):
            ts, frame = line.rstrip("\n").split(" ", 1)
            split = split_envelope(frame)
            if split is None:
                msg = Message("btcusdt@depthSnapshot", int(ts), frame, 0, seq, Source.REST)
            else:
                msg = Message(split[0], int(ts), split[1], 0, seq)
            out.setdefault(msg.stream, []).append(msg)
    return out


def _seconds_to_ns(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def cryptofeed_messages() -> dict[str, list[Message]]:
    """ws.1.0 frames by stream plus the four REST snapshots as ``<symbol>@depthSnapshot``."""
    out: dict[str, list[Message]] = {}
    with gzip.open(CF_WS, "rt", encoding="utf-8") as f:
        next(f)  # connection header
        for seq, line in enumerate(f):
            ts, frame = line.rstrip("\n").split(": ", 1)
            split = split_envelope(frame)
            assert split is not None
            msg = Message(split[0], _seconds_to_ns(ts), split[1], 1, seq)
            out.setdefault(msg.stream, []).append(msg)
    with gzip.open(CF_HTTP, "rt", encoding="utf-8") as f:
        for seq, line in enumerate(f):
            if not line.strip():
                continue
            url, _, rest = line.rstrip("\n").partition(" -> ")
            ts, body = rest.split(": ", 1)
            symbol = url.split("symbol=")[1].split("&")[0].lower()
            stream = f"{symbol}@depthSnapshot"
            out.setdefault(stream, []).append(
                Message(stream, _seconds_to_ns(ts), body, 2, seq, Source.REST))
    return out


# ---- BINANCE.md section 3 and 4 examples ---------------------------------------------------

MS = 1_000_000

AGG_TRADE = ('{"e":"aggTrade","E":1771263510195,"a":3141966230,"s":"BTCUSDT","p":"68005.00",'
             '"q":"2.695","nq":"2.695","f":7297376181,"l":7297376207,"T":1771263510041,'
             '"m":true,"st":1}')
TRADE = ('{"e":"trade","E":1785685177439,"T":1785685177439,"s":"BTCUSDT","t":7947325360,'
         '"p":"63113.20","q":"0.001","X":"MARKET","m":false,"st":1}')
MARK_PRICE = ('{"e":"markPriceUpdate","E":1789478388001,"s":"BTCUSDT","p":"76944.22",'
              '"ap":"76944.22","P":"76991.35","i":"76974.32","r":"0.00008784",'
              '"T":1789488000000,"st":1}')
KLINE = ('{"e":"kline","E":1638747660000,"s":"BTCUSDT","k":{"t":1638747660000,'
         '"T":1638747719999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020",'
         '"h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500",'
         '"Q":"0.500","B":"0"}}')
CONTINUOUS_KLINE = ('{"e":"continuous_kline","E":1607443058651,"ps":"BTCUSDT","ct":"PERPETUAL",'
                    '"k":{"t":1607443020000,"T":1607443079999,"i":"1m","f":116467658886,'
                    '"L":116468012423,"o":"18787.00","c":"18804.04","h":"18804.04",'
                    '"l":"18786.54","v":"197.664","n":543,"x":false,"q":"3715253.19494",'
                    '"V":"184.769","Q":"3472925.84746","B":"0"}}')
MINI_TICKER = ('{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"2.5","o":"1.0","h":"2.5",'
               '"l":"1.0","v":"100","q":"18"}')
TICKER = ('{"e":"24hrTicker","E":1,"s":"BTCUSDT","p":"1.5","P":"2.50","w":"1.8","c":"2.5",'
          '"Q":"10","o":"1.0","h":"2.5","l":"1.0","v":"100","q":"18","O":0,"C":86400000,"F":0,'
          '"L":18150,"n":18151}')
BOOK_TICKER = ('{"e":"bookTicker","u":9924360161244,"s":"BTCUSDT","b":"68005.00","B":"2.394",'
               '"a":"68005.10","A":"0.857","T":1771263510337,"E":1771263510337}')
FORCE_ORDER = ('{"e":"forceOrder","E":1790845665206,"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT",'
               '"f":"IOC","q":"0.001","p":"83930.70","ap":"83598.50","X":"FILLED","l":"0.001",'
               '"z":"0.001","T":1790845665206,"ps":"BTCUSDT","st":1}}')
DEPTH = ('{"e":"depthUpdate","E":1771263510140,"T":1771263510139,"s":"BTCUSDT",'
         '"U":9924360134447,"u":9924360146998,"pu":9924360134267,"b":[["68005.00","2.214"]],'
         '"a":[["68005.10","0.838"]]}')
COMPOSITE = ('{"e":"compositeIndex","E":1602310596000,"s":"DEFIUSDT","p":"554.41",'
             '"C":"baseAsset","c":[{"b":"BAL","q":"USDT","w":"1.0488","W":"0.0145",'
             '"i":"24.33"}]}')
CONTRACT_INFO = ('{"e":"contractInfo","E":1669356423908,"s":"IOTAUSDT","ps":"IOTAUSDT",'
                 '"ct":"PERPETUAL","dt":4133404800000,"ot":1569398400000,"cs":"TRADING",'
                 '"bks":[{"bs":1,"bnf":0,"bnc":5000,"mmr":0.01,"cf":0,"mi":21,"ma":50}]}')
ASSET_INDEX = ('{"e":"assetIndexUpdate","E":1686749230000,"s":"ADXUSD","i":"0.27462452",'
               '"b":"0.10000000","a":"0.10000000","B":"0.24716207","A":"0.30208698",'
               '"l":"0.05000000","L":"0.24716207","q":"0.05000000","Q":"0.30208698"}')
SNAPSHOT = ('{"lastUpdateId":1027024,"E":1589436922972,"T":1589436922959,'
            '"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"],'
            '["4.01000000","1.5"]]}')

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("btcusdt@aggTrade", AGG_TRADE, {
        "event_time_ns": 1771263510195 * MS, "symbol": "BTCUSDT", "agg_trade_id": 3141966230,
        "price": 68005.0, "qty": 2.695, "non_rpi_qty": 2.695, "first_trade_id": 7297376181,
        "last_trade_id": 7297376207, "trade_time_ns": 1771263510041 * MS,
        "is_buyer_maker": True, "st": 1, "ps": None}),
    ("btcusdt@trade", TRADE, {
        "event_time_ns": 1785685177439 * MS, "trade_time_ns": 1785685177439 * MS,
        "symbol": "BTCUSDT", "trade_id": 7947325360, "price": 63113.2, "qty": 0.001,
        "order_type": "MARKET", "is_buyer_maker": False, "st": 1, "ps": None}),
    ("btcusdt@markPrice@1s", MARK_PRICE, {
        "event_time_ns": 1789478388001 * MS, "symbol": "BTCUSDT", "mark_price": 76944.22,
        "mark_price_avg": 76944.22, "estimated_settle_price": 76991.35,
        "index_price": 76974.32, "funding_rate": 0.00008784,
        "next_funding_time_ns": 1789488000000 * MS, "st": 1, "ps": None}),
    ("btcusdt@kline_1m", KLINE, {
        "event_time_ns": 1638747660000 * MS, "symbol": "BTCUSDT", "st": None, "ps": None,
        "open_time_ns": 1638747660000 * MS, "close_time_ns": 1638747719999 * MS,
        "interval": "1m", "first_trade_id": 100, "last_trade_id": 200, "open": 0.001,
        "high": 0.0025, "low": 0.0015, "close": 0.002, "volume": 1000.0, "trades": 100,
        "is_closed": False, "quote_volume": 1.0, "taker_buy_volume": 500.0,
        "taker_buy_quote_volume": 0.5}),
    ("btcusdt_perpetual@continuousKline_1m", CONTINUOUS_KLINE, {
        "event_time_ns": 1607443058651 * MS, "symbol": "BTCUSDT", "contract_type": "PERPETUAL",
        "st": None, "open_time_ns": 1607443020000 * MS, "close_time_ns": 1607443079999 * MS,
        "interval": "1m", "first_update_id": 116467658886, "last_update_id": 116468012423,
        "open": 18787.0, "high": 18804.04, "low": 18786.54, "close": 18804.04,
        "volume": 197.664, "trades": 543, "is_closed": False, "quote_volume": 3715253.19494,
        "taker_buy_volume": 184.769, "taker_buy_quote_volume": 3472925.84746}),
    ("btcusdt@miniTicker", MINI_TICKER, {
        "event_time_ns": MS, "symbol": "BTCUSDT", "close": 2.5, "open": 1.0, "high": 2.5,
        "low": 1.0, "volume": 100.0, "quote_volume": 18.0, "st": None, "ps": None}),
    ("btcusdt@ticker", TICKER, {
        "event_time_ns": MS, "symbol": "BTCUSDT", "price_change": 1.5,
        "price_change_pct": 2.5, "weighted_avg_price": 1.8, "close": 2.5, "last_qty": 10.0,
        "open": 1.0, "high": 2.5, "low": 1.0, "volume": 100.0, "quote_volume": 18.0,
        "open_time_ns": 0, "close_time_ns": 86400000 * MS, "first_trade_id": 0,
        "last_trade_id": 18150, "trade_count": 18151, "st": None, "ps": None}),
    ("btcusdt@bookTicker", BOOK_TICKER, {
        "event_time_ns": 1771263510337 * MS, "transaction_time_ns": 1771263510337 * MS,
        "symbol": "BTCUSDT", "update_id": 9924360161244, "bid_price": 68005.0,
        "bid_qty": 2.394, "ask_price": 68005.1, "ask_qty": 0.857, "st": None, "ps": None}),
    ("btcusdt@forceOrder", FORCE_ORDER, {
        "event_time_ns": 1790845665206 * MS, "symbol": "BTCUSDT", "side": "BUY",
        "order_type": "LIMIT", "time_in_force": "IOC", "qty": 0.001, "price": 83930.7,
        "avg_price": 83598.5, "order_status": "FILLED", "last_filled_qty": 0.001,
        "cum_filled_qty": 0.001, "trade_time_ns": 1790845665206 * MS, "st": 1,
        "ps": "BTCUSDT"}),
    ("btcusdt@depth@100ms", DEPTH, {
        "event_time_ns": 1771263510140 * MS, "transaction_time_ns": 1771263510139 * MS,
        "symbol": "BTCUSDT", "first_update_id": 9924360134447,
        "final_update_id": 9924360146998, "prev_final_update_id": 9924360134267,
        "bid_prices": [68005.0], "bid_qtys": [2.214], "ask_prices": [68005.1],
        "ask_qtys": [0.838], "st": None, "ps": None}),
    ("defiusdt@compositeIndex", COMPOSITE, {
        "event_time_ns": 1602310596000 * MS, "symbol": "DEFIUSDT", "price": 554.41,
        "base_asset_type": "baseAsset", "component_base_assets": ["BAL"],
        "component_quote_assets": ["USDT"], "component_weights_qty": [1.0488],
        "component_weights_pct": [0.0145], "component_index_prices": [24.33],
        "st": None, "ps": None}),
    ("!contractInfo", CONTRACT_INFO, {
        "event_time_ns": 1669356423908 * MS, "symbol": "IOTAUSDT", "pair": "IOTAUSDT",
        "contract_type": "PERPETUAL", "delivery_time_ns": 4133404800000 * MS,
        "onboard_time_ns": 1569398400000 * MS, "contract_status": "TRADING",
        "bracket_ids": [1], "bracket_notional_floors": [0.0], "bracket_notional_caps": [5000.0],
        "bracket_maint_margin_ratios": [0.01], "bracket_cums": [0.0],
        "bracket_min_leverages": [21], "bracket_max_leverages": [50], "st": None}),
    ("adxusd@assetIndex", ASSET_INDEX, {
        "event_time_ns": 1686749230000 * MS, "symbol": "ADXUSD", "index_price": 0.27462452,
        "bid_buffer": 0.1, "ask_buffer": 0.1, "bid_rate": 0.24716207, "ask_rate": 0.30208698,
        "auto_exchange_bid_buffer": 0.05, "auto_exchange_bid_rate": 0.24716207,
        "auto_exchange_ask_buffer": 0.05, "auto_exchange_ask_rate": 0.30208698,
        "st": None, "ps": None}),
    ("bnbbtc@depthSnapshot", SNAPSHOT, {
        "event_time_ns": 1589436922972 * MS, "transaction_time_ns": 1589436922959 * MS,
        "symbol": "BNBBTC", "last_update_id": 1027024, "bid_prices": [4.0],
        "bid_qtys": [431.0], "ask_prices": [4.000002, 4.01], "ask_qtys": [12.0, 1.5]}),
]
