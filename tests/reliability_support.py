"""Helpers for the reliability suite: the sim and the recorder as real subprocesses, so the
recorder can be killed (-9) and stopped (SIGTERM) and its RSS and file descriptors watched."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0
"""Upper bound for a subprocess to start or stop (a hang guard, not a timing assertion)."""


def env(**extra: str) -> dict[str, str]:
    """The environment for a ``python -m ticktape`` subprocess."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    out["PYTHONUNBUFFERED"] = "1"
    out.update(extra)
    return out


def ticktape(*args: str, cwd: Path | None = None, timeout: float = 120.0,
             extra_env: dict[str, str] | None = None,
             preexec_fn: Callable[[], Any] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ticktape ARGS`` to completion."""
    return subprocess.run([sys.executable, "-m", "ticktape", *args], cwd=cwd,
                          env=env(**(extra_env or {})), capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec_fn, check=False)


class SimProcess:
    """``ticktape sim`` on a free port, with a send log; :attr:`ws_url` once started."""

    def __init__(self, workdir: Path, *, rate: float, symbols: Sequence[str], faults: str = "",
                 max_conn_age: float = 86400.0, seed: int = 3, cadence_scale: float = 0.1):
        self.send_log = workdir / "sent.ndjson"
        self.stdout = workdir / "sim.out"
        args = [sys.executable, "-m", "ticktape", "sim", "--port", "0", "--rate", str(rate),
                "--symbols", ",".join(symbols), "--seed", str(seed), "--send-log",
                str(self.send_log), "--max-conn-age", str(max_conn_age),
                "--cadence-scale", str(cadence_scale)]
        if faults:
            args += ["--faults", faults]
        self._out = open(self.stdout, "w")  # noqa: SIM115 closed in stop()
        self.proc = subprocess.Popen(args, env=env(), stdout=self._out,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + WAIT
        while True:
            match = re.search(r"websocket (ws://\S+)\s+REST (http://\S+)", self.stdout.read_text())
            if match:
                self.ws_url, self.rest_url = match.group(1), match.group(2)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"sim did not start: {self.stdout.read_text()}")
            time.sleep(0.05)

    def stop(self) -> str:
        """SIGTERM (flushes the send log), wait, return its output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        self._out.close()
        return self.stdout.read_text()


@dataclass
class ProcStats:
    """What was seen of one recorder process over its life."""

    pid: int
    vm_hwm_kb: int = 0
    fd_samples: list[int] = field(default_factory=list)


def vm_hwm_kb(pid: int) -> int:
    """Peak resident set size (``VmHWM``) of ``pid`` in kB, 0 if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) if match else 0


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid``, 0 if gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class RecorderProcess:
    """``ticktape record --config FILE`` as a subprocess, restartable, logs appended to one file.
    """

    def __init__(self, workdir: Path, config: Path, extra_env: dict[str, str] | None = None):
        self.workdir = workdir
        self.config = config
        self.log = workdir / "recorder.log"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.runs: list[ProcStats] = []
        self.exit_codes: list[int] = []

    def start(self) -> None:
        """Start a new recorder process."""
        assert self.proc is None or self.proc.poll() is not None
        with open(self.log, "a") as log:
            log.write(f"--- start {time.time_ns()}\n")
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ticktape", "record", "--config", str(self.config),
                 "--json-logs"], cwd=self.workdir, env=env(**self.extra_env), stdout=log,
                stderr=subprocess.STDOUT, text=True)
        self.runs.append(ProcStats(self.proc.pid))

    def sample(self) -> None:
        """Record the current peak RSS and fd count of the running process."""
        if self.proc is None or self.proc.poll() is not None:
            return
        run = self.runs[-1]
        run.vm_hwm_kb = max(run.vm_hwm_kb, vm_hwm_kb(self.proc.pid))
        fds = fd_count(self.proc.pid)
        if fds:
            run.fd_samples.append(fds)

    def signal(self, sig: signal.Signals) -> int:
        """Send ``sig``, wait for the exit, return its code (the wall time it was sent: ns)."""
        assert self.proc is not None
        self.sample()
        sent = time.time_ns()
        self.proc.send_signal(sig)
        self.exit_codes.append(self.proc.wait(WAIT))
        return sent

    def logs(self) -> str:
        """Everything every run printed."""
        return self.log.read_text()


def recorder_toml(path: Path, *, streams: Sequence[str], archive: Path, ws_url: str,
                  rest_url: str, rotate: str = "15m", rotate_after: str = "23h",
                  idle_timeout: str = "2s", metrics_port: int | None = None) -> Path:
    """Write a recorder TOML config with fast reconnects for the chaos tests."""
    lines = [f"streams = {list(streams)!r}".replace("'", '"'),
             f'archive = "{archive}"', f'ws_url = "{ws_url}"', f'rest_url = "{rest_url}"',
             f'rotate = "{rotate}"']
    if metrics_port is not None:
        lines.append(f"metrics_port = {metrics_port}")
    lines += ["[connection]", f'idle_timeout = "{idle_timeout}"', 'connect_timeout = "3s"',
              f'rotate_after = "{rotate_after}"', 'overlap = "1s"',
              'backoff_initial = "50ms"', 'backoff_cap = "500ms"']
    path.write_text("\n".join(lines) + "\n")
    return path


STREAM_KINDS = ("aggTrade", "trade", "bookTicker", "depth@100ms", "depth@0ms", "depth",
                "markPrice@1s", "kline_1m", "miniTicker", "ticker")


def streams_for(symbols: Sequence[str], count: int) -> list[str]:
    """``count`` stream names over ``symbols`` (10 kinds per symbol)."""
    out = [f"{s.lower()}@{k}" for s in symbols for k in STREAM_KINDS]
    return out[:count]


def sim_faults(every: float) -> str:
    """Random sim faults (drops, stalls, pu breaks, id skips, malformed frames, close codes),
    each kind firing on average every ``every`` seconds on each connection."""
    kinds = ["drop", "stall:seconds=2.5", "break-pu:count=2", "skip:count=3", "malformed",
             "close:code=1011", "close:code=1001", "binary"]
    return ";".join(f"{k.split(':')[0]}:every={every * len(kinds)}"
                    + (f",{k.split(':')[1]}" if ":" in k else "") for k in kinds)


@dataclass
class ChaosResult:
    """What a chaos run did."""

    stop_ns: int
    kills: int = 0
    terms: int = 0
    events: list[str] = field(default_factory=list)


def chaos(recorder: RecorderProcess, seconds: float, *, kill_every: float, seed: int,
          sample_every: float = 0.5) -> ChaosResult:
    """Run the recorder for ``seconds``, killing it (-9) and stopping it (SIGTERM), alternately,
    and restarting it at random times (mean interval ``kill_every``); finally SIGTERM.
    Samples peak RSS and fd count every ``sample_every`` seconds."""
    rng = random.Random(seed)
    result = ChaosResult(stop_ns=0)
    recorder.start()
    end = time.monotonic() + seconds
    next_fault = time.monotonic() + rng.expovariate(1 / kill_every) + 1.0
    while time.monotonic() < end:
        time.sleep(sample_every)
        recorder.sample()
        if time.monotonic() >= next_fault and time.monotonic() < end - 3.0:
            sig = (signal.SIGKILL, signal.SIGTERM)[len(result.events) % 2]
            recorder.signal(sig)
            if sig is signal.SIGKILL:
                result.kills += 1
            else:
                result.terms += 1
            result.events.append(sig.name)
            time.sleep(rng.uniform(0.1, 1.0))  # downtime
            recorder.start()
            next_fault = time.monotonic() + rng.expovariate(1 / kill_every) + 1.0
        assert recorder.proc is not None
        if recorder.proc.poll() is not None:
            raise AssertionError(f"recorder exited on its own:\n{recorder.logs()[-3000:]}")
    result.stop_ns = recorder.signal(signal.SIGTERM)
    return result


__all__ = ["ROOT", "ChaosResult", "ProcStats", "RecorderProcess", "SimProcess", "chaos", "env",
           "fd_count", "recorder_toml", "sim_faults", "streams_for", "ticktape", "vm_hwm_kb"]
