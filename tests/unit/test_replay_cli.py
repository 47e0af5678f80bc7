"""`ticktape replay` through click's CliRunner: NDJSON, text, --hash, --handler, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from replay import Replayer
from tests.replay_support import (
    MS,
    T0,
    a_gap,
    agg_trades,
    book_tickers,
    write_gaps,
    write_partition,
)
from ticktape.cli import cli, main


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    write_partition(root, "btcusdt@aggTrade", agg_trades("BTCUSDT", T0, 30, 3 * MS, conn_id=2))
    write_partition(root, "btcusdt@bookTicker", book_tickers("BTCUSDT", T0, 20, 4 * MS))
    write_gaps(root, [a_gap("btcusdt@aggTrade", T0 + 30 * MS, T0 + 40 * MS)])
    return root


def test_ndjson_splices_payload_verbatim(archive: Path) -> None:
    result = CliRunner().invoke(cli, ["replay", "--archive", str(archive), "--speed", "0"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    events = list(Replayer(archive, speed=0).events())
    assert len(lines) == len(events) == 51
    for line, event in zip(lines, events, strict=True):
        obj = orjson.loads(line)
        if "gap" in obj:
            assert obj["gap"]["kind"] == "disconnect" and obj["gap"]["start_ns"] == T0 + 30 * MS
        else:
            assert line == (f'{{"stream":"{obj["stream"]}","recv_ns":{obj["recv_ns"]},'
                            f'"data":{event.raw}}}')  # type: ignore[union-attr]
            assert obj["data"] == event.data  # type: ignore[union-attr]


def test_filters_text_format_and_hash(archive: Path) -> None:
    runner = CliRunner()
    args = ["replay", "--archive", str(archive), "--speed", "0", "--streams",
            "BTCUSDT@bookTicker", "--start", "2024-08-09T00:00:00.010Z", "--end", str(T0 + 50 * MS)]
    text = runner.invoke(cli, [*args, "--format", "text"])
    assert text.exit_code == 0, text.output
    rows = text.output.splitlines()
    assert len(rows) == 10 and all("btcusdt@bookTicker" in r for r in rows)
    assert rows[0].startswith("2024-08-09T00:00:00.012000000Z")
    hashed = runner.invoke(cli, ["replay", "--archive", str(archive), "--hash"])
    assert hashed.output.strip() == Replayer(archive).content_hash()
    assert len(hashed.output.strip()) == 64


def test_handler_module_callable(archive: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_strategy.py").write_text(
        "SEEN = []\n"
        "class Counter:\n"
        "    async def on_message(self, msg):\n"
        "        SEEN.append(msg.stream)\n"
        "    async def on_gap(self, gap):\n"
        "        SEEN.append('gap')\n"
        "def plain(event):\n"
        "    SEEN.append(type(event).__name__)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_strategy", raising=False)
    runner = CliRunner()
    for spec, expect in (("my_strategy:Counter", "gap"), ("my_strategy:plain", "Gap")):
        result = runner.invoke(cli, ["replay", "--archive", str(archive), "--speed", "0",
                                     "--handler", spec])
        assert result.exit_code == 0, result.output
        assert result.output == ""
        seen = sys.modules["my_strategy"].SEEN
        assert len(seen) == 51 and seen.count(expect) == 1
        seen.clear()


def test_errors_are_one_line(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, needle in (
        (["replay", "--archive", str(archive / "missing")], "does not exist"),
        (["replay", "--archive", str(archive), "--start", "noon"], "bad time"),
        (["replay", "--archive", str(archive), "--handler", "nosuchmod:x"], "cannot import"),
        (["replay", "--archive", str(archive), "--streams", "btcusdt@nope"], "btcusdt@nope"),
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        err = capsys.readouterr().err
        assert info.value.code != 0 and needle in err and err.count("\n") == 1, err


def test_unknown_stream_names_what_is_recorded(archive: Path) -> None:
    result = CliRunner().invoke(cli, ["replay", "--archive", str(archive), "--streams",
                                      "ethusdt@aggTrade"])
    assert result.exit_code != 0
    assert "ethusdt@aggTrade" in str(result.exception)
    assert "btcusdt@bookTicker" in str(result.exception)
