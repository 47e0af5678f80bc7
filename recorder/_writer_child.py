"""The writer process itself: reads batches from its parent, writes Parquet, reports back.

Started by :class:`recorder._writer_proc.ProcessWriter` (protocol and crash semantics there).
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import json
import os
import resource
import signal
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recorder._fs import archive_error
from recorder._journal import decode_records, encode_batch
from recorder._recovery_report import RecoveryReport
from recorder._writer_config import WriterConfig
from recorder._writer_proc import _HEAD, _STATUS, GC_THRESHOLD, PIPE_BYTES
from schemas.message import Gap, Message

if TYPE_CHECKING:
    from recorder._writer import PartitionSet


COLUMNS_MIN_BYTES = 16 << 10
"""Message payloads at least this big (~90 rows) are decoded into Arrow columns, built
once per payload (:func:`recorder._rows.decode_stream_rows`); smaller ones into ``Message``
objects, whose decode has no fixed cost of ~100-200 us. Both end in the same column path
when a row group is written."""


def _report_to_json(report: RecoveryReport) -> dict[str, Any]:
    out = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)
           if f.name != "last_by_stream"}
    last = list(report.last_by_stream.values())
    out["last_by_stream"] = base64.b64encode(encode_batch(last)).decode() if last else ""
    return out


def _vmhwm_kb() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ms() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round((usage.ru_utime + usage.ru_stime) * 1000)


class _Child:
    """The loop of the writer process."""

    def __init__(self, fd_in: int, fd_out: int, root: Path, config: WriterConfig) -> None:
        from recorder._rows import decode_stream_rows
        from recorder._writer import PartitionSet

        self.decode_rows = decode_stream_rows
        self.parent = os.getppid()
        self.inp = os.fdopen(fd_in, "rb", buffering=PIPE_BYTES)
        self.out = os.fdopen(fd_out, "wb", buffering=0)
        self.parts: PartitionSet = PartitionSet(root, config)
        self.root = root
        self.config = config
        self.error: str | None = None
        self.acked = 0
        self.processed = 0
        self.safe: int | None = None
        self.last_segment: int | None = None
        self.cpu_base = _cpu_ms()  # imports done: report the CPU spent writing

    def recover(self) -> RecoveryReport | None:
        """Start-up: sweep ``.tmp`` files and recover the journal (the lock is held)."""
        from recorder._fs import sweep_tmp
        from schemas import layout

        try:
            removed = (sweep_tmp(self.root / layout.STREAMS_DIR)
                       + sweep_tmp(self.root / layout.GAPS_DIR))
        except OSError as exc:
            self.error = str(archive_error(exc, "open archive", self.root))
            return None
        report = self._recover_journal()
        if report is not None:
            report.tmp_removed = removed
        return report

    def _recover_journal(self) -> RecoveryReport | None:
        from recorder._journal import list_segments
        from recorder._recovery import recover_segments
        from schemas import layout

        try:
            return recover_segments(self.root, list_segments(self.root / layout.JOURNAL_DIR),
                                    self.config)
        except BaseException as exc:
            self.error = str(archive_error(exc, "recover journal into", self.root))
            return None

    def _restore_spill(self, path: Path) -> RecoveryReport | None:
        """Write the dropped batches of the spill file (never submitted, so nothing of them
        is sealed yet) through a fresh partition set: partitions of their own."""
        from recorder._spill import read_spill
        from recorder._writer import sealed_partitions

        report = RecoveryReport()
        try:
            with sealed_partitions(self.root, self.config, "restore dropped rows into") as parts:
                for msgs in read_spill(path):
                    parts.add(msgs, 0)
                    report.journaled_messages += len(msgs)
                    report.written_messages += len(msgs)
        except BaseException:
            # A damaged spill (or a failed write): the journal has every row, and recovery
            # skips what is sealed by now.
            return self._recover_journal()
        return report

    def run(self, report: RecoveryReport | None) -> int:
        self._report(False, report)  # ready
        if self.error is not None:
            return 1
        while True:
            head = self.inp.read(_HEAD.size)
            if len(head) < _HEAD.size:
                return self._orphaned()
            kind, size, segment = _HEAD.unpack(head)
            payload = self.inp.read(size)
            if len(payload) < size or os.getppid() != self.parent:
                return self._orphaned()
            if kind == b"C":
                break
            self.acked += 1
            if self.error is None:
                try:
                    self._handle(kind, payload, None if segment < 0 else segment)
                except BaseException as exc:
                    self._fail(exc)
            self._report(False)
        catch_up = None
        if self.error is None:
            try:
                self.parts.seal_all()
                self.safe = self.last_segment
            except BaseException as exc:
                self._fail(exc)
        if self.error is None and payload == b"R":
            catch_up = self._recover_journal()
        elif self.error is None and payload.startswith(b"S"):
            catch_up = self._restore_spill(Path(os.fsdecode(payload[1:])))
        self._report(True, catch_up)
        return 0

    def _handle(self, kind: bytes, payload: bytes, segment: int | None) -> None:
        parts = self.parts
        if kind == b"M" and len(payload) >= COLUMNS_MIN_BYTES:
            runs = self.decode_rows(payload)  # columns, no Message per row
            parts.add_rows(runs, segment or 0)
            self.processed += sum(map(len, runs))
        elif kind == b"M":
            msgs = [r for r in decode_records(payload) if isinstance(r, Message)]
            parts.add(msgs, segment or 0)
            self.processed += len(msgs)
        elif kind == b"G":
            parts.add_gaps([r for r in decode_records(payload) if isinstance(r, Gap)],
                           segment or 0)
        else:
            parts.tick(struct.unpack("<q", payload)[0])
        if segment is not None:
            self.last_segment = segment
        low = parts.low_segment()
        last = self.last_segment
        if last is not None:
            self.safe = last if low is None else min(low, last)

    def _fail(self, exc: BaseException) -> None:
        self.error = str(archive_error(exc, "write partition under", self.root))
        self.parts.abort_all()

    def _orphaned(self) -> int:
        # The recorder is gone (kill -9): publish nothing; its successor recovers the journal
        # once this process has exited and released the archive lock.
        self.parts.abort_all()
        return 1

    def _report(self, done: bool, report: RecoveryReport | None = None) -> None:
        body = json.dumps({
            "acked": self.acked, "safe": self.safe, "rows": self.parts.sealed_rows,
            "files": self.parts.sealed_files, "processed": self.processed,
            "error": self.error, "hwm_kb": _vmhwm_kb(), "done": done,
            "cpu_ms": _cpu_ms() - self.cpu_base,
            "report": _report_to_json(report) if report is not None else None,
        }).encode()
        self.out.write(_STATUS.pack(len(body)) + body)


def child_main(argv: list[str]) -> None:
    """Entry point of the writer process: ``fd_in fd_out root config_json recover``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopped by its parent, not by signals
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from recorder._writer import use_system_allocator

    fd_in, fd_out, root, config = int(argv[0]), int(argv[1]), Path(argv[2]), argv[3]
    use_system_allocator()
    child = _Child(fd_in, fd_out, root, WriterConfig(**json.loads(config)))
    # Every row arrives as a new Message kept until its row group is written: with the
    # default thresholds the collector would rescan that growing, acyclic heap over and over.
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 50)
    try:
        code = child.run(child.recover() if argv[4] == "1" else None)
    except BrokenPipeError:
        child.parts.abort_all()
        code = 1
    # Every file is sealed or removed and the last status written: skip the interpreter's
    # teardown (tens of ms of CPU with pyarrow loaded).
    sys.stderr.flush()
    os._exit(code)


__all__ = ["child_main"]
