"""Batches the process writer's full queue turned away, kept on disk until close restores them.

A dropped batch is in the journal anyway, but restoring it from there means running every
later segment through recovery (decode everything, subtract what is sealed). The spill file
keeps exactly the dropped batch records, framed ``[u32 size][records]``, so the writer
process can write just those rows (in partitions of their own) when the storage closes. It
is an optimisation only: after a crash it is deleted and journal recovery does the work.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from recorder._fs import remove_quietly
from recorder._records import decode_records
from schemas.message import Message

SPILL_FILE = "spill"
"""In the journal directory (never a segment name)."""
_SIZE = struct.Struct("<I")


class Spill:
    """Append-only spill file; :attr:`usable` turns false for good on a write error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.usable = True
        self.batches = 0
        self._fd = -1

    def add(self, records: Sequence[bytes]) -> None:
        """Append one dropped batch (its journal records)."""
        if not self.usable:
            return
        data = b"".join((_SIZE.pack(sum(map(len, records))), *records))
        try:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            self.usable = False  # the journal still has the rows: recovery restores them
            self.close()
            return
        self.batches += 1

    def close(self) -> None:
        """Close the file (it stays for :func:`read_spill`)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def remove(self) -> None:
        """Close and delete the file."""
        self.close()
        remove_quietly(self.path)


def read_spill(path: Path) -> Iterator[list[Message]]:
    """The dropped batches in ``path``, in the order they were dropped.

    Raises ``ValueError`` on a damaged file (the caller then falls back to the journal)."""
    with open(path, "rb") as f:
        while head := f.read(_SIZE.size):
            if len(head) < _SIZE.size:
                raise ValueError("truncated spill frame")
            (size,) = _SIZE.unpack(head)
            payload = f.read(size)
            if len(payload) < size:
                raise ValueError("truncated spill frame")
            yield [r for r in decode_records(payload) if isinstance(r, Message)]


__all__ = ["SPILL_FILE", "Spill", "read_spill"]
