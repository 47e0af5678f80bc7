"""``python -m benchmarks [--quick] [--json FILE] [--only NAME,..]``: run, print, save."""

from __future__ import annotations

import argparse
import importlib
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks import BENCHMARKS, REQUIRED_KEYS
from benchmarks._common import Config, Figure, Outcome
from benchmarks._feed import cache_dir


def machine() -> dict[str, Any]:
    """nproc, CPU model, Python version, load average at start."""
    import os

    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model or platform.processor(),
            "python": platform.python_version(), "loadavg_start": os.getloadavg()[0]}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.3g} {unit}".strip()


def render(console: Console, rows: list[tuple[str, Figure]]) -> None:
    """The result table: figure, baseline, ratio, goal, pass/miss."""
    table = Table(title="ticktape benchmarks", show_lines=False)
    for col in ("benchmark", "figure", "value", "baseline", "ratio", "goal", "result"):
        table.add_column(col, overflow="fold")
    for name, f in rows:
        ratio = f.ratio
        result = {True: "[green]pass[/]", False: "[red]miss[/]", None: ""}[f.passed]
        if f.value is None:
            result = "[yellow]not measured[/]"
        table.add_row(name, f.label + (f"\n[dim]{f.note}[/]" if f.note else ""),
                      _fmt(f.value, f.unit), _fmt(f.baseline, f.unit),
                      "-" if ratio is None else f"{ratio:.2f}", f.goal, result)
    console.print(table)


def markdown(doc: dict[str, Any]) -> str:
    """The result table of a JSON document as GitHub Markdown (for BENCHMARKS.md)."""
    lines = ["| benchmark | figure | value | baseline | ratio | goal | result |",
             "|---|---|---|---|---|---|---|"]
    for f in doc["figures"]:
        result = {True: "pass", False: "**miss**", None: ""}[f["passed"]]
        label = f["label"] + (f" ({f['note']})" if f["note"] else "")
        if f["value"] is None:
            result = "not measured"
        ratio = "-" if f["ratio"] is None else f"{f['ratio']:.2f}"
        lines.append(f"| {f['benchmark']} | {label} | {_fmt(f['value'], f['unit'])} | "
                     f"{_fmt(f['baseline'], f['unit'])} | {ratio} | {f['goal']} | {result} |")
    return "\n".join(lines) + "\n"


def run(names: list[str], quick: bool, console: Console, *, tiny: bool = False,
        cache: Path | None = None) -> dict[str, Any]:
    """Run the named benchmarks; return the JSON document.

    ``tiny`` and ``cache`` exist for the smoke test (sizes / 100, a scratch cache).
    """
    keys: dict[str, Any] = dict.fromkeys(REQUIRED_KEYS)
    notes: list[str] = []
    rows: list[tuple[str, Figure]] = []
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ticktape-bench-") as tmp:
        cfg = Config(quick=quick, workdir=Path(tmp), cache=cache or cache_dir(), tiny=tiny)
        for name in names:
            console.print(f"[bold]running {name}[/] ...")
            t0 = time.perf_counter()
            try:
                mod = importlib.import_module(f"benchmarks.{BENCHMARKS[name]}")
                out: Outcome = mod.run(cfg)
            except Exception as exc:  # a broken piece must not hide the other figures
                out = Outcome()
                out.figures.append(Figure(name, None, "", note=f"not measured: "
                                          f"{type(exc).__name__}: {exc}"))
                notes.append(f"{name}: {traceback.format_exc(limit=3)}")
            timings[name] = round(time.perf_counter() - t0, 1)
            keys.update(out.keys)
            notes.extend(out.notes)
            rows.extend((name, f) for f in out.figures)
            shutil.rmtree(Path(tmp) / name, ignore_errors=True)
    render(console, rows)
    for n in notes:
        console.print(f"- {n}", markup=False, highlight=False)
    doc: dict[str, Any] = dict(keys)
    doc["meta"] = {**machine(), "quick": quick, "tiny": tiny, "seconds": timings,
                   "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    doc["notes"] = notes
    doc["figures"] = [
        {"benchmark": n, "label": f.label, "value": f.value, "unit": f.unit,
         "baseline": f.baseline, "ratio": f.ratio, "goal": f.goal, "passed": f.passed,
         "note": f.note}
        for n, f in rows
    ]
    return doc


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller runs (< 3 min on 2 cores)")
    p.add_argument("--json", type=Path, help="write the figures as JSON to this file")
    p.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHMARKS)}")
    p.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    p.add_argument("--from-json", type=Path, help="do not run: render --markdown from a "
                   "JSON file written by an earlier run")
    args = p.parse_args(argv)
    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            p.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    if args.from_json:
        doc = orjson.loads(args.from_json.read_bytes())
        text = markdown(doc)
        if args.markdown:
            args.markdown.write_text(text)
        else:
            print(text, end="")
        return 0
    console = Console(width=160)
    t0 = time.perf_counter()
    doc = run(names, args.quick, console)
    console.print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        console.print(f"wrote {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
