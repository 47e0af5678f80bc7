"""Recorder configuration: one frozen dataclass, built from CLI options or a TOML file.

Example ``recorder.toml``::

    streams = ["btcusdt@aggTrade", "btcusdt@depth@100ms", "!markPrice@arr"]
    archive = "data/archive"
    ws_url = "wss://fstream.binance.com"
    rest_url = "https://fapi.binance.com"
    rotate = "15m"            # Parquet partition rotation
    metrics_port = 9108

    [connection]
    idle_timeout = "30s"      # silence watchdog
    rotate_after = "23h"      # make-before-break before Binance's 24 h limit
    overlap = "10s"
    streams_per_connection = 1024

    [user_data]               # API key from $TICKTAPE_API_KEY or .env, never from here
    enabled = true
    events = ["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "listenKeyExpired"]
    keepalive = "30m"

Durations are seconds (number) or strings with a unit: ``500ms``, ``10s``, ``15m``, ``23h``,
``2d``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from recorder._routing import MAX_STREAMS_PER_CONNECTION, check_rest_url, check_ws_url
from schemas.errors import ConfigError
from schemas.streams import Endpoint, parse_stream

DEFAULT_ARCHIVE = Path("data/archive")
DEFAULT_WS_URL = "wss://fstream.binance.com"
DEFAULT_REST_URL = "https://fapi.binance.com"

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")


def parse_duration(value: object, what: str) -> float:
    """Seconds from ``15m``, ``10s``, ``500ms``, ``2d`` or a number; ConfigError otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a duration like 15m, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.fullmatch(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        raise ConfigError(f"{what}: expected a duration like 15m, 30s or 500ms, not {value!r}")
    if seconds <= 0:
        raise ConfigError(f"{what}: must be positive, not {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    """Everything the :class:`~recorder.Recorder` needs; times in seconds."""

    streams: tuple[str, ...] = ()
    archive: Path = DEFAULT_ARCHIVE
    ws_url: str = DEFAULT_WS_URL
    rest_url: str = DEFAULT_REST_URL
    duration_s: float | None = None
    rotate_s: float = 900.0
    """Parquet partition rotation (DESIGN.md: default 15 min)."""
    retention_s: float | None = None
    metrics_port: int | None = None
    idle_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    rotate_after_s: float = 23 * 3600.0
    overlap_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_cap_s: float = 30.0
    streams_per_connection: int = MAX_STREAMS_PER_CONNECTION
    control_rate: int = 4
    depth_snapshot_limit: int = 1000
    user_data: bool = False
    user_events: tuple[str, ...] = ()
    keepalive_s: float = 30 * 60.0
    handler_queue: int = 10_000
    flush_interval_s: float = 0.1
    """How often buffered rows are flushed (the journal flushes at least every 100 ms)."""
    shutdown_timeout_s: float = 4.0
    env_file: Path = field(default=Path(".env"))

    def validated(self) -> RecorderConfig:
        """Canonicalise streams and check every value; raises ConfigError/StreamNameError."""
        names: list[str] = []
        user = self.user_data
        for raw in self.streams:
            name = parse_stream(raw)
            if name.endpoint is Endpoint.PRIVATE:
                user = True
                continue
            if name.name not in names:
                names.append(name.name)
        if not names and not user:
            raise ConfigError("no streams to record: give --streams or a config file")
        if not 1 <= self.streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
            raise ConfigError(f"streams_per_connection must be 1..{MAX_STREAMS_PER_CONNECTION}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics port must be 0..65535, not {self.metrics_port}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigError("duration must be positive")
        if self.overlap_s >= self.rotate_after_s:
            raise ConfigError("connection overlap must be shorter than rotate_after")
        return replace(self, streams=tuple(names), user_data=user,
                       ws_url=check_ws_url(self.ws_url), rest_url=check_rest_url(self.rest_url))


_TOP = {"streams", "archive", "ws_url", "rest_url", "rotate", "retention", "metrics_port",
        "duration", "connection", "user_data", "depth_snapshot_limit", "handler_queue"}
_CONN = {"idle_timeout", "connect_timeout", "rotate_after", "overlap", "backoff_initial",
         "backoff_cap", "streams_per_connection", "control_rate"}
_USER = {"enabled", "events", "keepalive"}


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(allowed))}")


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what}: expected an integer, not {value!r}")
    return value


def config_from_mapping(data: Mapping[str, Any], where: str = "config") -> RecorderConfig:
    """Build a config from parsed TOML (see the module docstring for the keys)."""
    _check_keys(data, _TOP, where)
    kw: dict[str, Any] = {}
    streams = data.get("streams", [])
    if isinstance(streams, str):
        streams = [s for s in streams.split(",") if s.strip()]
    if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
        raise ConfigError(f"{where}: streams must be a list of stream names")
    kw["streams"] = tuple(streams)
    for key in ("archive", "ws_url", "rest_url"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise ConfigError(f"{where}: {key} must be a non-empty string")
            kw[key] = Path(data[key]) if key == "archive" else data[key]
    if "rotate" in data:
        kw["rotate_s"] = parse_duration(data["rotate"], f"{where}: rotate")
    if "retention" in data:
        kw["retention_s"] = parse_duration(data["retention"], f"{where}: retention")
    if "duration" in data:
        kw["duration_s"] = parse_duration(data["duration"], f"{where}: duration")
    for key in ("metrics_port", "depth_snapshot_limit", "handler_queue"):
        if key in data:
            kw[key] = _int(data[key], f"{where}: {key}")
    conn = data.get("connection", {})
    if not isinstance(conn, dict):
        raise ConfigError(f"{where}: [connection] must be a table")
    _check_keys(conn, _CONN, f"{where} [connection]")
    for key in ("idle_timeout", "connect_timeout", "rotate_after", "overlap", "backoff_initial",
                "backoff_cap"):
        if key in conn:
            kw[f"{key}_s"] = parse_duration(conn[key], f"{where} [connection] {key}")
    for key in ("streams_per_connection", "control_rate"):
        if key in conn:
            kw[key] = _int(conn[key], f"{where} [connection] {key}")
    user = data.get("user_data", {})
    if not isinstance(user, dict):
        raise ConfigError(f"{where}: [user_data] must be a table")
    _check_keys(user, _USER, f"{where} [user_data]")
    if "enabled" in user:
        kw["user_data"] = bool(user["enabled"])
    if "events" in user:
        events = user["events"]
        if not isinstance(events, list) or not all(
                isinstance(e, str) and re.fullmatch(r"[A-Za-z_]{1,40}", e) for e in events):
            raise ConfigError(f"{where} [user_data] events: a list of event names")
        kw["user_events"] = tuple(events)
    if "keepalive" in user:
        kw["keepalive_s"] = parse_duration(user["keepalive"], f"{where} [user_data] keepalive")
    return RecorderConfig(**kw)


def load_config(path: str | Path) -> RecorderConfig:
    """Read a TOML config file; ConfigError names the file and the problem."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return config_from_mapping(data, str(p))


def config_fields() -> list[str]:
    """Names of every :class:`RecorderConfig` field (for docs and tests)."""
    return [f.name for f in fields(RecorderConfig)]


__all__ = [
    "DEFAULT_ARCHIVE",
    "DEFAULT_REST_URL",
    "DEFAULT_WS_URL",
    "RecorderConfig",
    "config_from_mapping",
    "load_config",
    "parse_duration",
]
