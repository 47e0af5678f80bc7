"""Hostile input against a running ``ticktape sim`` (a real subprocess): random request paths,
random and oversized SUBSCRIBE payloads, unknown methods, thousands of streams, wrong types.
Each gets Binance's error reply, a handshake refusal or a clean close; the server never dies
and a bystander client keeps receiving. Path traversal through stream names in URLs and
through ``--archive`` is impossible."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests.reliability_support import ROOT, SimProcess, env, ticktape

TIMEOUT = 5.0
"""Hang guard for one request (not a timing assertion)."""
MAX_FRAME = 1 << 22


class Bystander:
    """A client on ``btcusdt@bookTicker`` counting frames in a thread."""

    def __init__(self, url: str) -> None:
        self.url = url + "/public/ws/btcusdt@bookTicker"
        self.count = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with connect(self.url, open_timeout=TIMEOUT) as ws:
                while not self._stop.is_set():
                    try:
                        ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    self.count += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def still_receiving(self) -> bool:
        """True once a new frame arrives (polls for up to 5 s)."""
        before = self.count
        for _ in range(100):
            self._thread.join(0.05)
            if self.count > before:
                return True
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimProcess, Bystander]]:
    sim = SimProcess(tmp_path_factory.mktemp("hostile"), rate=200.0,
                     symbols=("BTCUSDT", "ETHUSDT"))
    bystander = Bystander(sim.ws_url)
    try:
        yield sim, bystander
    finally:
        bystander.close()
        out = sim.stop()
        assert "Traceback" not in out, out[-3000:]


def _outcome(ws: ClientConnection, text: str | bytes) -> str:
    """Send one control message; classify what comes back (data frames are skipped)."""
    ws.send(text)
    try:
        for _ in range(1000):
            frame = ws.recv(timeout=TIMEOUT)
            msg = json.loads(frame)
            if isinstance(msg, dict) and "id" in msg and "error" in msg:
                err = msg["error"]
                assert isinstance(err["code"], int) and isinstance(err["msg"], str)
                return "error"
            if isinstance(msg, dict) and "id" in msg and "result" in msg:
                return "result"
    except websockets.ConnectionClosed as exc:
        # A clean close carries a close frame; 1006 would be an aborted connection.
        assert exc.rcvd is not None, "connection aborted without a close frame"
        assert exc.rcvd.code != 1011, f"server error close: {exc.rcvd}"
        return "closed"
    raise AssertionError("no reply")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4), max_leaves=12)
_requests = st.one_of(
    st.fixed_dictionaries({"method": st.sampled_from(
        ["SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY",
         "subscribe", "DELETE", ""]), "params": _json_values, "id": _json_values}),
    st.dictionaries(st.text(max_size=10), _json_values, max_size=5),
    _json_values,
).map(json.dumps) | st.text(max_size=300) | st.binary(max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=_requests)
def test_random_control_messages(server: tuple[SimProcess, Bystander],
                                 payload: str | bytes) -> None:
    sim, _ = server
    with connect(sim.ws_url + "/market/ws", open_timeout=TIMEOUT, max_size=MAX_FRAME) as ws:
        assert _outcome(ws, payload) in ("error", "result", "closed")


@pytest.mark.parametrize("payload", [
    "x" * 200_000,                                           # oversized non-JSON
    json.dumps({"method": "SUBSCRIBE", "params": [f"s{i}usdt@aggTrade" for i in range(3000)],
                "id": 2}),
    json.dumps({"method": "SUBSCRIBE", "params": "btcusdt@aggTrade", "id": 4}),
    json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": [1]}),
    json.dumps({"method": "NOPE", "params": [], "id": 5}),
    "[" * 10_000 + "]" * 10_000,                             # deep nesting
])
def test_named_hostile_payloads(server: tuple[SimProcess, Bystander], payload: str) -> None:
    sim, bystander = server
    with connect(sim.ws_url + "/market/ws", open_timeout=TIMEOUT, max_size=MAX_FRAME) as ws:
        assert _outcome(ws, payload) in ("error", "closed")
    assert bystander.error is None and bystander.still_receiving()


@pytest.mark.parametrize("payload", [
    # One distinct stream: within the 1024-stream limit, so Binance may accept it.
    json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"] * 5000, "id": 1}),
    # Binance answers unknown streams with a plain result; nothing is read from a path.
    json.dumps({"method": "SUBSCRIBE", "params": ["../../etc/passwd@aggTrade"], "id": 3}),
    # String ids pass (BINANCE.md: the official SDK sends UUID strings) and are echoed.
    json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": "x" * 10_000}),
])
def test_odd_but_acceptable_subscribes(server: tuple[SimProcess, Bystander], payload: str) -> None:
    sim, bystander = server
    with connect(sim.ws_url + "/market/ws", open_timeout=TIMEOUT, max_size=MAX_FRAME) as ws:
        assert _outcome(ws, payload) in ("result", "error", "closed")
    assert bystander.error is None and bystander.still_receiving()


_segments = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(_segments | st.sampled_from(["..", "%2e%2e", "ws", "stream", "public",
                                                   "market", "private", "fapi", "v1"]),
                      max_size=5))
def test_random_paths(server: tuple[SimProcess, Bystander], parts: list[str]) -> None:
    sim, _ = server
    path = "/" + "/".join(urllib.parse.quote(p, safe="%.") for p in parts)
    try:
        with urllib.request.urlopen(sim.rest_url + path, timeout=TIMEOUT) as resp:
            status: int = resp.status
            body = resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    assert status < 500, (path, status, body[:200])
    try:
        with connect(sim.ws_url + path, open_timeout=TIMEOUT) as ws:
            ws.recv(timeout=0.2)
    except (websockets.InvalidStatus, websockets.ConnectionClosed, TimeoutError) as exc:
        if isinstance(exc, websockets.InvalidStatus):
            assert exc.response.status_code < 500, (path, exc.response.status_code)


def test_bystander_survived_everything(server: tuple[SimProcess, Bystander]) -> None:
    sim, bystander = server
    assert bystander.error is None
    assert bystander.still_receiving()
    assert sim.proc.poll() is None


@pytest.mark.parametrize("stream", ["..%2f..%2fetc%2fpasswd", "..", "btcusdt@aggTrade%2f..",
                                    "%2e%2e%2f%2e%2e%2fstreams"])
def test_no_traversal_through_stream_names(tmp_path: Path, stream: str) -> None:
    # An archive whose parent holds a secret file: no stream name reaches it.
    archive = tmp_path / "archive"
    (archive / "streams").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("TOPSECRET")
    out = ticktape("replay", "--archive", str(archive), "--streams",
                   urllib.parse.unquote(stream), "--speed", "0")
    assert out.returncode != 0 and "TOPSECRET" not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("archive", ["../../../../etc", "/etc/../etc/passwd", "streams=x/../.."])
def test_archive_paths_fail_cleanly(tmp_path: Path, archive: str) -> None:
    out = ticktape("query", "--archive", archive, "SELECT count(*) FROM messages", cwd=tmp_path)
    assert "Traceback" not in out.stderr
    assert "root:" not in out.stdout



@pytest.fixture(scope="module")
def served_sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """``ticktape serve`` on a copy of data/sample with a secret file beside the archive."""
    tmp_path = tmp_path_factory.mktemp("served")
    archive = tmp_path / "archive"
    shutil.copytree(ROOT / "data" / "sample", archive)
    (tmp_path / "secret.txt").write_text("TOPSECRET")
    (tmp_path / "streams").mkdir()
    log = tmp_path / "serve.err"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ticktape", "serve", "--archive",
                                 str(archive), "--port", "0", "--speed", "0"], env=env(),
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        url = ""
        for _ in range(600):
            match = re.search(r"on (ws://\S+)", log.read_text())
            if match:
                url = match.group(1).rstrip(" ,")
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert url, log.read_text()
        yield url, log.read_text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT * 4)
        assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("path", [
    "/ws/..%2f..%2fsecret.txt", "/ws/..%2Fsecret.txt", "/ws/%2e%2e/secret.txt",
    "/stream?streams=..%2f..%2fsecret.txt", "/stream?streams=btcusdt@trade/../../secret.txt",
    "/ws/btcusdt@trade%2f..%2f..%2f..%2fsecret.txt", "/ws/stream=..",
])
def test_no_traversal_through_served_urls(served_sample: tuple[str, object],
                                          path: str) -> None:
    url, _ = served_sample
    http = url.replace("ws://", "http://")
    seen: list[str] = []
    try:
        # close_timeout: at --speed 0 the client reads the flood before the close reply.
        with connect(url + path, open_timeout=TIMEOUT, close_timeout=0.5) as ws:
            for _ in range(5):
                frame = ws.recv(timeout=0.5)
                seen.append(frame if isinstance(frame, str) else frame.decode("latin-1"))
    except (websockets.InvalidStatus, websockets.ConnectionClosed, TimeoutError) as exc:
        if isinstance(exc, websockets.InvalidStatus):
            assert exc.response.status_code < 500
            seen.append(exc.response.body.decode("latin-1") if exc.response.body else "")
    for rest in (f"/fapi/v1/depth?symbol={path.rsplit('/', 1)[-1]}", path):
        try:
            with urllib.request.urlopen(http + rest, timeout=TIMEOUT) as resp:
                seen.append(resp.read().decode("latin-1"))
        except urllib.error.HTTPError as exc:
            assert exc.code < 500, (rest, exc.code)
            seen.append(exc.read().decode("latin-1"))
    assert not any("TOPSECRET" in s for s in seen)
    # The server still serves a legitimate client.
    with connect(url + "/ws/btcusdt@trade", open_timeout=TIMEOUT, close_timeout=0.5) as ws:
        assert json.loads(ws.recv(timeout=TIMEOUT))["e"] == "trade"
