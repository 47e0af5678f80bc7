"""Operator surfaces: the status table, JSON log lines, the /metrics exposition."""

from __future__ import annotations

import logging
import time

import orjson
from rich.console import Console

from recorder._metrics import MetricsServer, RecorderCounters
from recorder._status import JsonFormatter, render_table, summary


def _counters() -> RecorderCounters:
    c = RecorderCounters()
    now = time.time_ns()
    for _ in range(3):
        c.count("btcusdt@aggTrade", 100, now)
    c.count("!markPrice@arr", 2000, now)
    c.count_gap("disconnect")
    c.queue_depth = lambda: {"repair": 1, "handler:0:h": 7}
    c.handler_drops = lambda: {"0:h": 4}
    c.reconnects = lambda: 2
    return c


def test_status_table_shows_streams_gaps_and_queues() -> None:
    console = Console(record=True, width=120)
    console.print(render_table(_counters(), {"btcusdt@aggTrade": 12.5}))
    text = console.export_text()
    assert "btcusdt@aggTrade" in text and "12.5" in text and "!markPrice@arr" in text
    assert "disconnect=1" in text and "handler:0:h=7" in text and "reconnects: 2" in text
    assert "4 messages on 2 streams, 1 gaps, 2 reconnects" in summary(_counters())


def test_json_log_line() -> None:
    record = logging.LogRecord("ticktape.recorder", logging.WARNING, "x", 1,
                               "attempt %d failed", (3,), None)
    line = orjson.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["msg"] == "attempt 3 failed"
    assert line["ts"].endswith("Z")


def test_metrics_exposition() -> None:
    text = MetricsServer(_counters(), 0).render().decode()
    assert 'ticktape_messages_total{stream="btcusdt@aggTrade"} 3.0' in text
    assert 'ticktape_bytes_total{stream="!markPrice@arr"} 2000.0' in text
    assert 'ticktape_gaps_total{kind="disconnect"} 1.0' in text
    assert "ticktape_reconnects_total 2.0" in text
    assert 'ticktape_queue_depth{queue="handler:0:h"} 7.0' in text
    assert 'ticktape_handler_drops_total{handler="0:h"} 4.0' in text
    assert 'ticktape_last_message_age_seconds{stream="btcusdt@aggTrade"}' in text
