"""Pacer arithmetic: schedule deadlines (no drift), speed scaling, lateness histogram."""

from __future__ import annotations

import pytest

from replay._pacer import LatenessHistogram, Pacer


def test_deadlines_come_from_the_schedule_not_from_deliveries() -> None:
    pacer = Pacer(speed=4.0)
    pacer.anchor(1_000)
    base = pacer.deadline(1_000)
    assert pacer.deadline(1_000 + 4_000_000) - base == 1_000_000  # 4 ms recorded -> 1 ms
    assert pacer.deadline(1_000 + 400_000_000) - base == 100_000_000
    flat = Pacer(speed=0)
    flat.anchor(5)
    assert flat.deadline(10**12) == flat.deadline(5)
    with pytest.raises(ValueError):
        Pacer(speed=-1)


async def test_speed_zero_never_waits_or_records() -> None:
    pacer = Pacer(speed=0)
    for t in (0, 10**15, 2 * 10**15):
        await pacer.wait(t)
    assert pacer.stats().events == 0


def test_histogram_percentiles() -> None:
    hist = LatenessHistogram()
    for late in [500] * 90 + [5_500] * 9 + [250_000_000]:
        hist.add(late)
    assert hist.events == 100
    assert hist.percentile(0.5) == 1_000  # the 0-1 us bucket's upper edge
    assert hist.percentile(0.99) == 6_000
    assert hist.percentile(1.0) == hist.max_ns == 250_000_000
    hist.add(-3)  # early (clock granularity) counts as on time
    assert hist.events == 101 and hist.counts[0] == 91
    assert LatenessHistogram().percentile(0.99) == 0
