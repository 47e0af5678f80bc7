"""The query and archive-tool commands, end to end through ``ticktape.cli.main``."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from replay._catalog import connect
from tests.tools_support import T0, agg_trades, write_partition
from ticktape.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
SEC = 1_000_000_000
COUNT_SQL = "SELECT stream, count(*) AS n FROM messages GROUP BY 1 ORDER BY 1"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.fixture(scope="module")
def sample_counts() -> dict[str, int]:
    con = connect(SAMPLE)
    try:
        return {str(s): int(n) for s, n in con.execute(COUNT_SQL).fetchall()}
    finally:
        con.close()


def test_sample_archive_is_shipped_and_queryable(sample_counts: dict[str, int]) -> None:
    assert set(sample_counts) == {"btcusdt@bookTicker", "btcusdt@depth@0ms",
                                  "btcusdt@depthSnapshot", "btcusdt@trade"}
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 2_000_000


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "ndjson"])
def test_query_formats(capsys: pytest.CaptureFixture[str], sample_counts: dict[str, int],
                       fmt: str) -> None:
    code, out, err = run(capsys, "query", "--archive", str(SAMPLE), COUNT_SQL, "--format", fmt)
    assert code == 0, err
    if fmt == "table":
        for stream, n in sample_counts.items():
            assert stream in out and str(n) in out
        assert "4 rows" in out
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0] == ["stream", "n"]
        assert {r[0]: int(r[1]) for r in rows[1:]} == sample_counts
    elif fmt == "json":
        assert {r["stream"]: r["n"] for r in orjson.loads(out)} == sample_counts
    else:
        rows = [orjson.loads(line) for line in out.splitlines()]
        assert {r["stream"]: r["n"] for r in rows} == sample_counts


def test_query_to_files(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                        sample_counts: dict[str, int]) -> None:
    target = tmp_path / "out.parquet"
    code, _, err = run(capsys, "query", "--archive", str(SAMPLE), COUNT_SQL,
                       "--format", "parquet", "--output", str(target))
    assert code == 0, err
    table = pq.read_table(target)
    assert dict(zip(table.column("stream").to_pylist(), table.column("n").to_pylist(),
                    strict=True)) == sample_counts
    code, _, err = run(capsys, "query", "--archive", str(SAMPLE),
                       "SELECT recv_time, price FROM trades ORDER BY recv_ns LIMIT 3",
                       "--format", "csv", "-o", str(tmp_path / "t.csv"))
    assert code == 0, err
    rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert rows[0] == ["recv_time", "price"] and len(rows) == 4
    assert rows[1][0].startswith("2024-08-08T23:54:15.")
    code, _, err = run(capsys, "query", "--archive", str(SAMPLE), "SELECT 1", "--format",
                       "parquet")
    assert code != 0 and "--output" in err


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT * FROM no_such_view",
                                 "SELECT nope FROM trades"])
def test_bad_sql_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], sql: str) -> None:
    code, out, err = run(capsys, "query", "--archive", str(SAMPLE), sql)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ticktape: error: ")
    assert "Error" in err


def test_real_entry_point(tmp_path: Path, sample_counts: dict[str, int]) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ok = subprocess.run([sys.executable, "-m", "ticktape", "query", "--archive", "data/sample",
                         "SELECT count(*) AS n FROM trades", "--format", "json"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert orjson.loads(ok.stdout) == [{"n": sample_counts["btcusdt@trade"]}]
    bad = subprocess.run([sys.executable, "-m", "ticktape", "query", "--archive", "data/sample",
                          "SELECT FROM WHERE"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1


def test_stats_gaps_verify_report_on_the_sample(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path,
                                                sample_counts: dict[str, int]) -> None:
    code, out, _ = run(capsys, "stats", "--archive", str(SAMPLE), "--format", "json")
    assert code == 0
    stats = {r["stream"]: r for r in orjson.loads(out)}
    assert {s: r["messages"] for s, r in stats.items()} == sample_counts
    # The capture's clock is ~1.27 s behind exchange time (data/README.md).
    assert -1300 < stats["btcusdt@trade"]["latency_p50_ms"] < -1200
    code, out, _ = run(capsys, "stats", "--archive", str(SAMPLE))
    assert code == 0 and "btcusdt@bookTicker" in out and "complete %" in out
    code, out, _ = run(capsys, "gaps", "--archive", str(SAMPLE))
    assert code == 0 and "0 gap(s)" in out
    code, out, _ = run(capsys, "gaps", "--archive", str(SAMPLE), "--format", "json")
    assert code == 0 and orjson.loads(out) == []
    code, out, _ = run(capsys, "verify", "--archive", str(SAMPLE))
    assert code == 0 and out.strip().endswith("OK")
    html = tmp_path / "r.html"
    code, out, _ = run(capsys, "report", "--archive", str(SAMPLE), "-o", str(html))
    assert code == 0 and html.read_text().count("<svg") == 2  # no gaps: no timeline chart


def test_verify_cli_reports_damage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    arc = Path(shutil.copytree(SAMPLE, tmp_path / "arc"))
    victim = next((arc / "streams" / "stream=btcusdt@trade").rglob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[:5000])
    (victim.parent / "x.parquet.tmp").write_bytes(b"")
    code, out, _ = run(capsys, "verify", "--archive", str(arc))
    assert code == 1
    assert "FAIL unreadable" in out and "FAIL tmp" in out and "FAILED (2 problem(s))" in out
    code, out, _ = run(capsys, "verify", "--archive", str(arc), "--format", "json")
    assert code == 1 and {p["kind"] for p in orjson.loads(out)["problems"]} == {"unreadable",
                                                                                "tmp"}


def test_compact_and_import_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    arc = tmp_path / "arc"
    msgs = agg_trades("btcusdt", T0, 30, SEC)
    for i in range(3):
        write_partition(arc, "btcusdt@aggTrade", msgs[i * 10:(i + 1) * 10])
    code, out, _ = run(capsys, "compact", "--archive", str(arc))
    assert code == 0 and "merged 3 files of btcusdt@aggTrade" in out
    code, out, _ = run(capsys, "compact", "--archive", str(arc))
    assert code == 0 and "nothing to compact" in out
    code, out, _ = run(capsys, "compact", "--archive", str(arc), "--max-bytes", "lots")
    assert code == 1
    capture = REPO / "tests" / "data" / "hftbacktest_btcusdt_20240808_head2500.txt.gz"
    code, out, err = run(capsys, "import", str(capture), "--archive", str(tmp_path / "imp"))
    assert code == 0, err
    assert "imported" in out and "btcusdt@depthSnapshot 1" in out
    code, out, err = run(capsys, "import", str(capture), "--archive", str(tmp_path / "imp"))
    assert code == 1 and "imported before" in err and err.count("\n") == 1


def test_sql_shell(sample_counts: dict[str, int]) -> None:
    from click.testing import CliRunner

    from ticktape.cli import cli

    result = CliRunner().invoke(cli, ["sql", "--archive", str(SAMPLE)], input=(
        "SELECT count(*) AS n\n FROM trades;\nSELEC oops;\n.quit\n"))
    assert result.exit_code == 0
    assert "views agg_trades" in result.output
    assert str(sample_counts["btcusdt@trade"]) in result.output
    assert "error: Parser Error" in result.output
