"""Recorder config (TOML), API key loading and secret scrubbing."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder._config import RecorderConfig, load_config, parse_duration
from recorder._userdata import Secrets, load_api_key
from schemas.errors import ConfigError, StreamNameError

TOML = """
streams = ["BTCUSDT@aggTrade", "btcusdt@depth@100ms", "!markPrice@arr", "userData"]
archive = "arc"
ws_url = "ws://127.0.0.1:9000"
rest_url = "http://127.0.0.1:9000"
rotate = "5m"
metrics_port = 9108

[connection]
idle_timeout = "2s"
rotate_after = "1h"
overlap = 3

[user_data]
events = ["ORDER_TRADE_UPDATE"]
keepalive = "10m"
"""


def test_toml_config(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(TOML)
    cfg = load_config(path).validated()
    assert cfg.streams == ("btcusdt@aggTrade", "btcusdt@depth@100ms", "!markPrice@arr")
    assert cfg.user_data and cfg.user_events == ("ORDER_TRADE_UPDATE",)
    assert (cfg.rotate_s, cfg.idle_timeout_s, cfg.rotate_after_s, cfg.overlap_s,
            cfg.keepalive_s) == (300.0, 2.0, 3600.0, 3.0, 600.0)
    assert cfg.archive == Path("arc") and cfg.metrics_port == 9108


@pytest.mark.parametrize(("text", "needle"), [
    ('streams = ["x"]\nbogus = 1', r"unknown key\(s\) bogus"),
    ('streams = ["btcusdt@aggTrade"]\nrotate = "soon"', "rotate"),
    ("streams = [", "not valid TOML"),
    ('streams = ["btcusdt@aggTrade"]\n[connection]\noverlap = -1', "positive"),
])
def test_bad_config(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config(path)


def test_validation() -> None:
    with pytest.raises(StreamNameError):
        RecorderConfig(streams=("../x",)).validated()
    with pytest.raises(ConfigError, match="no streams"):
        RecorderConfig().validated()
    with pytest.raises(ConfigError, match="ws-url"):
        RecorderConfig(streams=("btcusdt@aggTrade",), ws_url="ftp://x").validated()


def test_durations() -> None:
    assert [parse_duration(v, "x") for v in ("500ms", "10s", "15m", "2h", "1d", 7)] == \
        [0.5, 10.0, 900.0, 7200.0, 86400.0, 7.0]
    for bad in ("", "5 minutes", True, 0, "-1s"):
        with pytest.raises(ConfigError):
            parse_duration(bad, "x")


def test_api_key_from_env_or_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKTAPE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="TICKTAPE_API_KEY") as info:
        load_api_key(tmp_path / ".env")
    env = tmp_path / ".env"
    env.write_text("TICKTAPE_API_KEY=fromdotenv123\n")
    assert load_api_key(env) == "fromdotenv123"
    monkeypatch.setenv("TICKTAPE_API_KEY", "fromenv456")
    assert load_api_key(env) == "fromenv456"
    monkeypatch.setenv("TICKTAPE_API_KEY", "has space")
    with pytest.raises(ConfigError) as info:
        load_api_key(env)
    assert "has space" not in str(info.value)


def test_secrets_redacted_everywhere_in_text() -> None:
    s = Secrets()
    s.add("APIKEY123")
    s.add("LISTENKEYabc")
    text = "GET ws://h/private/ws?listenKey=LISTENKEYabc failed; key APIKEY123"
    out = s.redact(text)
    assert "APIKEY123" not in out and "LISTENKEYabc" not in out
    assert out.count("<redacted>") == 2
