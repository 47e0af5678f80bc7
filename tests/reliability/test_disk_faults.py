"""Disk faults around ``ticktape record`` as a subprocess: the file size limit (RLIMIT_FSIZE,
EFBIG like a full disk) is hit mid-recording, and a read-only archive. The recorder stops with
one clear line and a non-zero exit, sealed partitions stay intact (``ticktape verify``), and a
restart once space returns recovers everything journaled, with the downtime as a gap."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from recorder._journal import SegmentReader
from replay._archive import Archive
from replay._verify import verify
from schemas.message import GapKind, Message
from tests.reliability_support import SimProcess, ticktape

STREAMS = "btcusdt@aggTrade,btcusdt@depth@0ms,ethusdt@bookTicker"
LIMIT = 30_000
"""Bytes per file: a journal segment outgrows it within seconds at this rate."""


def _tiny_disk() -> None:
    # Without this the kernel kills the process with SIGXFSZ instead of failing the write.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _journaled(archive: Path) -> set[str]:
    out: set[str] = set()
    for seg in sorted((archive / "journal").glob("*.wal")):
        out.update(r.raw for r in SegmentReader(seg).records() if isinstance(r, Message))
    return out


def _archived(archive: Path) -> set[str]:
    return {raw for stream in Archive(archive).streams()
            for batch in Archive(archive).read_stream(stream, columns=("raw",))
            for raw in batch.column("raw").to_pylist() if raw is not None}


def _verified(archive: Path, live: bool = False) -> bool:
    report = verify(archive, live=live)
    assert report.ok, report.problems[:5]
    return report.ok


def test_file_size_limit_then_restart(tmp_path: Path) -> None:
    sim = SimProcess(tmp_path, rate=2000.0, symbols=("BTCUSDT", "ETHUSDT"))
    archive = tmp_path / "archive"
    args = ("record", "--streams", STREAMS, "--ws-url", sim.ws_url, "--rest-url", sim.rest_url,
            "--archive", str(archive), "--rotate", "1s", "--json-logs")
    try:
        full = ticktape(*args, "--duration", "30", preexec_fn=_tiny_disk, cwd=tmp_path)
        journaled = _journaled(archive)
        verified = _verified(archive, live=True)
        sealed = _archived(archive)
        restart = ticktape(*args, "--duration", "2", cwd=tmp_path)
    finally:
        sim.stop()
    assert full.returncode != 0
    errors = [line for line in full.stderr.splitlines() if line.startswith("ticktape: error:")]
    assert len(errors) == 1 and "journal" in errors[0], full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    assert verified
    assert sealed, "what was held in memory was sealed before exiting"

    assert restart.returncode == 0, restart.stderr[-2000:]
    assert _verified(archive)
    after = _archived(archive)
    assert sealed <= after, "a sealed message was lost"
    assert journaled <= after, "a journaled message was not recovered"
    assert any(g.kind is GapKind.RECORDER_DOWN for g in Archive(archive).gaps())


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_archive(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    archive.chmod(0o555)
    try:
        out = ticktape("record", "--streams", "btcusdt@aggTrade", "--ws-url", "ws://127.0.0.1:9",
                       "--rest-url", "http://127.0.0.1:9", "--archive", str(archive),
                       "--duration", "1", cwd=tmp_path)
    finally:
        archive.chmod(0o755)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1].startswith("ticktape: error:")
    assert "Traceback" not in out.stderr


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tiny tmpfs at ``path`` (root only; the test is skipped where mounting is refused)."""
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True,
                   capture_output=True)


def test_disk_full_then_space_returns(tmp_path: Path) -> None:
    sim = SimProcess(tmp_path, rate=3000.0, symbols=("BTCUSDT", "ETHUSDT"))
    try:
        with _tmpfs(tmp_path / "disk", "200k") as disk:
            archive = disk / "archive"
            args = ("record", "--streams", STREAMS, "--ws-url", sim.ws_url, "--rest-url",
                    sim.rest_url, "--archive", str(archive), "--rotate", "1s", "--json-logs")
            full = ticktape(*args, "--duration", "60", cwd=tmp_path)
            sealed = _archived(archive)
            journaled = _journaled(archive)
            verified = _verified(archive, live=True)
            _remount(disk, "size=64m")  # space returns
            restart = ticktape(*args, "--duration", "2", cwd=tmp_path)
            after = _archived(archive)
            verified_after = _verified(archive)
    finally:
        sim.stop()
    assert full.returncode != 0
    errors = [line for line in full.stderr.splitlines() if line.startswith("ticktape: error:")]
    assert len(errors) == 1 and "disk full" in errors[0], full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    assert verified and verified_after
    assert restart.returncode == 0, restart.stderr[-2000:]
    assert sealed and sealed <= after
    assert journaled <= after


def test_read_only_remount_keeps_sealed_data(tmp_path: Path) -> None:
    sim = SimProcess(tmp_path, rate=500.0, symbols=("BTCUSDT",))
    try:
        with _tmpfs(tmp_path / "disk", "64m") as disk:
            archive = disk / "archive"
            args = ("record", "--streams", "btcusdt@aggTrade,btcusdt@bookTicker", "--ws-url",
                    sim.ws_url, "--rest-url", sim.rest_url, "--archive", str(archive))
            first = ticktape(*args, "--duration", "1", cwd=tmp_path)
            before = _archived(archive)
            _remount(disk, "ro")
            refused = ticktape(*args, "--duration", "1", cwd=tmp_path)
            verified = _verified(archive)
            still = _archived(archive)
            _remount(disk, "rw")
            again = ticktape(*args, "--duration", "1", cwd=tmp_path)
            after = _archived(archive)
    finally:
        sim.stop()
    assert first.returncode == 0 and before
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("ticktape: error:") and "not writable" in lines[-1]
    assert "Traceback" not in refused.stderr
    assert verified and still == before
    assert again.returncode == 0 and before < after
