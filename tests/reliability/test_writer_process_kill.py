"""kill -9 of a recorder whose partition writer process is still busy: the writer exits by
itself (sealing nothing more than the item it was in), keeps the archive locked until then, and
the next start recovers every journaled row exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recorder._storage import Storage
from schemas import layout
from schemas.checksum import rows_checksum
from schemas.errors import ArchiveError

ROOT = Path(__file__).resolve().parents[2]
S = 1_000_000_000
T0 = 1_771_300_000 * S

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from recorder._journal import JournalConfig
    from recorder._storage import Storage
    from recorder._writer import WriterConfig
    from schemas.message import Message
    S = 1_000_000_000
    root, t0 = Path(sys.argv[2]), int(sys.argv[3])
    st = Storage(root, journal=JournalConfig(fsync="never"), batch_max=50,
                 writer=WriterConfig(rotate_s=0.5, row_group_bytes=4_000, queue_max=4))
    st.open()
    print("OPEN", st._writer.pid, flush=True)
    i = 0
    while True:
        batch = []
        for _ in range(25):
            batch.append(Message("btcusdt@aggTrade", t0 + i * S // 500,
                                 '{"e":"x","id":%d}' % i, 1, i))
            i += 1
        st.append(batch)
        st.flush(batch[-1].recv_ns)
        print("FLUSHED", i - 1, flush=True)
        time.sleep(0.002)
""")


def _state(pid: int) -> str:
    """Process state letter ('Z' zombie), or '' when gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def _rows(root: Path) -> Counter[int]:
    seqs: Counter[int] = Counter()
    for p in (root / layout.STREAMS_DIR).rglob("*.parquet"):
        t = pq.read_table(p, columns=["recv_ns", "seq", "raw"])
        md = pq.read_metadata(p).metadata or {}
        recv: list[int] = t.column(0).to_pylist()  # type: ignore[assignment]
        raws: list[str] = t.column(2).to_pylist()  # type: ignore[assignment]
        assert md[b"ticktape.content_sha256"].decode() == rows_checksum(
            zip(recv, raws, strict=True))
        seq: list[int] = t.column(1).to_pylist()  # type: ignore[assignment]
        seqs.update(seq)
    return seqs


def test_busy_writer_outliving_a_killed_recorder_publishes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    err = tmp_path / "stderr.txt"
    with err.open("w") as err_file:  # a file: the writer inherits stderr, and may outlive
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(root), str(T0)],
                                stdout=subprocess.PIPE, stderr=err_file, text=True)
    assert proc.stdout is not None
    opened = proc.stdout.readline().split()
    assert opened and opened[0] == "OPEN", err.read_text()
    writer = int(opened[1])
    last = -1
    while last < 2000:  # a few rotations sealed, more partitions open
        fields = proc.stdout.readline().split()
        assert fields and fields[0] == "FLUSHED"
        last = int(fields[1])
    os.kill(writer, signal.SIGSTOP)  # the writer is frozen with batches in flight
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.read_text()
    for line in out.splitlines(keepends=True):
        parts = line.split()
        if line.endswith("\n") and len(parts) == 2 and parts[0] == "FLUSHED":
            last = int(parts[1])
    try:
        assert _state(writer) not in ("", "Z"), "the writer outlives its recorder for now"
        with pytest.raises(ArchiveError, match="in use by another recorder"):
            Storage(root, lock_timeout_s=0.3).open()  # it still holds the archive lock
    finally:
        os.kill(writer, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while _state(writer) not in ("", "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(writer) in ("", "Z"), "an orphaned writer must exit on its own"
    # Its open partitions were aborted, not sealed: their rows come back from the journal.
    st = Storage(root)
    report = st.open()
    st.close()
    assert report.last_recv_ns is not None and report.last_recv_ns >= T0 + last * S // 500
    assert not list(root.rglob("*.tmp"))
    seqs = _rows(root)
    assert max(seqs.values()) == 1, "a row was stored twice"
    assert all(seqs[i] == 1 for i in range(last + 1)), "a journaled row was lost"
