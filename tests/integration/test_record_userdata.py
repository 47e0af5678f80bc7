"""User data with a fake API key from the environment: the key and every listenKey the sim
issued appear nowhere: archive files (contents, metadata, paths), journal, logs, /metrics."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

import aiohttp
import pyarrow.parquet as pq
import pytest

from recorder import Recorder
from recorder._journal import SegmentReader
from tests.record_support import config, sim, stream_rows


def _archive_text(archive: Path) -> str:
    """Every path, every Parquet value and metadata entry, every other file's bytes."""
    parts: list[str] = []
    for path in sorted(archive.rglob("*")):
        parts.append(str(path))
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            pf = pq.ParquetFile(path)
            parts.append(repr(pf.metadata.metadata))
            parts.append(repr(pf.read().to_pylist()))
        else:
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def _journal_text(archive: Path) -> str:
    out = []
    for seg in sorted((archive / "journal").glob("*.wal")):
        out.extend(repr(r) for r in SegmentReader(seg).records())
    return "\n".join(out)


async def test_secrets_never_leave_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    api_key = "FAKEKEY" + secrets.token_hex(16)
    monkeypatch.setenv("TICKTAPE_API_KEY", api_key)
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    archive = tmp_path / "archive"
    # listenKeys live 1.5 s in this sim; keepalive every 3 s comes too late on purpose, so the
    # recorder sees listenKeyExpired, creates a new key and reconnects.
    async with sim(listen_key_ttl=1.5, user_event_interval=0.2) as exchange:
        recorder = Recorder(config(exchange, archive, ["btcusdt@aggTrade", "userData"],
                                   keepalive_s=3.0, metrics_port=0))
        task = asyncio.create_task(recorder.run())
        await asyncio.sleep(2.5)
        journal = _journal_text(archive)
        assert recorder.metrics is not None
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{recorder.metrics.port}"
            async with http.get(url + "/metrics") as resp:
                metrics = await resp.text()
            async with http.get(url + "/healthz") as resp:
                assert resp.status == 200
        await asyncio.sleep(2.0)
        recorder.stop()
        await asyncio.wait_for(task, 20)
        listen_keys = {f.stream.split("@", 1)[0] for f in exchange.send_log.data()
                       if (f.stream.count("@") == 1 and f.stream.split("@")[1].isupper())
                       or f.stream.endswith("@listenKeyExpired")}
    assert len(listen_keys) >= 2, "the key expired and was re-created"
    rows = stream_rows(archive, "userData")
    assert len(rows) > 5
    assert any('"e":"listenKeyExpired"' in r[4] and "<redacted>" in r[4] for r in rows)
    assert "ticktape_messages" in metrics and 'stream="userData"' in metrics
    assert journal
    haystacks = {"archive": _archive_text(archive), "journal": journal, "metrics": metrics,
                 "logs": caplog.text + repr([r.args for r in caplog.records])}
    for name, text in haystacks.items():
        for secret in (api_key, *listen_keys):
            assert secret not in text, f"secret found in {name}"
