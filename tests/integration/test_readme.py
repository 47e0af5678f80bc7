"""The README's 5-minute tour is executed, command by command, so it never rots.

Console blocks between ``<!-- tour:start -->`` and ``<!-- tour:end -->``: each ``$ `` line
runs in bash from the repository root; a line ending in ``&`` starts a server in the
background (the test waits for its port). Python blocks in the tour run after the commands
before them. Ports 9443/9444 and ``/tmp/tt-tour`` are replaced with free ports and a temp dir.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tour_steps() -> list[tuple[str, str]]:
    text = README.read_text()
    tour = text.split("<!-- tour:start -->", 1)[1].split("<!-- tour:end -->", 1)[0]
    steps: list[tuple[str, str]] = []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", tour, flags=re.S):
        if lang == "console":
            steps.extend(("sh", line[2:]) for line in body.splitlines() if line.startswith("$ "))
        elif lang == "python":
            steps.append(("python", body))
    return steps


def _wait_port(port: int, proc: subprocess.Popen[bytes], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"background server exited with {proc.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port} after {limit_s} s")


def test_tour_has_every_part() -> None:
    commands = " ".join(cmd for _, cmd in _tour_steps())
    for verb in ("query", "stats", "replay", "sim", "record", "gaps", "verify", "serve"):
        assert f"ticktape {verb}" in commands


def test_readme_tour_runs(tmp_path: Path) -> None:
    ports = {"9443": str(_free_port()), "9444": str(_free_port())}
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    background: list[subprocess.Popen[bytes]] = []
    try:
        for kind, step in _tour_steps():
            for old, new in ports.items():
                step = step.replace(old, new)
            step = step.replace("/tmp/tt-tour", str(tmp_path / "tour"))
            if kind == "python":
                script = tmp_path / "client.py"
                script.write_text(step)
                done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env,
                                      capture_output=True, text=True, timeout=60, check=False)
                assert done.returncode == 0, done.stderr
                assert len(done.stdout.splitlines()) == 3
                continue
            if step.rstrip().endswith("&"):
                proc = subprocess.Popen(["bash", "-c", "exec " + step.rstrip()[:-1]], cwd=ROOT,
                                        env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
                background.append(proc)
                port = re.search(r"--port (\d+)", step)
                assert port, step
                _wait_port(int(port.group(1)), proc)
                continue
            done = subprocess.run(["bash", "-c", step], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=120, check=False)
            assert done.returncode == 0, f"{step}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr
            assert (done.stdout + done.stderr).strip(), step
    finally:
        for proc in background:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_readme_config_example_loads(tmp_path: Path) -> None:
    """The TOML under "Configuration" is a valid recorder config."""
    from recorder import load_config

    block = README.read_text().split("## Configuration", 1)[1]
    toml = re.search(r"```toml\n(.*?)```", block, flags=re.S)
    assert toml is not None
    path = tmp_path / "recorder.toml"
    path.write_text(toml.group(1))
    config = load_config(path).validated()
    assert "btcusdt@aggTrade" in config.streams
    assert config.rotate_s == 900 and config.retention_s == 90 * 86_400
    assert config.user_data
