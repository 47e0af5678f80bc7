"""The partition writer in its own process, so Parquet encoding never holds the loop's GIL.

:class:`ProcessWriter` has the interface of :class:`recorder._writer.PartitionWriter` (what
:class:`recorder._storage.Storage` uses) but runs the :class:`~recorder._writer.PartitionSet`
in a child interpreter started with ``subprocess`` (fork + exec, never a bare fork of the
threaded recorder). Batches cross a pipe as the journal's own batch records
(:func:`recorder._journal.encode_batch`, encoded once on the event loop for both), gaps as
journal gap records; a bounded ``queue.Queue`` and a sender thread keep
:meth:`ProcessWriter.submit` non-blocking, with the same counted-drop contract as the thread.
The child reports back after every item (items done, ``safe_segment``, sealed counts, error).

The child also runs journal recovery (at start, and the catch-up of queue drops at close), so
the recorder process itself never imports pyarrow (about 40 MB of resident memory).

Crash semantics: the child ignores SIGINT/SIGTERM and stops only on the parent's close
command or on losing the parent (pipe EOF, or a changed parent pid checked between items); in
the latter case it removes its ``.tmp`` files and exits **without sealing anything**. It
inherits the archive lock descriptor (:func:`recorder._fs.lock_archive`), so a new recorder
starting after a ``kill -9`` waits until the old child is gone before it sweeps ``.tmp``
files and recovers the journal: nothing can be published behind recovery's back.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from recorder._fs import archive_error
from recorder._journal import decode_batch, encode_batch, encode_gap
from recorder._recovery_report import RecoveryReport
from recorder._writer_config import WriterConfig
from schemas.errors import ArchiveError
from schemas.message import Gap, Message

_HEAD = struct.Struct("<cIq")
"""Parent -> child frame: kind (M messages, G gaps, T tick, C close), payload length,
journal segment (-1: none)."""
_STATUS = struct.Struct("<I")
GC_THRESHOLD = 50_000
"""Allocations between young-generation collections in the writer process."""
PIPE_BYTES = 1 << 20
"""Pipe buffer asked for (Linux caps it at ``/proc/sys/fs/pipe-max-size``, 1 MiB default)."""

_BOOT = """\
import importlib.util, json, sys, types
sys.path[:0] = json.loads(sys.argv[1])
# Only the storage modules are needed: skip recorder/__init__ (aiohttp, the daemon).
spec = importlib.util.find_spec("recorder")
pkg = types.ModuleType("recorder")
pkg.__path__ = list(spec.submodule_search_locations)
sys.modules["recorder"] = pkg
from recorder._writer_child import child_main
child_main(sys.argv[2:])
"""


class SealedCounts:
    """``sealed_rows`` / ``sealed_files`` as last reported by the child."""

    __slots__ = ("sealed_files", "sealed_rows")

    def __init__(self) -> None:
        self.sealed_rows = 0
        self.sealed_files = 0


class ProcessWriter:
    """Parent side of the writer process; same interface as ``PartitionWriter``."""

    def __init__(self, root: Path, config: WriterConfig, lock_fd: int | None = None,
                 recover: bool = False) -> None:
        self.root = root
        self.recovery: RecoveryReport | None = None
        """With ``recover``: what the child's start-up recovery of the journal did."""
        self._recover = recover
        self.config = config
        self.parts = SealedCounts()
        self.error: ArchiveError | None = None
        self.safe_segment: int | None = None
        """Every journal segment below this index is fully in sealed files."""
        self.processed_messages = 0
        self.peak_rss_kb = 0
        """The child's peak resident set size (``VmHWM``), as last reported."""
        self.cpu_ms = 0
        """CPU time (user + system) the child has used since its start-up, as last
        reported."""
        self._lock_fd = lock_fd
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max(1, config.queue_max))
        self._sent = 0
        self._acked = 0
        self._done = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: BinaryIO | None = None
        self._sender: threading.Thread | None = None
        self._receiver: threading.Thread | None = None
        self._ready = threading.Event()
        self._close_payload = b""

    @property
    def pid(self) -> int | None:
        """Process id of the child (``None`` before :meth:`start`)."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 60.0, wait: bool = True) -> None:
        """Start the child process and the sender/receiver threads.

        With ``wait``, return once the child is ready (imports and start-up recovery done),
        raising if it failed; otherwise at once (batches wait in the queue and the pipe
        meanwhile, and a start-up failure surfaces as :attr:`error`)."""
        r_in, w_in = os.pipe()
        r_out, w_out = os.pipe()
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(w_in, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        fds = [r_in, w_out] + ([self._lock_fd] if self._lock_fd is not None else [])
        args = [json.dumps([p for p in sys.path if p]), str(r_in), str(w_out),
                str(self.root), json.dumps(asdict(self.config)), "1" if self._recover else "0"]
        try:
            # stderr stays the recorder's (a crash of the child is then visible in its log).
            self._proc = subprocess.Popen([sys.executable, "-c", _BOOT, *args], pass_fds=fds,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except OSError as exc:
            for fd in (r_in, w_in, r_out, w_out):
                os.close(fd)
            raise archive_error(exc, "start the partition writer for", self.root) from exc
        os.close(r_in)
        os.close(w_out)
        self._out = os.fdopen(w_in, "wb", buffering=0)
        self._sender = threading.Thread(target=self._send_loop, name="ticktape-writer-send",
                                        daemon=True)
        self._receiver = threading.Thread(target=self._receive_loop, args=(r_out,),
                                          name="ticktape-writer-status", daemon=True)
        self._sender.start()
        self._receiver.start()
        if not wait:
            return
        if not self._ready.wait(timeout):
            self.kill()
            self._fail(f"did not start within {timeout:.0f}s")
            self._receiver.join(timeout)
        if self.error is not None:
            self.kill()
            raise self.error

    @property
    def queue_depth(self) -> int:
        """Items queued here or sent but not yet done by the child."""
        return self._queue.qsize() + max(0, self._sent - self._acked)

    def submit(self, msgs: Sequence[Message], segment: int,
               records: Sequence[bytes] | None = None) -> bool:
        """Hand a batch over without blocking; ``False`` if the queue is full.

        ``records`` are the batch's journal records (:func:`encode_batch`) if the caller
        has them; otherwise ``msgs`` are encoded here.
        """
        return self._put(_frame(b"M", segment, _records(msgs, records)))

    def submit_gaps(self, gaps: Sequence[Gap], segment: int) -> bool:
        """Hand gaps over without blocking; ``False`` if the queue is full."""
        return self._put(_frame(b"G", segment, [encode_gap(g) for g in gaps]))

    def tick(self, now_ns: int) -> bool:
        """Ask the child to seal windows that ended before ``now_ns`` (skipped if full)."""
        return self._put(_frame(b"T", None, [struct.pack("<q", now_ns)]))

    def put_blocking(self, msgs: Sequence[Message], gaps: Sequence[Gap], segment: int,
                     timeout: float, records: Sequence[bytes] | None = None) -> bool:
        """Enqueue at close time, waiting up to ``timeout`` s; ``False`` if still full."""
        try:
            if msgs:
                self._queue.put(_frame(b"M", segment, _records(msgs, records)),
                                timeout=timeout)
            if gaps:
                self._queue.put(_frame(b"G", segment, [encode_gap(g) for g in gaps]),
                                timeout=timeout)
        except queue.Full:
            return False
        return True

    def close(self, timeout: float = 30.0, recover: bool = False,
              spill: Path | None = None) -> RecoveryReport | None:
        """Have the child seal everything and exit; raise its error if it had one.

        Then, with ``spill``, the child writes the rows of that spill file
        (:mod:`recorder._spill`) as partitions of their own; with ``recover`` it runs every
        journal segment left through recovery (the caller has closed the journal). The
        report of either is returned.
        """
        proc = self._proc
        if proc is None:
            return None
        self.recovery = None
        self._close_payload = (b"S" + os.fsencode(spill) if spill is not None
                               else b"R" if recover else b"")
        sender = self._sender
        try:
            if sender is not None and sender.is_alive():
                self._queue.put(None, timeout=timeout)
        except queue.Full:
            self._fail("did not take the close command")
        for thread in (self._sender, self._receiver):
            if thread is not None:
                thread.join(timeout)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self._fail(f"did not stop within {timeout:.0f}s")
        if self.error is not None:
            raise self.error
        return self.recovery

    def kill(self) -> None:
        """Kill the child at once (error paths); its ``.tmp`` files are left to the sweep."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()
            proc.wait()

    def _put(self, item: bytes) -> bool:
        if self.error is not None:
            raise self.error
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def _send_loop(self) -> None:
        out = self._out
        assert out is not None
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    payload = self._close_payload
                    out.write(_HEAD.pack(b"C", len(payload), -1) + payload)
                    break
                if self.error is not None:
                    continue  # the child failed: drop (the journal keeps these rows)
                self._sent += 1
                out.write(item)
        except OSError:
            self._fail("exited unexpectedly")
        finally:
            with contextlib.suppress(OSError):
                out.close()

    def _receive_loop(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as f:
            while True:
                head = f.read(_STATUS.size)
                if len(head) < _STATUS.size:
                    break
                (n,) = _STATUS.unpack(head)
                body = f.read(n)
                if len(body) < n:
                    break
                self._apply(json.loads(body))
        if not self._done:
            self._fail("exited unexpectedly")
        self._ready.set()

    def _apply(self, st: dict[str, Any]) -> None:
        self._acked = int(st["acked"])
        self.safe_segment = st["safe"]
        self.parts.sealed_rows = int(st["rows"])
        self.parts.sealed_files = int(st["files"])
        self.processed_messages = int(st["processed"])
        self.peak_rss_kb = int(st["hwm_kb"])
        self.cpu_ms = int(st["cpu_ms"])
        if st.get("report") is not None:
            self.recovery = _report_from_json(st["report"])
        if st["error"] and self.error is None:
            self.error = ArchiveError(str(st["error"]))
        if st["done"]:
            self._done = True
        self._ready.set()

    def _fail(self, what: str) -> None:
        if self.error is None:
            code = self._proc.poll() if self._proc is not None else None
            tail = f" (exit code {code})" if code is not None else ""
            self.error = ArchiveError(f"partition writer process for {self.root} {what}{tail}")


def _report_from_json(data: dict[str, Any]) -> RecoveryReport:
    last = data.pop("last_by_stream", "")
    report = RecoveryReport(**data)
    if last:
        report.last_by_stream = {m.stream: m for m in decode_batch(base64.b64decode(last))}
    return report


def _records(msgs: Sequence[Message], records: Sequence[bytes] | None) -> Sequence[bytes]:
    return records if records is not None else [encode_batch(msgs)]


def _frame(kind: bytes, segment: int | None, parts: Sequence[bytes]) -> bytes:
    size = sum(map(len, parts))
    return b"".join((_HEAD.pack(kind, size, -1 if segment is None else segment), *parts))


__all__ = ["GC_THRESHOLD", "PIPE_BYTES", "ProcessWriter", "SealedCounts"]
