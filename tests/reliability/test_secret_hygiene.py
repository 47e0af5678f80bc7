"""Whole-product secret hygiene: ``ticktape record --user-data`` as a subprocess with a fake
API key in the environment. The key and every listenKey the sim issued appear nowhere: archive
(paths, Parquet values and metadata), journal, logs, /metrics, the process argv. ``/metrics``
and ``serve`` bind 127.0.0.1 by default."""

from __future__ import annotations

import secrets
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq

from tests.reliability_support import RecorderProcess, SimProcess, recorder_toml, ticktape


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree_text(root: Path) -> str:
    parts: list[str] = []
    for path in sorted(root.rglob("*")):
        parts.append(str(path))
        if path.is_file() and path.suffix == ".parquet":
            pf = pq.ParquetFile(path)
            parts += [repr(pf.metadata.metadata), repr(pf.read().to_pylist())]
        elif path.is_file():
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def _listening(pid: int, port: int) -> list[str]:
    """Local addresses (hex, /proc/net/tcp form) on which ``pid``'s namespace listens on port."""
    out = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            addr, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                out.append(addr)
    return out


def test_no_secret_anywhere(tmp_path: Path) -> None:
    api_key = "FAKEKEY" + secrets.token_hex(16)
    sim = SimProcess(tmp_path, rate=100.0, symbols=("BTCUSDT",))
    port = _free_port()
    try:
        config = recorder_toml(tmp_path / "recorder.toml", streams=["btcusdt@aggTrade", "userData"],
                               archive=tmp_path / "archive", ws_url=sim.ws_url,
                               rest_url=sim.rest_url, metrics_port=port)
        with open(config, "a") as f:
            f.write("[user_data]\nenabled = true\n")
        recorder = RecorderProcess(tmp_path, config, extra_env={"TICKTAPE_API_KEY": api_key})
        recorder.start()
        assert recorder.proc is not None
        metrics = ""
        for _ in range(100):  # wait for /metrics to come up and user data to flow
            time.sleep(0.1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    metrics = r.read().decode()
            except OSError:
                continue
            if 'stream="userData"' in metrics:
                break
        argv = Path(f"/proc/{recorder.proc.pid}/cmdline").read_bytes().decode(errors="replace")
        environ_of_child_visible = "TICKTAPE_API_KEY" in argv
        bound = _listening(recorder.proc.pid, port)
        journal = _tree_text(tmp_path / "archive" / "journal")
        time.sleep(1.0)
        recorder.signal(signal.SIGTERM)
    finally:
        sim_out = sim.stop()
    assert recorder.exit_codes == [0]
    assert 'stream="userData"' in metrics
    loopback = ("0100007F", "00000000000000000000000001000000")
    assert bound and all(a in loopback for a in bound), bound
    assert not environ_of_child_visible
    listen_keys = {line.split('"stream":"', 1)[1].split("@", 1)[0]
                   for line in sim.send_log.read_text().splitlines()
                   if '"kind":"data"' in line and '"stream":"btcusdt@' not in line}
    assert listen_keys, "user data was sent"
    haystacks = {"archive": _tree_text(tmp_path / "archive"), "journal": journal,
                 "logs": recorder.logs(), "metrics": metrics, "argv": argv,
                 "sim output": sim_out}
    for name, text in haystacks.items():
        for secret in (api_key, *listen_keys):
            assert secret not in text, f"secret found in {name}"
    assert "Traceback" not in recorder.logs()


def test_serve_binds_loopback_by_default() -> None:
    out = ticktape("serve", "--help")
    assert "--host" in out.stdout and "127.0.0.1" in out.stdout
    out = ticktape("sim", "--help")
    assert "127.0.0.1" in out.stdout
