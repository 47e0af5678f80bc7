"""Retention removes whole expired days only."""

from __future__ import annotations

from pathlib import Path

from recorder._retention import apply_retention, expired_dirs
from schemas.layout import day_bounds_ns


def test_only_complete_expired_days_are_removed(tmp_path: Path) -> None:
    for d in ("2026-01-01", "2026-01-02", "2026-01-03"):
        (tmp_path / "streams" / "stream=btcusdt@aggTrade" / f"date={d}").mkdir(parents=True)
        (tmp_path / "gaps" / f"date={d}").mkdir(parents=True)
    (tmp_path / "streams" / "stream=bad name" / "date=2026-01-01").mkdir(parents=True)
    now = day_bounds_ns("2026-01-03")[0] + 3600 * 10**9  # 01:00 on Jan 3
    # 1 day retention: Jan 1 ended 25 h ago (expired); Jan 2 ended 1 h ago (kept).
    assert sorted(p.name for p in expired_dirs(tmp_path, now, 86400)) == ["date=2026-01-01"] * 2
    assert apply_retention(tmp_path, now, 86400) == 2
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("date=*"))
    assert left == ["gaps/date=2026-01-02", "gaps/date=2026-01-03",
                    "streams/stream=bad name/date=2026-01-01",  # not a stream: untouched
                    "streams/stream=btcusdt@aggTrade/date=2026-01-02",
                    "streams/stream=btcusdt@aggTrade/date=2026-01-03"]
