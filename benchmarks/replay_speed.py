"""Replay at speed 0: ``Replayer`` delivering ``Message`` objects across 8 merged streams.

Baseline: pyarrow ``iter_batches`` over the same files producing ``(recv_ns, raw)`` tuples
(no merge, no ``Message``): the floor of reading the archive from Python. Where the writer
stored ``raw`` as null (its typed columns re-encode to it: DESIGN.md storage budget), the
baseline restores it with ``schemas.formatters.restore_raw_column`` too, as replay must.
Besides the rate, the process CPU time per message is reported (it moves much less than the
rate on a shared machine), and two variants of the session: ``raw`` stored on every row (the
replay path alone, without restoring text) and after ``compact``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._common import Config, Figure, Outcome, at_least, missing
from benchmarks._feed import STREAMS
from benchmarks._session import parquet_files, session_archive
from schemas.message import Event

NAME = "replay"
KEYS = ["replay_max_msgs_per_s", "replay_read_baseline_msgs_per_s"]


def _stream_of(path: Path) -> str:
    return path.parent.parent.name.removeprefix("stream=")


def read_baseline(files: list[Path]) -> int:
    """Read ``(recv_ns, raw)`` tuples from every file; return the row count."""
    from schemas.formatters import restore_raw_column

    n = 0
    for f in files:
        pf = pq.ParquetFile(f)
        try:
            columns: list[str] | None = ["recv_ns", "raw"]
            done = 0
            for batch in pf.iter_batches(batch_size=65_536, columns=columns):
                if batch.column("raw").null_count:
                    columns = None  # every column, to restore the text
                    break
                n += len(list(zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(),
                                  strict=True)))
                done += batch.num_rows
            if columns is None:
                for batch in pf.iter_batches(batch_size=65_536):
                    if done >= batch.num_rows:
                        done -= batch.num_rows
                        continue
                    batch, done = batch.slice(done), 0
                    raw = restore_raw_column(_stream_of(f), batch)
                    n += len(list(zip(batch.column("recv_ns").to_pylist(), raw.to_pylist(),
                                      strict=True)))
        finally:
            pf.close()
    return n


def restore_cost(files: list[Path]) -> dict[str, float]:
    """CPU us per row of ``restore_raw_column`` per event type, on the rows stored without
    ``raw`` (read in the replay reader's batches; best of 3)."""
    from replay._archive import DEFAULT_BATCH_ROWS
    from schemas.formatters import restore_raw_column

    by_channel: dict[str, list[tuple[str, pa.RecordBatch]]] = {}
    for f in files:
        stream = _stream_of(f)
        with pq.ParquetFile(f) as pf:
            batches = [b for b in pf.iter_batches(batch_size=DEFAULT_BATCH_ROWS)
                       if b.column("raw").null_count]
        by_channel.setdefault(stream.split("@", 1)[1], []).extend((stream, b) for b in batches)
    out: dict[str, float] = {}
    for channel, items in sorted(by_channel.items()):
        rows = sum(b.num_rows for _, b in items)
        if not rows:
            continue
        best = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            for name, batch in items:
                restore_raw_column(name, batch)
            best = min(best, time.process_time() - c0)
        out[channel] = 1e6 * best / rows
    return out


def raw_stored_copy(cfg: Config, root: Path) -> Path:
    """A copy of the session with ``raw`` stored on every row (restored where null)."""
    from schemas.formatters import restore_raw_column

    copy = cfg.workdir / f"{root.name}-raw"
    if (copy / "streams").is_dir():
        return copy
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    for f in parquet_files(copy):
        table = pq.read_table(f)
        raw = table.column("raw")
        if raw.null_count:
            full = pa.concat_arrays([restore_raw_column(_stream_of(f), b)
                                     for b in table.to_batches()])
            table = table.set_column(table.schema.get_field_index("raw"), "raw", full)
            pq.write_table(table, f, compression="zstd")
    return copy


async def replay_all(root: Path) -> int:
    """Replay every benchmark stream at speed 0 into a no-op async handler."""
    from replay import Replayer

    async def noop(event: Event) -> None:
        return None

    stats = await Replayer(root, streams=list(STREAMS), speed=0).run(noop)
    return stats.messages


def timed_replay(root: Path) -> tuple[int, float, float]:
    """``(messages, wall s, process CPU s)`` of one :func:`replay_all`."""
    t0, c0 = time.perf_counter(), time.process_time()
    n = asyncio.run(replay_all(root))
    return n, time.perf_counter() - t0, time.process_time() - c0


def compacted_copy(cfg: Config, root: Path) -> Path | str:
    """A compacted copy of the session archive (built once per run), or why not."""
    reason = missing("replay._compact")
    if reason:
        return reason
    from replay._compact import compact

    copy = cfg.workdir / f"{root.name}-compacted"
    if not (copy / "streams").is_dir():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy)
        compact(copy, now_ns=2**62)
    return copy


