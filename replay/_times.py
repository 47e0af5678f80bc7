"""Instants on the command line and in the API: ISO-8601 UTC or integer epoch nanoseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.errors import ConfigError

TimeLike = int | str | datetime
"""What :func:`parse_time` accepts."""


def parse_time(value: TimeLike | None) -> int | None:
    """Epoch ns of ``value``; ``None`` stays ``None``.

    Accepts an ``int`` or a digit string (epoch ns), an ISO-8601 string (``2024-08-08T23:55Z``,
    ``2024-08-08 23:55:00.5+00:00``; without an offset it is taken as UTC), or a ``datetime``
    (naive = UTC). Anything else raises :class:`~schemas.errors.ConfigError`.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"bad time {value!r}: expected ISO-8601 UTC or epoch ns")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return _datetime_ns(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ConfigError(
            f"bad time {value!r}: expected ISO-8601 UTC (2024-08-08T23:55:00Z) or epoch ns"
        ) from None
    return _datetime_ns(parsed)


def _datetime_ns(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def format_ns(ns: int) -> str:
    """``2024-08-08T23:55:00.123456789Z`` for an epoch-ns instant."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}Z"


__all__ = ["TimeLike", "format_ns", "parse_time"]
