"""Simulated user-data streams: listenKeys and their events (BINANCE.md section 5, pure).

One active key per API key (``POST`` returns and extends it); keys expire after
``listen_key_ttl`` seconds of market time without keepalive and then send
``listenKeyExpired``, as ``DELETE`` does. While alive, each key receives a cycle of
ORDER_TRADE_UPDATE (NEW), TRADE_LITE + ORDER_TRADE_UPDATE (TRADE), ACCOUNT_UPDATE and, every
other cycle, ACCOUNT_CONFIG_UPDATE, one step per ``user_event_interval``.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

UserFrame = tuple[str, str, str]
"""``(listen_key, event type, payload)``."""


@dataclass(slots=True)
class _Key:
    key: str
    api_key: str
    expires_ms: int
    next_event_ms: int
    step: int = 0
    order_id: int = 8_886_774


class UserData:
    """All listenKeys and the events due on them."""

    def __init__(self, seed: int, ttl_s: float, interval_s: float, symbols: list[str],
                 price_of: Callable[[str], str]) -> None:
        self._rng = random.Random(f"{seed}:user")
        self._ttl_ms = int(ttl_s * 1000)
        self._interval_ms = max(1, int(interval_s * 1000))
        self._symbols = symbols
        self._price_of = price_of
        self._by_key: dict[str, _Key] = {}
        self._by_api: dict[str, str] = {}
        self._expired: list[str] = []

    def create(self, api_key: str, now_ms: int) -> str:
        """``POST``: the API key's active key, extended, or a new one."""
        key = self._by_api.get(api_key)
        if key is not None and key in self._by_key:
            self._by_key[key].expires_ms = now_ms + self._ttl_ms
            return key
        alphabet = string.ascii_letters + string.digits
        key = "".join(self._rng.choice(alphabet) for _ in range(64))
        self._by_key[key] = _Key(key, api_key, now_ms + self._ttl_ms,
                                 now_ms + self._interval_ms)
        self._by_api[api_key] = key
        return key

    def _resolve(self, api_key: str, key: str) -> _Key | None:
        key = key or self._by_api.get(api_key, "")
        entry = self._by_key.get(key)
        return entry if entry is not None and entry.api_key == api_key else None

    def keepalive(self, api_key: str, key: str, now_ms: int) -> bool:
        """``PUT``: extend by the TTL; ``key=""`` means the API key's active key."""
        entry = self._resolve(api_key, key)
        if entry is None:
            return False
        entry.expires_ms = now_ms + self._ttl_ms
        return True

    def delete(self, api_key: str, key: str) -> bool:
        """``DELETE``: invalidate now; ``listenKeyExpired`` goes out on the next step."""
        entry = self._resolve(api_key, key)
        if entry is None:
            return False
        self._drop(entry.key)
        return True

    def _drop(self, key: str) -> None:
        entry = self._by_key.pop(key)
        if self._by_api.get(entry.api_key) == key:
            del self._by_api[entry.api_key]
        self._expired.append(key)

    def known(self, key: str) -> bool:
        """Whether ``key`` is alive."""
        return key in self._by_key

    def step(self, now_ms: int) -> list[UserFrame]:
        """Events due at ``now_ms``: expiries first, then each live key's next events."""
        out: list[UserFrame] = []
        for entry in [e for e in self._by_key.values() if e.expires_ms <= now_ms]:
            self._drop(entry.key)
        for key in self._expired:
            out.append((key, "listenKeyExpired",
                        f'{{"e":"listenKeyExpired","E":{now_ms},"listenKey":"{key}"}}'))
        self._expired.clear()
        for entry in self._by_key.values():
            if now_ms >= entry.next_event_ms:
                entry.next_event_ms = now_ms + self._interval_ms
                out.extend(self._events(entry, now_ms))
        return out

    def _events(self, entry: _Key, now: int) -> list[UserFrame]:
        key, step = entry.key, entry.step
        entry.step += 1
        symbol = self._symbols[(step // 4) % len(self._symbols)]
        price = self._price_of(symbol)
        oid = entry.order_id + step // 4
        phase = step % 4
        if phase == 0:
            return [(key, "ORDER_TRADE_UPDATE", _order(now, symbol, oid, price, "NEW", "0"))]
        if phase == 1:
            lite = (f'{{"e":"TRADE_LITE","E":{now},"T":{now},"s":"{symbol}","q":"0.001",'
                    f'"p":"{price}","m":false,"c":"sim{oid}","S":"BUY","L":"{price}",'
                    f'"l":"0.001","t":{109_100_866 + step},"i":{oid}}}')
            return [(key, "TRADE_LITE", lite),
                    (key, "ORDER_TRADE_UPDATE",
                     _order(now, symbol, oid, price, "TRADE", "0.001"))]
        if phase == 2:
            return [(key, "ACCOUNT_UPDATE",
                     f'{{"e":"ACCOUNT_UPDATE","E":{now},"T":{now},"a":{{"m":"ORDER",'
                     f'"B":[{{"a":"USDT","wb":"1226.10000000","cw":"1226.10000000",'
                     f'"bc":"0"}}],"P":[{{"s":"{symbol}","pa":"0.001","ep":"{price}",'
                     f'"bep":"{price}","cr":"0","up":"0","mt":"cross","iw":"0",'
                     f'"ps":"BOTH"}}]}}}}')]
        if (step // 4) % 2:
            return [(key, "ACCOUNT_CONFIG_UPDATE",
                     f'{{"e":"ACCOUNT_CONFIG_UPDATE","E":{now},"T":{now},'
                     f'"ac":{{"s":"{symbol}","l":{10 + step % 15}}}}}')]
        return []


def _order(now: int, symbol: str, oid: int, price: str, execution: str, filled: str) -> str:
    status = "FILLED" if execution == "TRADE" else "NEW"
    last_price = price if execution == "TRADE" else "0"
    return (f'{{"e":"ORDER_TRADE_UPDATE","E":{now},"T":{now},"o":{{"s":"{symbol}",'
            f'"c":"sim{oid}","S":"BUY","o":"LIMIT","f":"GTC","q":"0.001","p":"{price}",'
            f'"ap":"{last_price}","sp":"0","x":"{execution}","X":"{status}","i":{oid},'
            f'"l":"{filled}","z":"{filled}","L":"{last_price}","n":"0","N":"USDT",'
            f'"T":{now},"t":{0 if execution == "NEW" else oid},"b":"0","a":"0","m":false,'
            f'"R":false,"wt":"CONTRACT_PRICE","ot":"LIMIT","ps":"BOTH","cp":false,"rp":"0",'
            f'"pP":false,"si":0,"ss":0,"V":"EXPIRE_TAKER","pm":"NONE","gtd":0}}}}')


__all__ = ["UserData", "UserFrame"]
