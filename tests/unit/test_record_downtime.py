"""A restarted recorder records its downtime even when the first row it stores is REST data.

Found by the chaos soak: an instance that stored only a depth snapshot before it was stopped
again never wrote its ``recorder_down`` gap, and the next start's gap began after it.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from recorder import Recorder, RecorderConfig, Storage
from schemas.message import GapKind, Message, Source


def _gaps(root: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for f in sorted((root / "gaps").rglob("*.parquet")):
        rows.extend(pq.read_table(f).to_pylist())
    return rows


def test_first_stored_rest_row_closes_the_downtime_gap(tmp_path: Path) -> None:
    root = tmp_path / "arc"
    rec = Recorder(RecorderConfig(streams=("btcusdt@depth@100ms",), archive=root))
    storage = Storage(root)
    storage.open()
    rec.storage = storage
    last_run_ended = 1_700_000_000_000_000_000
    rec._down_since = last_run_ended
    snapshot = Message("btcusdt@depthSnapshot", last_run_ended + 5_000_000_000,
                       '{"lastUpdateId":1,"E":1,"T":1,"bids":[],"asks":[]}', source=Source.REST)
    rec._store_rest([snapshot])
    storage.close()
    (gap,) = [g for g in _gaps(root) if g["kind"] == GapKind.RECORDER_DOWN.value]
    assert (gap["stream"], gap["start_ns"], gap["end_ns"]) == ("*", last_run_ended,
                                                               snapshot.recv_ns)
    rows = pq.read_table(next((root / "streams").rglob("*.parquet"))).num_rows
    assert rows == 1
