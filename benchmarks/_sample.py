"""The shipped real-data sample (``data/sample``), when the repository has one.

It may be an archive (``data/sample/streams/...``, read through ``replay.Replayer``) or
Tardis-style ``<recv_ns> <frame>`` lines (``*.ndjson``/``*.gz``/``*.zst``). Anything else is
reported as "not measured" by the caller.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import zstandard

from schemas.message import Message
from schemas.wire import split_envelope

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"


def _from_lines(path: Path) -> list[Message]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    elif path.suffix == ".zst":
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    out: list[Message] = []
    for i, line in enumerate(raw.decode().splitlines()):
        ts, _, frame = line.partition(" ")
        if not ts.isdigit():
            continue
        split = split_envelope(frame)
        if split is None:
            continue
        out.append(Message(split[0], int(ts), split[1], conn_id=1, seq=i))
    return out


def sample_messages(root: Path = SAMPLE_DIR) -> tuple[list[Message], str]:
    """``(messages, "")`` from the sample, or ``([], reason)`` when there is none usable."""
    if not root.exists():
        return [], f"no {root.name} directory in data/"
    if (root / "streams").is_dir():
        try:
            from replay import Replayer
        except ImportError as exc:
            return [], f"replay unavailable ({exc})"
        msgs = [e for e in Replayer(root, speed=0, gaps=False).events()
                if isinstance(e, Message)]
        return msgs, "" if msgs else "sample archive is empty"
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and p.suffix in (".ndjson", ".gz", ".zst", ".txt"))
    msgs = [m for p in files for m in _from_lines(p)]
    return msgs, "" if msgs else "no readable sample files"


__all__ = ["SAMPLE_DIR", "sample_messages"]
