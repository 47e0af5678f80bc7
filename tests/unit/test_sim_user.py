"""listenKey lifecycle and user-data events (BINANCE.md section 5)."""

from __future__ import annotations

import json

from replay.sim.user import UserData


def make() -> UserData:
    return UserData(seed=1, ttl_s=10, interval_s=0.5, symbols=["BTCUSDT"],
                    price_of=lambda s: "68000.00")


def test_post_returns_and_extends_the_active_key() -> None:
    users = make()
    key = users.create("api", 0)
    assert len(key) == 64 and key.isalnum()
    assert users.create("api", 5000) == key
    assert users.create("other", 0) != key
    assert users.known(key)


def test_events_cycle_includes_order_and_account_updates() -> None:
    users = make()
    key = users.create("api", 0)
    events = []
    for now in range(0, 3000, 100):
        events.extend(users.step(now))
    kinds = [e for k, e, _ in events if k == key]
    assert {"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "TRADE_LITE"} <= set(kinds)
    for _, event, payload in events:
        data = json.loads(payload)
        assert data["e"] == event and isinstance(data["E"], int)


def test_expiry_and_keepalive_and_delete() -> None:
    users = make()
    key = users.create("api", 0)
    assert users.keepalive("api", "", 8000)  # "" = the API key's active key
    assert not users.keepalive("api", "nope", 8000)
    assert not users.keepalive("intruder", key, 8000)
    assert all(e != "listenKeyExpired" for _, e, _ in users.step(17_000))
    expired = users.step(18_001)
    assert (key, "listenKeyExpired") in [(k, e) for k, e, _ in expired]
    payload = next(p for _, e, p in expired if e == "listenKeyExpired")
    assert json.loads(payload) == {"e": "listenKeyExpired", "E": 18_001, "listenKey": key}
    assert not users.known(key)
    key2 = users.create("api", 20_000)
    assert key2 != key
    assert users.delete("api", key2) and not users.known(key2)
    assert [e for _, e, _ in users.step(20_100)] == ["listenKeyExpired"]
    assert not users.delete("api", key2)
