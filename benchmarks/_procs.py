"""Subprocess plumbing: the feeder, a consumer (bare client or recorder), CPU and RSS.

Consumers run in their own process so their CPU time (``os.wait4`` rusage, minus a
``/proc/<pid>/stat`` sample taken when the feed starts) and peak RSS (``ru_maxrss``) are
theirs alone. A consumer's own child processes (the recorder's partition writer) count as
part of it: CPU samples and RSS cover the whole process tree, and ``wait4`` includes the
CPU of the children the consumer reaped. ``time.monotonic_ns`` is system-wide on Linux, so
the feeder's and the consumer's timestamps are comparable.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from schemas.errors import TicktapeError

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
_REPO = Path(__file__).resolve().parent.parent


class BenchError(TicktapeError):
    """A benchmark's helper process failed or did not answer in time."""


def python_cmd(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def child_env() -> dict[str, str]:
    """The environment for helper processes: the repository on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH")) if p)
    return env


def descendants(pid: int) -> list[int]:
    """Live child processes of ``pid``, recursively (from ``/proc/<pid>/task/*/children``)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        cur = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{cur}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{cur}/task/{tid}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _own_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process and its live descendants (all threads), from
    ``/proc/<pid>/stat``."""
    total = _own_cpu_seconds(pid)
    for kid in descendants(pid):
        with contextlib.suppress(OSError):
            total += _own_cpu_seconds(kid)
    return total


def _own_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def rss_mb(pid: int) -> float:
    """Current resident set size of a live process plus its live descendants, in MiB
    (0 if it is gone)."""
    return _own_rss_mb(pid) + sum(_own_rss_mb(kid) for kid in descendants(pid))


def _readline(stream: IO[bytes], timeout: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise BenchError(f"no output within {timeout:.0f} s")
    return stream.readline()


class FeederProc:
    """``benchmarks._feeder`` in a subprocess; use as a context manager."""

    def __init__(self, count: int, rate: float = 0.0, loops: int = 1, seed: int = 7,
                 stderr: Path | None = None) -> None:
        self._args = ["--count", str(count), "--rate", str(rate), "--loops", str(loops),
                      "--seed", str(seed)]
        self._stderr = stderr
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:<port>`` (the feeder answers the start-up REST calls)."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FeederProc:
        err: Any = subprocess.DEVNULL
        if self._stderr is not None:
            err = self._stderr.open("ab")
        try:
            self._proc = subprocess.Popen(
                python_cmd("benchmarks._feeder", *self._args), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, env=child_env(), cwd=_REPO)
        finally:
            if self._stderr is not None:
                err.close()
        try:
            self.port = int(self.event("ready", timeout=120.0)["port"])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def event(self, name: str, timeout: float) -> dict[str, Any]:
        """Wait for the feeder's next ``{"event": name}`` line."""
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"feeder: no {name!r} event within {timeout:.0f} s")
            line = _readline(self._proc.stdout, left)
            if not line:
                raise BenchError(f"feeder exited before {name!r}")
            msg: dict[str, Any] = orjson.loads(line)
            if msg.get("event") == name:
                return msg

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass(frozen=True, slots=True)
class ChildResult:
    """What a consumer process printed plus its measured resources."""

    output: dict[str, Any]
    cpu_s: float
    """CPU seconds spent after the feed started (including shutdown/sealing)."""
    maxrss_mb: float
    returncode: int


class ChildProc:
    """A consumer process (``benchmarks._client`` or ``benchmarks._recorder_child``)."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self._log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                         env=child_env(), cwd=_REPO)
        self._cpu0 = 0.0

    @property
    def pid(self) -> int:
        """Process id."""
        return self.proc.pid

    def mark_start(self) -> None:
        """Sample CPU time now; :meth:`finish` reports CPU spent after this point."""
        with contextlib.suppress(OSError):
            self._cpu0 = cpu_seconds(self.proc.pid)

    def terminate(self) -> None:
        """Ask the consumer to stop (SIGTERM: drain and seal)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def finish(self, timeout: float) -> ChildResult:
        """Wait for exit (killing after ``timeout``), parse its last stdout JSON line."""
        deadline = time.monotonic() + timeout
        status, usage = 0, None
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        else:
            self.proc.kill()
            _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        assert self.proc.stdout is not None
        text = self.proc.stdout.read().decode(errors="replace")
        self.proc.stdout.close()
        lines = [ln for ln in text.splitlines() if ln.startswith("{")]
        if self.proc.returncode != 0 or not lines:
            tail = self._log.read_text(errors="replace")[-600:] if self._log.exists() else ""
            raise BenchError(f"consumer exited {self.proc.returncode}: {tail.strip()!r}")
        cpu = usage.ru_utime + usage.ru_stime - self._cpu0 if usage else 0.0
        return ChildResult(orjson.loads(lines[-1]), cpu, (usage.ru_maxrss if usage else 0) / 1024,
                           self.proc.returncode)


@contextlib.contextmanager
def consumer(cmd: list[str], log: Path) -> Iterator[ChildProc]:
    """Start a consumer; kill it if the block raises."""
    child = ChildProc(cmd, log)
    try:
        yield child
    except BaseException:
        if child.proc.returncode is None:
            child.proc.kill()
            child.proc.wait()
        raise


__all__ = [
    "BenchError",
    "ChildProc",
    "ChildResult",
    "FeederProc",
    "child_env",
    "consumer",
    "cpu_seconds",
    "descendants",
    "python_cmd",
    "rss_mb",
]
