"""``ticktape record`` as a user runs it: bad input -> one line, non-zero exit, no traceback;
``--duration`` and SIGTERM seal everything; an unreachable exchange is retried and recorded."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.record_support import gap_rows, sim, stream_rows
from ticktape.cli import main

ROOT = Path(__file__).resolve().parents[2]


async def _run(args: list[str], cwd: Path, timeout: float = 60.0,
               term_after: float | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticktape", "record", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    early = b""
    if term_after is not None:
        # Wait until the recorder says it is recording, let it record, then SIGTERM.
        assert proc.stderr is not None
        while b"recording" not in early:
            line = await asyncio.wait_for(proc.stderr.readline(), timeout)
            assert line, "recorder exited early"
            early += line
        await asyncio.sleep(term_after)
        proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    err = early + err
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _assert_one_line_error(code: int, err: str, needle: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ticktape: error:") and needle in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--streams", "../x"], "invalid stream '../x'"),
        (["--streams", "btcusdt@aggTrade;rm -rf"], "invalid stream 'btcusdt@aggTrade;rm -rf'"),
        (["--streams", "btcusdt@aggTrade", "--ws-url", "ws://h:99x"], "malformed --ws-url"),
        (["--streams", "btcusdt@aggTrade", "--ws-url", "http://x"], "malformed --ws-url"),
        (["--streams", "btcusdt@aggTrade", "--archive", "afile"], "is a file"),
        (["--streams", "btcusdt@aggTrade", "--archive", "afile/sub"], "is a file"),
        (["--streams", "btcusdt@aggTrade", "--rotate", "soon"], "--rotate"),
        (["--config", "missing.toml"], "does not exist"),
        ([], "--streams"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], needle: str,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("not a directory")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["record", *args])
    code = exit_info.value.code
    assert isinstance(code, int)
    _assert_one_line_error(code, capsys.readouterr().err, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"], "nothing written"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
async def test_read_only_archive(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = await _run(["--streams", "btcusdt@aggTrade", "--archive", "ro/a"],
                                  tmp_path)
    finally:
        ro.chmod(0o700)
    _assert_one_line_error(code, err, "not writable")


async def test_duration_records_seals_and_exits_zero(tmp_path: Path) -> None:
    async with sim() as exchange:
        code, _, err = await _run(
            ["--streams", "btcusdt@aggTrade,btcusdt@bookTicker", "--archive", "arc",
             "--ws-url", exchange.ws_url, "--rest-url", exchange.rest_url, "--duration", "1.5",
             "--json-logs"], tmp_path)
    assert code == 0, err
    archive = tmp_path / "arc"
    assert stream_rows(archive, "btcusdt@aggTrade") and stream_rows(archive, "btcusdt@bookTicker")
    assert not list(archive.rglob("*.tmp")), "every partition sealed"
    assert "Traceback" not in err


async def test_sigterm_seals_everything(tmp_path: Path) -> None:
    async with sim() as exchange:
        code, _, err = await _run(
            ["--streams", "btcusdt@aggTrade", "--archive", "arc", "--ws-url", exchange.ws_url,
             "--rest-url", exchange.rest_url, "--json-logs"], tmp_path, term_after=1.5)
    assert code == 0, err
    archive = tmp_path / "arc"
    assert stream_rows(archive, "btcusdt@aggTrade")
    assert not list(archive.rglob("*.tmp"))


async def test_unreachable_exchange_is_retried_and_recorded(tmp_path: Path) -> None:
    # A port nobody listens on: bind, note it, close.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    code, _, err = await _run(
        ["--streams", "btcusdt@aggTrade", "--archive", "arc", "--ws-url",
         f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}", "--duration", "2",
         "--json-logs"], tmp_path)
    assert code == 0, err
    attempts = [line for line in err.splitlines() if "connect attempt" in line]
    assert len(attempts) >= 2
    assert all(line.startswith("{") for line in attempts)  # structured, one line each
    gaps = gap_rows(tmp_path / "arc")
    assert any(g.stream == "btcusdt@aggTrade" and g.kind.value == "disconnect"
               and "cannot connect" in g.detail for g in gaps)
