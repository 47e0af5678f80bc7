"""The send log: per-connection sequence, kinds, NDJSON file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.wire.sendlog import SendLog, SentKind
from schemas.errors import ConfigError
from schemas.wire import make_envelope


def test_records_in_memory_and_in_file(tmp_path: Path) -> None:
    path = tmp_path / "sent.ndjson"
    with SendLog(path) as log:
        log.add_batch(1, [("btcusdt@aggTrade", '{"a":1}'), ("btcusdt@aggTrade", '{"a":2}')],
                      100, combined=True)
        log.add(2, SentKind.REPLY, "", '{"result":null,"id":1}', 101)
        log.add(1, SentKind.CLOSE, "", "1001 going away", 102)
    assert [(r.conn_id, r.seq, r.kind) for r in log] == [
        (1, 1, SentKind.DATA), (1, 2, SentKind.DATA), (2, 1, SentKind.REPLY),
        (1, 3, SentKind.CLOSE)]
    assert [r.payload for r in log.data(1)] == ['{"a":1}', '{"a":2}']
    assert log.connections() == [1, 2]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 4
    assert lines[0] == {"conn_id": 1, "seq": 1, "kind": "data", "stream": "btcusdt@aggTrade",
                        "payload": '{"a":1}', "send_ns": 100, "combined": True}
    first = log.data(1)[0]
    assert make_envelope(first.stream, first.payload) == (
        '{"stream":"btcusdt@aggTrade","data":{"a":1}}')


def test_file_only_mode(tmp_path: Path) -> None:
    path = tmp_path / "sent.ndjson"
    with SendLog(path, keep_in_memory=False) as log:
        log.add(1, SentKind.DROP, "", "", 1)
    assert len(log) == 0
    assert json.loads(path.read_text())["kind"] == "drop"


def test_unwritable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open send log"):
        SendLog(tmp_path / "missing-dir" / "x.ndjson")
