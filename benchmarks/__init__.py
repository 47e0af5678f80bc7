"""Measured, not asserted: ticktape's speed, timing, storage and memory figures.

Run ``python -m benchmarks [--quick] [--json FILE] [--only NAME,..]`` from the repository
root. Every figure is measured in the same run as its baseline and printed as a ratio (these
machines are noisy). A piece that cannot be measured reports "not measured: <why>" and its
JSON key is ``null``; nothing is ever estimated. See BENCHMARKS.md.
"""

from __future__ import annotations

BENCHMARKS = {
    "storage": "storage",
    "ingest": "ingest",
    "cpu5k": "cpu5k",
    "replay": "replay_speed",
    "replay1x": "replay_timing",
    "serve": "serve",
    "ohlcv": "ohlcv",
    "memory": "memory",
}
"""Benchmark name (for ``--only``) -> module in this package."""

REQUIRED_KEYS = (
    "ingest_msgs_per_s",
    "ingest_baseline_msgs_per_s",
    "ingest_ratio",
    "replay_max_msgs_per_s",
    "replay_read_baseline_msgs_per_s",
    "serve_msgs_per_s",
    "replay_1x_lateness_p50_us",
    "replay_1x_lateness_p99_us",
    "replay_1x_lateness_max_us",
    "replay_1x_cpu_pct",
    "bytes_per_msg",
    "ndjson_gzip_bytes_per_msg",
    "storage_ratio",
    "storage_ratio_live",
    "storage_ratio_compacted",
    "ohlcv_10m_s",
    "ohlcv_flat_baseline_s",
    "ingest_cpu_us_per_msg_5k",
    "baseline_cpu_us_per_msg_5k",
    "recorder_rss_mb_peak",
)
"""Keys every JSON output holds (a number, an object for ``bytes_per_msg``, or null)."""

__all__ = ["BENCHMARKS", "REQUIRED_KEYS"]
