"""kill -9 of a process writing through Storage at random moments, then restart.

One archive lives through every trial, as a recorder restarted by its supervisor would. After
each SIGKILL: every visible ``*.parquet`` is whole (readable, checksum matches). After each
restart: the recovery report knows the last journaled message. At the end: every message the
child reported as flushed to the journal is in Parquet, and no message appears twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from recorder._storage import Storage
from schemas import layout
from schemas.checksum import rows_checksum as content_checksum

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 20
S = 1_000_000_000
T0 = 1_771_200_000 * S
STREAMS = ("btcusdt@aggTrade", "btcusdt@depth@100ms", "ethusdt@bookTicker")

CHILD = textwrap.dedent("""
    import sys, time
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
    from schemas.message import Message
    S = 1_000_000_000
    STREAMS = ("btcusdt@aggTrade", "btcusdt@depth@100ms", "ethusdt@bookTicker")
    root, base, t0, queue_max = Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(
        sys.argv[5])
    st = Storage(root, journal=JournalConfig(segment_bytes=20_000, fsync="never"),
                 writer=WriterConfig(rotate_s=0.5, queue_max=queue_max, row_group_bytes=20_000))
    report = st.open()
    print("OPEN", report.last_recv_ns, report.written_messages, report.torn_bytes, flush=True)
    i = 0
    while True:
        batch = []
        for _ in range(30):
            raw = '{"e":"x","id":%d,"pad":"%s"}' % (base + i, "z" * (i % 13))
            batch.append(Message(STREAMS[i % 3], t0 + i * S // 1000, raw, 1, base + i))
            i += 1
        st.append(batch)
        st.flush(batch[-1].recv_ns)
        print("FLUSHED", base + i - 1, batch[-1].recv_ns, flush=True)
        time.sleep(0.002)
""")


def _raw(seq: int, base: int) -> str:
    pad = "z" * ((seq - base) % 13)
    return f'{{"e":"x","id":{seq},"pad":"{pad}"}}'


def _check_visible_files(root: Path, checked: set[Path]) -> None:
    for p in (root / layout.STREAMS_DIR).rglob("*.parquet"):
        if p in checked:
            continue
        md = pq.read_metadata(p)  # a partial file would fail here (no footer)
        t = pq.read_table(p, columns=["recv_ns", "raw"])
        kv = md.metadata or {}
        assert kv[b"ticktape.content_sha256"].decode() == content_checksum(
            zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
        checked.add(p)
    for p in (root / layout.GAPS_DIR).rglob("*.parquet"):
        pq.read_metadata(p)


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    root = tmp_path / "archive"
    flushed: dict[int, int] = {}  # trial base -> last seq reported flushed
    last_flushed_ns = 0
    checked: set[Path] = set()
    for trial in range(TRIALS):
        base = (trial + 1) * 1_000_000
        t0 = T0 + trial * 1000 * S
        queue_max = rng.choice([1, 2, 64])
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ROOT), str(root), str(base), str(t0),
             str(queue_max)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if trial % 4 == 3:
            time.sleep(rng.uniform(0.2, 0.5))  # may land inside open() / recovery
        else:
            opened = proc.stdout.readline().split()
            assert opened and opened[0] == "OPEN", proc.stderr.read() if proc.stderr else ""
            # Restart finds the last journaled message: the start of a recorder_down gap.
            if last_flushed_ns:
                assert opened[1] != "None" and int(opened[1]) >= last_flushed_ns
            time.sleep(rng.uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        for line in out.splitlines(keepends=True):
            parts = line.split()
            if line.endswith("\n") and len(parts) == 3 and parts[0] == "FLUSHED":
                flushed[base] = int(parts[1])
                last_flushed_ns = int(parts[2])
        _check_visible_files(root, checked)

    st = Storage(root)
    st.open()
    st.close()
    assert not list(root.rglob("*.tmp"))
    _check_visible_files(root, checked)
    rows: Counter[tuple[int, str]] = Counter()
    for p in (root / layout.STREAMS_DIR).rglob("*.parquet"):
        t = pq.read_table(p, columns=["seq", "raw"])
        rows.update(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
    assert rows, "the children wrote something"
    assert max(rows.values()) == 1, "a message was stored twice"
    for base, last in flushed.items():
        for seq in range(base, last + 1):
            assert rows[(seq, _raw(seq, base))] == 1, f"flushed message {seq} lost"
    assert len(flushed) >= TRIALS // 2
