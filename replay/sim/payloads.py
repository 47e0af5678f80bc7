"""Payload text of every simulated stream, in Binance's live key order (BINANCE.md section 3).

Pure string formatting: every argument is already a Binance-formatted string or an int.
"""

from __future__ import annotations

from collections.abc import Sequence


def agg_trade(e: int, a: int, s: str, p: str, q: str, f: int, last: int, t: int,
              m: bool) -> str:
    """``aggTrade`` (``nq`` = q: the sim has no RPI fills)."""
    return (f'{{"e":"aggTrade","E":{e},"a":{a},"s":"{s}","p":"{p}","q":"{q}","nq":"{q}",'
            f'"f":{f},"l":{last},"T":{t},"m":{"true" if m else "false"},"st":1}}')


def agg_trade_row(a: int, p: str, q: str, f: int, last: int, t: int, m: bool) -> dict[
        str, object]:
    """One REST ``aggTrades`` row (no ``e``/``E``/``s``, BINANCE.md section 6)."""
    return {"a": a, "p": p, "q": q, "nq": q, "f": f, "l": last, "T": t, "m": m}


def trade(e: int, t: int, s: str, tid: int, p: str, q: str, x: str, m: bool) -> str:
    """``trade``; ``X`` is ``MARKET`` for fills, ``NA`` for id-consuming placeholders."""
    return (f'{{"e":"trade","E":{e},"T":{t},"s":"{s}","t":{tid},"p":"{p}","q":"{q}",'
            f'"X":"{x}","m":{"true" if m else "false"},"st":1}}')


def book_ticker(u: int, s: str, b: str, bq: str, a: str, aq: str, t: int, e: int) -> str:
    """``bookTicker``; ``u`` is the depth update id it reflects."""
    return (f'{{"e":"bookTicker","u":{u},"s":"{s}","b":"{b}","B":"{bq}","a":"{a}",'
            f'"A":"{aq}","T":{t},"E":{e}}}')


def levels(rows: Sequence[tuple[str, str]]) -> str:
    """``[["p","q"],..]``."""
    return "[" + ",".join(f'["{p}","{q}"]' for p, q in rows) + "]"


def depth_update(e: int, t: int, s: str, first: int, last: int, prev: int, bids: str,
                 asks: str) -> str:
    """``depthUpdate`` (diff and partial share the shape); ``bids``/``asks`` pre-rendered."""
    return (f'{{"e":"depthUpdate","E":{e},"T":{t},"s":"{s}","U":{first},"u":{last},'
            f'"pu":{prev},"b":{bids},"a":{asks}}}')


def mark_price(e: int, s: str, p: str, ap: str, est: str, i: str, r: str, nxt: int) -> str:
    """``markPriceUpdate``."""
    return (f'{{"e":"markPriceUpdate","E":{e},"s":"{s}","p":"{p}","ap":"{ap}","P":"{est}",'
            f'"i":"{i}","r":"{r}","T":{nxt},"st":1}}')


def kline_body(t0: int, t1: int, s: str | None, i: str, f: int, last: int, o: str, c: str,
               h: str, low: str, v: str, n: int, x: bool, q: str, vb: str, qb: str) -> str:
    """The ``k`` object; ``s`` omitted (``None``) for continuous klines."""
    sym = f'"s":"{s}",' if s is not None else ""
    return (f'{{"t":{t0},"T":{t1},{sym}"i":"{i}","f":{f},"L":{last},"o":"{o}","c":"{c}",'
            f'"h":"{h}","l":"{low}","v":"{v}","n":{n},"x":{"true" if x else "false"},'
            f'"q":"{q}","V":"{vb}","Q":"{qb}","B":"0"}}')


def kline(e: int, s: str, body: str) -> str:
    """``kline`` event."""
    return f'{{"e":"kline","E":{e},"s":"{s}","k":{body}}}'


def continuous_kline(e: int, pair: str, ct: str, body: str) -> str:
    """``continuous_kline`` event (``ct`` uppercase)."""
    return f'{{"e":"continuous_kline","E":{e},"ps":"{pair}","ct":"{ct}","k":{body}}}'


def mini_ticker(e: int, s: str, c: str, o: str, h: str, low: str, v: str, q: str) -> str:
    """``24hrMiniTicker``."""
    return (f'{{"e":"24hrMiniTicker","E":{e},"s":"{s}","c":"{c}","o":"{o}","h":"{h}",'
            f'"l":"{low}","v":"{v}","q":"{q}"}}')


def ticker(e: int, s: str, p: str, pp: str, w: str, c: str, lq: str, o: str, h: str,
           low: str, v: str, q: str, open_t: int, close_t: int, first: int, last: int,
           n: int) -> str:
    """``24hrTicker``."""
    return (f'{{"e":"24hrTicker","E":{e},"s":"{s}","p":"{p}","P":"{pp}","w":"{w}",'
            f'"c":"{c}","Q":"{lq}","o":"{o}","h":"{h}","l":"{low}","v":"{v}","q":"{q}",'
            f'"O":{open_t},"C":{close_t},"F":{first},"L":{last},"n":{n}}}')


def force_order(e: int, s: str, side: str, q: str, p: str, ap: str, t: int) -> str:
    """``forceOrder`` (a filled IOC liquidation)."""
    return (f'{{"e":"forceOrder","E":{e},"o":{{"s":"{s}","S":"{side}","o":"LIMIT",'
            f'"f":"IOC","q":"{q}","p":"{p}","ap":"{ap}","X":"FILLED","l":"{q}","z":"{q}",'
            f'"T":{t},"ps":"{s}","st":1}}}}')


def composite_index(e: int, s: str, p: str, parts: Sequence[tuple[str, str, str, str]]
                    ) -> str:
    """``compositeIndex``; ``parts`` = (base, weight qty, weight %, index price)."""
    body = ",".join(f'{{"b":"{b}","q":"USDT","w":"{w}","W":"{ww}","i":"{i}"}}'
                    for b, w, ww, i in parts)
    return f'{{"e":"compositeIndex","E":{e},"s":"{s}","p":"{p}","C":"baseAsset","c":[{body}]}}'


def contract_info(e: int, s: str, onboard: int, with_brackets: bool) -> str:
    """``contractInfo``; ``bks`` only on bracket changes (its values are numbers)."""
    bks = (',"bks":[{"bs":1,"bnf":0,"bnc":5000,"mmr":0.004,"cf":0,"mi":1,"ma":125},'
           '{"bs":2,"bnf":5000,"bnc":25000,"mmr":0.005,"cf":5,"mi":1,"ma":100}]'
           if with_brackets else "")
    return (f'{{"e":"contractInfo","E":{e},"s":"{s}","ps":"{s}","ct":"PERPETUAL",'
            f'"dt":4133404800000,"ot":{onboard},"cs":"TRADING"{bks}}}')


def asset_index(e: int, s: str, i: str, b: str, a: str) -> str:
    """``assetIndexUpdate`` (multi-assets mode collateral rate of an asset)."""
    return (f'{{"e":"assetIndexUpdate","E":{e},"s":"{s}","i":"{i}","b":"0.10000000",'
            f'"a":"0.10000000","B":"{b}","A":"{a}","q":"0.05000000","g":"0.05000000",'
            f'"Q":"{b}","G":"{a}"}}')


__all__ = [
    "agg_trade", "agg_trade_row", "asset_index", "book_ticker", "composite_index",
    "continuous_kline", "contract_info", "depth_update", "force_order", "kline",
    "kline_body", "levels", "mark_price", "mini_ticker", "ticker", "trade",
]