def run(cfg: Config) -> Outcome:
    """Measure both, best of a few runs each, interleaved; then the compacted copy."""
    out = Outcome()
    reason = missing("replay._replayer")
    root = session_archive(cfg, cfg.pick(300_000, 1_000_000))
    if reason or isinstance(root, str):
        out.not_measured("replay speed 0, 8 streams", KEYS, reason or str(root), "msgs/s")
        return out
    files = parquet_files(root)
    best_base = best_replay = 0.0
    n_base = n_replay = 0
    cpu_ns = float("inf")
    for _ in range(cfg.pick(2, 3)):
        t0 = time.perf_counter()
        n_base = read_baseline(files)
        best_base = max(best_base, n_base / (time.perf_counter() - t0))
        n_replay, wall, cpu = timed_replay(root)
        best_replay = max(best_replay, n_replay / wall)
        cpu_ns = min(cpu_ns, 1e9 * cpu / max(1, n_replay))
    if n_replay != n_base:
        out.notes.append(f"replay: delivered {n_replay:,} messages, files hold {n_base:,}")
    out.figures.append(Figure(f"replay speed 0, 8 streams ({n_replay:,} msgs)", best_replay,
                              "msgs/s", best_base, ">= 500k msgs/s",
                              at_least(best_replay, 500_000)))
    out.figures.append(Figure("replay speed 0, process CPU per message", cpu_ns, "ns/msg",
                              goal="reported"))
    costs = restore_cost(files)
    if costs:
        out.notes.append("replay: restoring raw (live layout), CPU per row: " + ", ".join(
            f"{channel} {us:.2f} us" for channel, us in costs.items()))
    out.keys.update({
        "replay_max_msgs_per_s": round(best_replay),
        "replay_read_baseline_msgs_per_s": round(best_base),
        "replay_ratio": round(best_replay / best_base, 3) if best_base else None,
        "replay_cpu_ns_per_msg": round(cpu_ns),
    })
    variants: list[tuple[str, str, Path | str]] = [
        ("raw stored on every row", "replay_raw_stored", raw_stored_copy(cfg, root)),
        ("after compact", "replay_compacted", compacted_copy(cfg, root)),
    ]
    for label, key, archive in variants:
        label = f"replay speed 0, 8 streams, {label}"
        if isinstance(archive, str):
            out.not_measured(label, [f"{key}_msgs_per_s"], archive, "msgs/s")
            continue
        best, cpu_ns = 0.0, float("inf")
        for _ in range(cfg.pick(2, 3)):
            n, wall, cpu = timed_replay(archive)
            best = max(best, n / wall)
            cpu_ns = min(cpu_ns, 1e9 * cpu / max(1, n))
            if n != n_replay:
                out.notes.append(f"{label}: delivered {n:,} messages, not {n_replay:,}")
        out.figures.append(Figure(label, best, "msgs/s", best_replay,
                                  note=f"CPU {cpu_ns:,.0f} ns/msg; ratio to the session"))
        out.keys[f"{key}_msgs_per_s"] = round(best)
        out.keys[f"{key}_cpu_ns_per_msg"] = round(cpu_ns)
    return out


__all__ = ["NAME", "compacted_copy", "raw_stored_copy", "read_baseline", "replay_all",
           "restore_cost", "run", "timed_replay"]
