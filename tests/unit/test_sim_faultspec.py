"""--faults spec parsing and the seeded fault schedule."""

from __future__ import annotations

import pytest

from replay.sim.faults import Fault, FaultClock, FaultKind, parse_faults
from schemas.errors import ConfigError


def test_parse_every_kind() -> None:
    faults = parse_faults("drop:at=5; stall:at=1,seconds=0.5 ;skip:every=2,count=3;"
                          "break-pu:at=0;malformed:at=1;binary:at=2,conn=3;"
                          "close:at=3,code=4000,reason=bye;slow:at=1,seconds=2,delay=0.01")
    assert [f.kind for f in faults] == list(FaultKind)
    assert faults[0] == Fault(FaultKind.DROP, at=5.0)
    assert faults[2].every == 2.0 and faults[2].count == 3
    assert faults[5].conn == 3
    assert (faults[6].code, faults[6].reason) == (4000, "bye")
    assert (faults[7].seconds, faults[7].delay) == (2.0, 0.01)
    assert parse_faults("") == ()


@pytest.mark.parametrize(("spec", "needle"), [
    ("explode:at=1", "unknown fault 'explode'"),
    ("drop", "exactly one of at= or every="),
    ("drop:at=1,every=2", "exactly one of at= or every="),
    ("drop:at=x", "bad value"),
    ("drop:at=1,colour=red", "unknown key 'colour'"),
    ("close:at=1,code=1006", "cannot be sent"),
    ("skip:at=1,count=0", "count>=1"),
])
def test_bad_specs_name_the_problem(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_faults(spec)


def test_clock_fires_once_and_targets_connections() -> None:
    faults = parse_faults("drop:at=1,conn=2;close:at=0.5")
    clock = FaultClock(faults, conn_id=1, seed=1)
    assert clock.pop_due(0.4) == []
    assert [f.kind for f in clock.pop_due(2.0)] == [FaultKind.CLOSE]
    assert clock.pop_due(10.0) == [] and clock.next_due() is None
    clock2 = FaultClock(faults, conn_id=2, seed=1)
    assert [f.kind for f in clock2.pop_due(2.0)] == [FaultKind.CLOSE, FaultKind.DROP]


def test_random_faults_are_seeded_and_recur() -> None:
    faults = parse_faults("skip:every=0.5")

    def times(seed: int) -> list[float]:
        clock = FaultClock(faults, conn_id=1, seed=seed)
        out = []
        for step in range(1, 2000):
            if clock.pop_due(step / 100):
                out.append(step / 100)
        return out

    assert times(1) == times(1)
    assert times(1) != times(2)
    assert 10 < len(times(1)) < 80  # mean interval 0.5 s over 20 s
