"""REST request-weight metering (BINANCE.md section 4)."""

from __future__ import annotations

from replay.wire.rest import DEPTH_WEIGHTS, WeightMeter


def test_depth_weights_match_binance() -> None:
    assert DEPTH_WEIGHTS == {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}


def test_meter_refuses_over_budget_without_counting_the_refused_request() -> None:
    meter = WeightMeter(limit=50)
    assert meter.spend(20) and meter.spend(20)
    assert meter.used == 40
    assert not meter.spend(20)
    assert meter.used == 40
    assert meter.spend(10)
    assert meter.used == 50
