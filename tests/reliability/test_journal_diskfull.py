"""Disk full and file-size limit in the middle of a run (subprocess): one-line ArchiveError,
sealed files intact, the journal keeps every unsealed row, recovery writes each exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recorder._journal import list_segments
from recorder._storage import Storage
from schemas import layout
from schemas.checksum import rows_checksum as content_checksum

ROOT = Path(__file__).resolve().parents[2]


def archive_rows(root: Path) -> Counter[tuple[str, int, int, int, str]]:
    found: Counter[tuple[str, int, int, int, str]] = Counter()
    for p in (root / layout.STREAMS_DIR).glob("stream=*/date=*/*.parquet"):
        stream = layout.parse_stream_dir(p.parent.parent.name) or ""
        t = pq.read_table(p, columns=["recv_ns", "conn_id", "seq", "raw"])
        cols = [t.column(i).to_pylist() for i in range(4)]
        found.update((stream, *row) for row in zip(*cols, strict=True))
    return found


CHILD = textwrap.dedent("""
    import resource, signal, sys
    sys.path.insert(0, sys.argv[1])
    import types
    # Load only the storage modules, not recorder/__init__ (aiohttp etc.): faster restarts.
    _pkg = types.ModuleType("recorder")
    _pkg.__path__ = [sys.argv[1] + "/recorder"]
    sys.modules["recorder"] = _pkg
    from pathlib import Path
    from recorder._journal import JournalConfig
    from recorder._storage import Storage
    from recorder._writer import WriterConfig
    from schemas.errors import ArchiveError
    from schemas.message import Message
    import os
    S = 1_000_000_000
    T0 = 1_771_200_000 * S
    root = Path(sys.argv[2])
    limit = int(sys.argv[3])
    if limit:  # like `ulimit -f`: set before start, so the writer process inherits it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    st = Storage(root, journal=JournalConfig(segment_bytes=16_000, fsync="every-flush"),
                 writer=WriterConfig(rotate_s=60, row_group_bytes=8_000))
    st.open()
    def m(i):
        return Message("btcusdt@aggTrade", T0 + i * S // 100, os.urandom(60).hex(), 1, i)
    st.append([m(i) for i in range(50)])
    st.flush(T0 + 100 * S)  # seals the first window: a sealed file exists before the limit
    import time
    for _ in range(500):
        if st.stats.sealed_files:
            break
        time.sleep(0.01)
    try:
        for k in range(50):
            base = 6000 + k * 100
            st.append([m(base + i) for i in range(100)])
            st.flush(T0 + base * S // 100)
        st.close()
    except ArchiveError as exc:
        print("ARCHIVE_ERROR", exc, flush=True)
        sys.exit(3)
    print("NO_ERROR", flush=True)
""")


def _fill_until_error(root: Path, limit: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(root), str(limit)],
                          capture_output=True, text=True, timeout=60)


def _check_after_error(root: Path, proc: subprocess.CompletedProcess[str], reason: str) -> None:
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("ARCHIVE_ERROR") and reason in line
    assert "Traceback" not in proc.stderr
    sealed = sorted((root / layout.STREAMS_DIR).rglob("*.parquet"))
    assert sealed, "the first window was sealed before the disk filled"
    for p in sealed:  # every visible partition is whole and matches its checksum
        md = pq.read_metadata(p).metadata or {}
        t = pq.read_table(p, columns=["recv_ns", "raw"])
        assert md[b"ticktape.content_sha256"].decode() == content_checksum(
            zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
    assert list_segments(root / layout.JOURNAL_DIR), "the journal keeps the unsealed rows"
    # With room again, recovery writes every journaled row exactly once.
    st = Storage(root)
    report = st.open()
    st.close()
    rows = archive_rows(root)
    assert max(rows.values()) == 1
    assert sum(rows.values()) >= 50 + report.written_messages - report.already_sealed


def test_file_size_limit_mid_run_gives_archive_error_and_loses_nothing(tmp_path: Path) -> None:
    proc = _fill_until_error(tmp_path, 40_000)
    _check_after_error(tmp_path, proc, "file too large")


def test_disk_full_on_tmpfs(tmp_path: Path) -> None:
    root = tmp_path / "small"
    root.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(root)],
            capture_output=True).returncode != 0:
        pytest.skip("needs root and mount for a tiny tmpfs")
    try:
        proc = _fill_until_error(root, 0)
        _check_after_error_on_full_disk(root, proc)
    finally:
        subprocess.run(["umount", str(root)], capture_output=True)


def _check_after_error_on_full_disk(root: Path, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("ARCHIVE_ERROR") and "disk full" in line
    for p in sorted((root / layout.STREAMS_DIR).rglob("*.parquet")):
        pq.read_metadata(p)  # whole files only
    assert list_segments(root / layout.JOURNAL_DIR)
