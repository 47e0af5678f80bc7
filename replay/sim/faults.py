"""Fault injection for the simulated exchange: what to break, when, on which connection.

Spec grammar (``ticktape sim --faults SPEC``), items separated by ``;``::

    KIND[:key=value[,key=value..]]

``at=S`` fires once, S seconds after each connection opened; ``every=S`` fires at random
with a mean interval of S seconds (seeded, so reproducible); ``conn=N`` limits the fault to
connection N (default: every connection). Kinds and their own keys:

===========  ==========================================================================
drop         abort TCP without a close frame (client sees 1006)
stall        send nothing (no data, pings or replies) for ``seconds`` (default 1)
skip         do not send the next ``count`` aggTrade frames (REST aggTrades still has them)
break-pu     do not send the next ``count`` diff-depth frames (breaks the ``pu`` chain)
malformed    send one text frame that is not valid JSON
binary       send one binary frame
close        close with ``code`` (default 1011) and ``reason``
slow         for ``seconds``, deliver frames one at a time ``delay`` s apart (default 0.05)
===========  ==========================================================================

Example: ``drop:at=5;skip:every=2,count=3;close:at=30,code=1001,conn=2``.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from schemas.errors import ConfigError


class FaultKind(enum.StrEnum):
    """What a fault does (see the module docstring)."""

    DROP = "drop"
    STALL = "stall"
    SKIP = "skip"
    BREAK_PU = "break-pu"
    MALFORMED = "malformed"
    BINARY = "binary"
    CLOSE = "close"
    SLOW = "slow"


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault rule. Exactly one of ``at`` (once) or ``every`` (random, mean interval)."""

    kind: FaultKind
    at: float | None = None
    every: float | None = None
    conn: int | None = None
    count: int = 1
    seconds: float = 1.0
    code: int = 1011
    reason: str = ""
    delay: float = 0.05

    def __post_init__(self) -> None:
        if (self.at is None) == (self.every is None):
            raise ConfigError(f"fault {self.kind.value}: give exactly one of at= or every=")
        if self.at is not None and self.at < 0:
            raise ConfigError(f"fault {self.kind.value}: at= must be >= 0")
        if self.every is not None and self.every <= 0:
            raise ConfigError(f"fault {self.kind.value}: every= must be > 0")
        if self.count < 1 or self.seconds < 0 or self.delay < 0:
            raise ConfigError(f"fault {self.kind.value}: count>=1, seconds>=0, delay>=0")
        if not 1000 <= self.code <= 4999 or self.code in (1004, 1005, 1006, 1015):
            raise ConfigError(f"fault close: code {self.code} cannot be sent in a close frame")

    def applies_to(self, conn_id: int) -> bool:
        """Whether this fault targets connection ``conn_id``."""
        return self.conn is None or self.conn == conn_id


_FLOAT_KEYS = ("at", "every", "seconds", "delay")
_INT_KEYS = ("conn", "count", "code")


def parse_faults(spec: str) -> tuple[Fault, ...]:
    """Parse a ``--faults`` spec; raises :class:`ConfigError` naming the bad part."""
    faults: list[Fault] = []
    for item in (p.strip() for p in spec.split(";")):
        if not item:
            continue
        name, _, args = item.partition(":")
        try:
            kind = FaultKind(name.strip().lower())
        except ValueError:
            valid = ", ".join(k.value for k in FaultKind)
            raise ConfigError(f"unknown fault {name!r} in --faults; valid: {valid}") from None
        values: dict[str, float | int | str] = {}
        for pair in (a.strip() for a in args.split(",") if a.strip()):
            key, eq, value = pair.partition("=")
            key = key.strip()
            try:
                if not eq:
                    raise ValueError
                if key in _FLOAT_KEYS:
                    values[key] = float(value)
                elif key in _INT_KEYS:
                    values[key] = int(value)
                elif key == "reason":
                    values[key] = value
                else:
                    raise KeyError(key)
            except ValueError:
                raise ConfigError(f"fault {item!r}: bad value in {pair!r}") from None
            except KeyError:
                raise ConfigError(f"fault {item!r}: unknown key {key!r}") from None
        faults.append(Fault(kind, **values))  # type: ignore[arg-type]
    return tuple(faults)


class FaultClock:
    """When each fault of one connection fires next (seconds since the connection opened).

    Random faults draw exponential intervals from an RNG seeded by (seed, connection id),
    so a run is reproducible.
    """

    def __init__(self, faults: tuple[Fault, ...], conn_id: int, seed: int) -> None:
        self._rng = random.Random(seed * 1_000_003 + conn_id)
        self._due: list[tuple[float, int, Fault]] = []
        for index, fault in enumerate(faults):
            if fault.applies_to(conn_id):
                self._due.append((self._first(fault), index, fault))
        self._due.sort()

    def _first(self, fault: Fault) -> float:
        if fault.at is not None:
            return fault.at
        assert fault.every is not None
        return self._rng.expovariate(1.0 / fault.every)

    def pop_due(self, elapsed: float) -> list[Fault]:
        """Faults due at ``elapsed`` seconds, rescheduling the random ones."""
        fired: list[Fault] = []
        while self._due and self._due[0][0] <= elapsed:
            when, index, fault = self._due.pop(0)
            fired.append(fault)
            if fault.every is not None:
                nxt = when + self._rng.expovariate(1.0 / fault.every)
                self._due.append((nxt, index, fault))
                self._due.sort()
        return fired

    def next_due(self) -> float | None:
        """Seconds-since-open of the next fault, or ``None``."""
        return self._due[0][0] if self._due else None


__all__ = ["Fault", "FaultClock", "FaultKind", "parse_faults"]
