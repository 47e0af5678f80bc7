"""Pure repair decisions and the REST weight budget (BINANCE.md sections 4 and 6)."""

from __future__ import annotations

from recorder._repair import BackfillJob, SnapshotJob, plan, snapshot_symbols
from recorder._rest import WeightBudget, depth_weight
from schemas.message import Gap, GapKind


def test_depth_gap_needs_snapshot_and_is_written() -> None:
    gap = Gap("btcusdt@depth@100ms", 1, 2, GapKind.SEQUENCE, "depth pu 5 != previous u 4")
    write, jobs = plan([gap])
    assert write == [gap]
    assert jobs == [SnapshotJob("BTCUSDT")]


def test_agg_hole_is_held_by_backfill_job() -> None:
    seq = Gap("btcusdt@aggTrade", 1, 9, GapKind.SEQUENCE, "aggTrade ids missing: first=100 count=3")
    down = Gap("btcusdt@aggTrade", 1, 9, GapKind.DISCONNECT, "connection lost")
    write, jobs = plan([down, seq])
    assert write == []
    assert jobs == [BackfillJob("btcusdt@aggTrade", 100, 3, (down, seq))]


def test_agg_disconnect_without_hole_is_recovered() -> None:
    down = Gap("ethusdt@aggTrade", 1, 9, GapKind.DISCONNECT, "connection lost")
    write, jobs = plan([down])
    assert jobs == []
    assert len(write) == 1 and write[0].recovered and write[0].start_ns == 1


def test_other_gaps_pass_through() -> None:
    gaps = [Gap("*", 1, 1, GapKind.REJECTED, "malformed"),
            Gap("btcusdt@bookTicker", 1, 5, GapKind.DISCONNECT, "x")]
    assert plan(gaps) == (gaps, [])


def test_snapshot_symbols_only_for_diff_depth() -> None:
    assert snapshot_symbols(["btcusdt@depth@100ms", "btcusdt@depth5", "ethusdt@rpiDepth@500ms",
                             "btcusdt@depth"]) == ["BTCUSDT", "ETHUSDT"]


def test_depth_weights() -> None:
    assert [depth_weight(n) for n in (5, 10, 20, 50, 100, 500, 1000)] == [2, 2, 2, 2, 5, 10, 20]


def test_budget_waits_for_the_window() -> None:
    budget = WeightBudget(limit_per_min=100, margin=1.0)
    t = 0.0
    for _ in range(5):
        assert budget.delay(t, 20) == 0.0
        budget.spend(t, 20)
        t += 1.0
    # 100 used: the next 20 fit once the first request (t=0) leaves the 60 s window.
    assert budget.delay(t, 20) == 60.0 - t
    assert budget.delay(60.0, 20) == 0.0


def test_budget_honours_retry_after_and_server_report() -> None:
    budget = WeightBudget(limit_per_min=2400)
    budget.block(10.0, 30.0)
    assert budget.delay(11.0, 1) == 29.0
    assert budget.delay(41.0, 1) == 0.0
    budget.observe(50.0, 2000)
    assert budget.used(50.0) == 2000
    assert budget.used(111.0) == 0
