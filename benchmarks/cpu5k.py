"""CPU per message at a paced 5,000 msgs/s: the recorder vs the bare client.

A 24/7 recorder lives at a few thousand messages a second, where wake-ups, not parsing,
dominate. The feeder writes the due frames about every millisecond. CPU is the consumer's
user+system time from the first frame to its exit, sealing included (``os.wait4`` rusage
minus a ``/proc`` sample at the start), divided by the messages it received; the recorder's
partition writer process is part of it (sampled with its parent, reaped by it, so counted by
``wait4``).
"""

from __future__ import annotations

from benchmarks._common import Config, Figure, Outcome, at_most, missing
from benchmarks._runs import guarded, run_consumer

NAME = "cpu5k"
RATE = 5_000.0
KEYS = ["ingest_cpu_us_per_msg_5k", "baseline_cpu_us_per_msg_5k"]


def run(cfg: Config) -> Outcome:
    """Both consumers on the same paced feed, one after the other."""
    out = Outcome()
    seconds = cfg.pick(8, 30)
    n = int(RATE * seconds)
    work = cfg.workdir / NAME
    work.mkdir(exist_ok=True)
    base, why = guarded(lambda: run_consumer(work, "client", n, rate=RATE,
                                             timeout=seconds + 60.0))
    base_us = base.cpu_us_per_msg if base else None
    out.keys["baseline_cpu_us_per_msg_5k"] = round(base_us, 2) if base_us else None
    if base is None:
        out.notes.append(f"cpu5k baseline failed: {why}")
    reason = missing("recorder._recorder")
    rec, why = (None, reason) if reason else guarded(lambda: run_consumer(
        work, "recorder", n, rate=RATE, timeout=seconds + 60.0,
        extra=("--max-seconds", str(seconds + 20)), end_key="t_sealed_ns"))
    if rec is None:
        out.not_measured("CPU per msg at 5k msgs/s, recorder", ["ingest_cpu_us_per_msg_5k"],
                         why, "us/msg")
        if base_us:
            out.figures.append(Figure("CPU per msg at 5k msgs/s, bare client", base_us,
                                      "us/msg"))
        return out
    out.figures.append(Figure(f"CPU per msg at 5k msgs/s ({rec.received:,} msgs, {seconds} s)",
                              rec.cpu_us_per_msg, "us/msg", base_us, "<= 2x the bare client",
                              at_most(rec.cpu_us_per_msg / base_us, 2.0) if base_us else None))
    out.keys.update({
        "ingest_cpu_us_per_msg_5k": round(rec.cpu_us_per_msg, 2),
        "ingest_cpu_ratio_5k": round(rec.cpu_us_per_msg / base_us, 3) if base_us else None,
        "ingest_cpu_pct_5k": round(100 * rec.cpu_s / rec.seconds, 1) if rec.seconds else None,
        "baseline_cpu_pct_5k": (round(100 * base.cpu_s / base.seconds, 1)
                                if base and base.seconds else None),
    })
    return out


__all__ = ["NAME", "run"]
