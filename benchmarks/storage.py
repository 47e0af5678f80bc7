"""Storage: archive bytes per message (live and compacted) vs Tardis-style gzip NDJSON.

The same messages are written three ways: the baseline ``<recv_ns> <frame>\\n`` lines gzipped
at level 6 (what Tardis.dev ships), the live archive as the recorder's writer produces it
(``recorder._writer.PartitionSet``: rotation, row groups, zstd), and the same archive after
``replay._compact.compact``. Exact raw recovery is checked by reading every stored row back
(``schemas.formatters.restore_raw_column`` where ``raw`` was dropped) and comparing it with
what was received.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _rawderive as rawderive
from benchmarks._common import Config, Figure, Outcome, at_most, missing
from benchmarks._feed import FeedMessage, cached
from benchmarks._sample import sample_messages
from schemas.message import Message
from schemas.streams import parse_stream

NAME = "storage"
SESSION_T0_NS = 1_771_263_510_000_000_000 - 1_270_000_000
"""Receive time of the first synthetic message (about 1.27 s before its ``E``, like the
hftbacktest capture)."""


LIVE_SPAN_S = 2_400
"""The storage session is stretched over 40 minutes, so the live writer (15-minute rotation)
seals several partitions per stream and ``compact`` has real work to do."""


def to_messages(feed: Sequence[FeedMessage], t0_ns: int = SESSION_T0_NS,
                span_s: float | None = None) -> list[Message]:
    """Feed messages as received ``Message`` objects of one connection.

    With ``span_s`` the arrival offsets are scaled so the session lasts that long.
    """
    scale = 1.0
    if span_s is not None and feed and feed[-1].offset_ns > 0:
        scale = span_s * 1e9 / feed[-1].offset_ns
    return [Message(m.stream, t0_ns + int(m.offset_ns * scale), m.payload, conn_id=1, seq=i)
            for i, m in enumerate(feed)]


def ndjson_gzip_bytes(msgs: Sequence[Message]) -> int:
    """Bytes of Tardis-style ``<recv_ns> <combined frame>`` lines at gzip level 6."""
    from schemas.wire import make_envelope

    body = "".join(f"{m.recv_ns} {make_envelope(m.stream, m.raw)}\n" for m in msgs).encode()
    return len(gzip.compress(body, compresslevel=6))


def tree_bytes(root: Path) -> dict[str, int]:
    """Bytes of the ``.parquet`` files under ``root/streams`` per stream."""
    out: dict[str, int] = defaultdict(int)
    for f in (root / "streams").glob("stream=*/date=*/*.parquet"):
        out[f.parent.parent.name.removeprefix("stream=")] += f.stat().st_size
    return dict(out)


def write_live(root: Path, msgs: Sequence[Message]) -> None:
    """Write ``msgs`` the way the live writer thread does (``PartitionSet``)."""
    from recorder._writer import PartitionSet, WriterConfig

    parts = PartitionSet(root, WriterConfig())
    try:
        parts.add(msgs, 0)
        parts.seal_all()
    except BaseException:
        parts.abort_all()
        raise


def raw_recovered(root: Path, msgs: Sequence[Message]) -> tuple[bool, str]:
    """Whether every stored row gives back its exact received text, and how it was read.

    Each partition is read with pyarrow; ``schemas.formatters.restore_raw_column`` (the one
    reader function for rows whose ``raw`` was dropped) rebuilds the text where present,
    else the ``raw`` column is taken as stored. Rows are matched on ``(stream, conn_id, seq)``.
    """
    import pyarrow.parquet as pq

    restore: Any = None
    how = "raw column as stored"
    with contextlib.suppress(ImportError):
        from schemas.formatters import restore_raw_column as restore

        how = "schemas.formatters.restore_raw_column"
    want = {(m.stream, m.conn_id, m.seq): m.raw for m in msgs}
    got: dict[tuple[str, Any, Any], Any] = {}
    try:
        for f in (root / "streams").glob("stream=*/date=*/*.parquet"):
            stream = f.parent.parent.name.removeprefix("stream=")
            table = pq.read_table(f)
            for batch in table.to_batches():
                texts = (restore(stream, batch) if restore is not None
                         else batch.column("raw")).to_pylist()
                for conn, seq, text in zip(batch.column("conn_id").to_pylist(),
                                           batch.column("seq").to_pylist(), texts, strict=True):
                    got[(stream, conn, seq)] = text
    except Exception as exc:  # any failure to read back means "not recoverable"
        return False, f"{how}: {type(exc).__name__}: {exc}"
    return got == want, how


def stored_raw_texts(root: Path) -> tuple[int, int]:
    """``(rows, rows whose raw text is stored)`` over the partitions under ``root``."""
    import pyarrow.parquet as pq

    rows = kept = 0
    for f in (root / "streams").glob("stream=*/date=*/*.parquet"):
        raw = pq.read_table(f, columns=["raw"]).column("raw")
        rows += len(raw)
        kept += len(raw) - raw.null_count
    return rows, kept


def measure_set(workdir: Path, label: str, msgs: Sequence[Message], out: Outcome,
                primary: bool) -> None:
    """Write, compact and compare one message set; add figures (and keys when primary)."""
    n = len(msgs)
    base = ndjson_gzip_bytes(msgs) / n
    reason = missing("recorder._writer")
    if reason:
        out.not_measured(f"storage live ({label})", ["storage_ratio_live"] if primary else [],
                         reason)
        return
    root = workdir / f"storage-{label}"
    shutil.rmtree(root, ignore_errors=True)
    write_live(root, msgs)
    live = tree_bytes(root)
    live_per = sum(live.values()) / n
    counts: dict[str, int] = defaultdict(int)
    for m in msgs:
        counts[m.stream] += 1
    per_type: dict[str, float] = defaultdict(float)
    per_type_n: dict[str, int] = defaultdict(int)
    for stream, size in live.items():
        channel = parse_stream(stream).channel
        per_type[channel] += size
        per_type_n[channel] += counts.get(stream, 0)
    by_type = {k: round(per_type[k] / per_type_n[k], 2) for k in per_type if per_type_n[k]}
    files = len(list((root / "streams").glob("stream=*/date=*/*.parquet")))
    rows, kept = stored_raw_texts(root)
    out.notes.append(f"storage ({label}): {n:,} messages, {len(live)} streams, "
                     f"{files} live partition files written by recorder._writer.PartitionSet; "
                     f"raw text stored live on {kept:,} of {rows:,} rows (the rest re-derive)")
    out.figures.append(Figure(f"storage live B/msg ({label}, {n:,} msgs)", live_per, "B/msg",
                              base, "ratio <= 0.75", at_most(live_per / base, 0.75)))
    comp_reason = missing("replay._compact")
    comp_per: float | None = None
    if comp_reason is None:
        from replay._compact import compact

        report = compact(root, now_ns=2**62)
        comp_per = sum(tree_bytes(root).values()) / n
        after = len(list((root / "streams").glob("stream=*/date=*/*.parquet")))
        merged = len(getattr(report, "merges", []))
        out.notes.append(f"storage ({label}): compact rewrote {merged} group(s); {files} live "
                         f"files -> {after} (a lone live file is rewritten with the compacted "
                         "plan too)")
        out.figures.append(Figure(f"storage compacted B/msg ({label})", comp_per, "B/msg",
                                  base, "ratio <= 0.5", at_most(comp_per / base, 0.5)))
    else:
        out.figures.append(Figure(f"storage compacted ({label})", None, "B/msg",
                                  note=f"not measured: {comp_reason}"))
    exact, how = raw_recovered(root, msgs)
    derive = rawderive.measure(msgs)
    out.notes.extend(rawderive.describe(label, derive))
    out.keys["raw_derive_rows_per_s" if primary else f"raw_derive_rows_per_s_{label}"] = {
        k: dict(v) for k, v in derive.items()}
    out.notes.append(f"storage ({label}): exact raw recovery after write"
                     f"{' + compact' if comp_per is not None else ''}: {exact} ({how})")
    if primary:
        out.keys.update({
            "bytes_per_msg": by_type,
            "ndjson_gzip_bytes_per_msg": round(base, 2),
            "archive_live_bytes_per_msg": round(live_per, 2),
            "archive_compacted_bytes_per_msg": None if comp_per is None else round(comp_per, 2),
            "storage_ratio_live": round(live_per / base, 3),
            "storage_ratio_compacted": None if comp_per is None else round(comp_per / base, 3),
            "storage_raw_exact": exact,
        })
        out.keys["storage_ratio"] = out.keys["storage_ratio_live"]
    else:
        out.keys[f"storage_ratio_live_{label}"] = round(live_per / base, 3)
        out.keys[f"storage_ratio_compacted_{label}"] = (
            None if comp_per is None else round(comp_per / base, 3))
    shutil.rmtree(root, ignore_errors=True)


def run(cfg: Config) -> Outcome:
    """Measure storage on the synthetic mix, and on the shipped sample when present."""
    out = Outcome()
    for key in ("bytes_per_msg", "ndjson_gzip_bytes_per_msg", "storage_ratio",
                "storage_ratio_live", "storage_ratio_compacted"):
        out.keys[key] = None
    n = cfg.pick(50_000, 300_000)
    msgs = to_messages(cached(n, directory=cfg.cache), span_s=LIVE_SPAN_S)
    out.keys["ndjson_gzip_bytes_per_msg"] = round(ndjson_gzip_bytes(msgs) / n, 2)
    measure_set(cfg.workdir, "synthetic", msgs, out, primary=True)
    sample, why = sample_messages()
    if sample:
        measure_set(cfg.workdir, "sample", sample, out, primary=False)
    else:
        out.notes.append(f"storage (sample): not measured: {why}")
    return out


__all__ = ["NAME", "ndjson_gzip_bytes", "run", "to_messages", "tree_bytes"]
