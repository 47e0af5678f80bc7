"""Recorder RSS at 20k msgs/s for a while, with a live handler that never returns.

The handler's bounded queue fills and then every further event is dropped for that handler
(counted, reported as a ``rejected`` gap), so memory must stay flat. The feeder paces the
standard mix at 20k msgs/s; to keep the feeder small the generated messages are sent in
loops, so ids repeat at each loop boundary (a few sequence gaps, repaired against the
feeder's empty REST answers). RSS is sampled every half second; the key is the process peak
(``VmHWM``, which includes the final seal after the stop), the sampled maximum while
recording is reported beside it, and the growth over the second half of the recording shows
whether it is flat. The recorder's partition writer runs in a child process: samples cover
the process tree, and the peak is the recorder's ``VmHWM`` plus the writer's (a sum of two
peaks, so an upper bound), or the largest sample if that is higher.
"""

from __future__ import annotations

from benchmarks._common import Config, Figure, Outcome, at_most, missing
from benchmarks._runs import guarded, run_consumer

NAME = "memory"
RATE = 20_000.0
KEYS = ["recorder_rss_mb_peak"]
FEED = 150_000
"""Distinct messages generated; sent ``loops`` times."""


def run(cfg: Config) -> Outcome:
    """One paced run of the recorder with the stuck handler."""
    out = Outcome()
    seconds = cfg.pick(15, 60)
    total = int(RATE * seconds)
    loops = max(1, total // FEED)
    reason = missing("recorder._recorder")
    work = cfg.workdir / NAME
    work.mkdir(exist_ok=True)
    rec, why = (None, reason) if reason else guarded(lambda: run_consumer(
        work, "recorder", FEED * loops, rate=RATE, loops=loops, feed_count=FEED,
        timeout=seconds + 60.0, extra=("--stuck-handler", "--max-seconds", str(seconds + 5)),
        end_key="t_sealed_ns", sample_rss=True))
    if rec is None:
        out.not_measured("recorder RSS peak, 20k msgs/s, stuck handler", KEYS, why, "MB")
        return out
    writer_kb = (rec.output.get("storage") or {}).get("writer_peak_rss_kb") or 0
    sampled = max((mb for _, mb in rec.rss_samples), default=0.0)
    rec.rss_peak_mb = max(rec.rss_peak_mb + writer_kb / 1024, sampled)
    # Growth is judged while recording: after the stop the recorder seals its partitions,
    # a one-off peak that VmHWM (the key) does include.
    cutoff = (rec.output["t_received_ns"] - rec.output["feed_t_first_ns"]) / 1e9
    samples = [mb for t, mb in rec.rss_samples if mb > 0 and t <= cutoff]
    half = samples[len(samples) // 2:] if samples else []
    growth = (half[-1] - half[0]) if len(half) >= 2 else 0.0
    steady_max = max(samples) if samples else 0.0
    recv_s = (rec.output["t_received_ns"] - rec.output["t_first_ns"]) / 1e9
    rate = rec.received / recv_s if recv_s > 0 else 0.0
    out.figures.append(Figure(
        f"recorder RSS peak, {seconds} s at 20k msgs/s, stuck handler "
        f"({rec.received:,} msgs at {rate:,.0f}/s)", rec.rss_peak_mb, "MB", None,
        "< 200 MB and flat", at_most(rec.rss_peak_mb, 200) and at_most(growth, 20)))
    out.figures.append(Figure("recorder RSS max while recording (before the final seal)",
                              steady_max, "MB", goal="< 200 MB",
                              passed=at_most(steady_max, 200)))
    out.figures.append(Figure("recorder RSS growth over the second half of recording", growth,
                              "MB", goal="flat (< 20 MB)", passed=at_most(growth, 20)))
    out.keys.update({
        "recorder_rss_mb_peak": round(rec.rss_peak_mb, 1),
        "recorder_writer_rss_mb_peak": round(writer_kb / 1024, 1),
        "recorder_rss_mb_growth_second_half": round(growth, 1),
        "recorder_rss_mb_max_while_recording": round(steady_max, 1),
        "recorder_rss_mb_samples": [round(mb, 1) for mb in samples[:: max(1, len(samples) // 20)]],
        "memory_msgs_per_s_received": round(rate),
        "memory_handler_drops": rec.output.get("drops"),
    })
    return out


__all__ = ["NAME", "run"]
