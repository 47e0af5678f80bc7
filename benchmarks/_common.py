"""What every benchmark returns, and small shared helpers (timing, goals, not-measured).

A benchmark is a module with ``NAME`` and ``run(cfg) -> Outcome``. An :class:`Outcome` holds
the table rows (:class:`Figure`) and the JSON keys it owns. A figure that could not be measured
has ``value=None`` and a ``note`` starting with ``"not measured: "``; its JSON key is ``null``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JsonValue = float | int | bool | str | None | dict[str, Any] | list[Any]


@dataclass(frozen=True, slots=True)
class Config:
    """Run-wide settings."""

    quick: bool
    workdir: Path
    """A scratch directory removed after the run."""
    cache: Path
    """``benchmarks/.cache``: generated inputs kept between runs."""
    tiny: bool = False
    """Smoke-test scale: every size is a hundredth of the quick one (figures meaningless)."""

    def pick(self, quick: int, full: int) -> int:
        """``quick`` in quick mode, else ``full`` (a hundredth of ``quick`` when tiny)."""
        if self.tiny:
            return max(1, quick // 100)
        return quick if self.quick else full


@dataclass(slots=True)
class Figure:
    """One table row: a measured figure, its same-run baseline and the goal."""

    label: str
    value: float | None
    unit: str
    baseline: float | None = None
    goal: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """``value / baseline`` when both exist."""
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


@dataclass(slots=True)
class Outcome:
    """Rows for the table and the JSON keys one benchmark owns."""

    figures: list[Figure] = field(default_factory=list)
    keys: dict[str, JsonValue] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def not_measured(self, label: str, keys: list[str], why: str, unit: str = "") -> None:
        """Record that ``keys`` could not be measured, with the reason."""
        for k in keys:
            self.keys.setdefault(k, None)
        self.figures.append(Figure(label, None, unit, note=f"not measured: {why}"))


Benchmark = Callable[[Config], Outcome]


def at_least(value: float | None, goal: float) -> bool | None:
    """Pass when ``value >= goal`` (None when unmeasured)."""
    return None if value is None else value >= goal


def at_most(value: float | None, goal: float) -> bool | None:
    """Pass when ``value <= goal`` (None when unmeasured)."""
    return None if value is None else value <= goal


def percentile(sorted_values: list[float] | list[int], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (``q`` in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return float(sorted_values[rank])


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn`` (seconds)."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def missing(module: str) -> str | None:
    """``None`` if ``module`` imports, else a one-line reason for a "not measured" note."""
    import importlib

    try:
        importlib.import_module(module)
    except Exception as exc:  # any import failure means "not there yet"
        return f"{module} unavailable ({type(exc).__name__}: {exc})"
    return None


__all__ = [
    "Benchmark",
    "Config",
    "Figure",
    "JsonValue",
    "Outcome",
    "at_least",
    "at_most",
    "best_of",
    "missing",
    "percentile",
]
