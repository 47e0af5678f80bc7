"""`ticktape sim` on the command line: help, a real process, clean SIGTERM shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import websockets
from click.testing import CliRunner

from ticktape.cli import cli

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = ["--host", "--port", "--symbols", "--seed", "--faults", "--legacy-routes", "--rate",
           "--ping-interval", "--max-conn-age", "--send-log"]


def test_help_lists_every_option() -> None:
    result = CliRunner().invoke(cli, ["sim", "--help"])
    assert result.exit_code == 0
    for option in OPTIONS:
        assert option in result.output


def test_bad_faults_spec_is_one_line_error() -> None:
    proc_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "ticktape", "sim", "--faults", "boom:at=1"],
                            capture_output=True, text=True, env=proc_env, timeout=60, check=False)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "unknown fault 'boom'" in result.stderr


async def test_process_serves_legacy_routes_and_stops_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "sent.ndjson"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticktape", "sim", "--port", "0", "--legacy-routes",
        "--cadence-scale", "0.1", "--seed", "4", "--send-log", str(log),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"websocket (ws://127\.0\.0\.1:\d+)", line)
        assert match, line
        async with websockets.connect(match.group(1) + "/ws/btcusdt@markPrice") as ws:
            payload = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert payload["e"] == "markPriceUpdate" and payload["s"] == "BTCUSDT"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert b"stopped" in out
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["kind"] == "data" and r["stream"] == "btcusdt@markPrice" for r in sent)
