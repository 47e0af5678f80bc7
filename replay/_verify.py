"""``verify``: prove an archive readable, ordered, checksummed and consistent. Read-only.

Checks, each reported as a :class:`Problem` naming the file:

* no ``*.tmp`` left in a partition directory (a writer died mid-file), no stray files;
* every partition opens, has its table's schema (:func:`schemas.tables.table_for`), rows,
  a file name whose ``first-last`` range equals its first and last ``recv_ns`` and a
  ``date=`` directory equal to the UTC date of its first row;
* rows are ordered by ``recv_ns`` (DESIGN.md: ``recv_ns`` never decreases);
* every data page decodes (Parquet page CRCs are checked where written), the footer's
  numeric statistics and null counts match the rows, and the checksums stored in the file's
  metadata equal the ones recomputed from the rows as received (a ``raw`` text stored null
  because the typed columns re-render it is rendered back first; that costs ~30-500 us a
  row). A flipped byte in a page's optional statistics or padding changes no row and is
  not looked at;
* the live partitions of a stream do not overlap;
* the journal directory holds no unsealed segment.

Superseded files (an interrupted ``compact``) and staged compaction outputs are *notes*,
not problems: no reader counts them, and the next ``compact`` removes them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from replay._checksum import (
    ContentHasher,
    logical_batch,
    logical_schema,
    update_raw_checksum,
)
from replay._partitions import ArchiveListing, Partition, list_archive
from schemas.errors import ArchiveError, CorruptDataError
from schemas.layout import JOURNAL_DIR, date_of_ns
from schemas.tables import table_for

CHECKSUM_KEY = b"ticktape.content_checksum"
"""Parquet key-value metadata holding :func:`replay._checksum.content_checksum` (hex) of every
column; written by ``compact``."""
RAW_CHECKSUM_KEY = b"ticktape.content_sha256"
"""The recorder's checksum of ``(recv_ns, raw)`` rows (:data:`RAW_CHECKSUM_ALGO`)."""
STAGING_DIR = ".compact"
"""Where ``compact`` writes a merged file before renaming it into place."""
JOURNAL_SUFFIX = ".wal"
OPEN_SUFFIX = "-open.parquet.tmp"
"""A partition the recorder is writing (recorder/_partition.py names it so)."""
_GAP_FIELDS: list[pa.Field[Any]] = [
    pa.field("stream", pa.string()), pa.field("start_ns", pa.int64()),
    pa.field("end_ns", pa.int64()), pa.field("kind", pa.string()),
    pa.field("detail", pa.string()), pa.field("recovered", pa.bool_())]
GAP_SCHEMA = pa.schema(_GAP_FIELDS)


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed check."""

    path: str
    kind: str
    """``tmp``, ``stray``, ``unreadable``, ``schema``, ``empty``, ``name``, ``order``,
    ``checksum``, ``overlap`` or ``journal``."""
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


@dataclass(slots=True)
class VerifyReport:
    """What ``verify`` checked and found."""

    root: str
    files: int = 0
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed (notes do not count)."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"archive": self.root, "ok": self.ok, "files": self.files, "rows": self.rows,
                "problems": [{"path": p.path, "kind": p.kind, "detail": p.detail}
                             for p in self.problems],
                "notes": self.notes}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _rel(report: VerifyReport, path: Path) -> str:
    try:
        return str(path.relative_to(report.root))
    except ValueError:
        return str(path)


def _schema_diff(found: pa.Schema, expected: pa.Schema) -> str | None:
    want = [(f.name, f.type) for f in expected]
    got = [(f.name, f.type) for f in found]
    if want == got:
        return None
    missing = [n for n, _ in want if n not in found.names]
    extra = [n for n, _ in got if n not in expected.names]
    retyped = [f"{n} is {found.field(n).type}, expected {t}" for n, t in want
               if n in found.names and found.field(n).type != t]
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing))
    if extra:
        parts.append("unexpected " + ", ".join(extra))
    parts.extend(retyped)
    return "; ".join(parts) or "columns out of order"


def check_file(path: Path, expected: pa.Schema, report: VerifyReport,
               part: Partition | None = None) -> int:
    """Run the per-file checks on one Parquet file; return its row count (0 if unreadable)."""
    rel = _rel(report, path)
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
    except (OSError, pa.ArrowException) as exc:
        report.problems.append(Problem(rel, "unreadable", f"cannot open: {_one_line(exc)}"))
        return 0
    with pf:
        schema = pf.schema_arrow
        diff = _schema_diff(schema, expected)
        if diff is not None:
            report.problems.append(Problem(rel, "schema", diff))
            return 0
        meta = pf.metadata.metadata or {}
        stored, stored_raw = meta.get(CHECKSUM_KEY), meta.get(RAW_CHECKSUM_KEY)
        plain = pa.schema([f.remove_metadata() for f in schema])
        hasher = ContentHasher(logical_schema(part.stream) if part is not None else plain)
        raw_hash = hashlib.sha256()
        with_raw = stored_raw is not None and part is not None
        first = last = None
        disorder = None
        try:
            for rg in range(pf.num_row_groups):
                group = pf.read_row_group(rg, use_threads=False)
                for name in _stats_mismatch(pf.metadata.row_group(rg), group):
                    report.problems.append(Problem(
                        rel, "checksum", f"row group {rg} statistics of {name} differ from "
                        "its values"))
                if part is None:
                    hasher.update(group)
                    continue
                logical = logical_batch(part.stream, group)
                hasher.update(logical)
                if with_raw:
                    update_raw_checksum(raw_hash, logical)
                if group.num_rows == 0:
                    continue
                recv = group.column("recv_ns").combine_chunks()
                if first is None:
                    first = recv[0].as_py()
                if disorder is None:
                    disorder = _first_decrease(recv, last, hasher.rows - group.num_rows)
                last = recv[-1].as_py()
        except (OSError, pa.ArrowException, ValueError, CorruptDataError) as exc:
            report.problems.append(Problem(rel, "unreadable",
                                           f"data does not decode: {_one_line(exc)}"))
            return 0
    rows = hasher.rows
    if rows != pf.metadata.num_rows:
        report.problems.append(Problem(rel, "unreadable",
                                       f"{rows} rows decoded, footer says {pf.metadata.num_rows}"))
    if stored is None and stored_raw is None and part is not None:
        report.notes.append(f"{rel}: no content checksum in metadata (not verifiable)")
    if stored is not None and stored.decode(errors="replace") != hasher.hexdigest():
        report.problems.append(Problem(rel, "checksum",
                                       "content checksum differs from the stored one"))
    if with_raw and stored_raw is not None and (
            stored_raw.decode(errors="replace") != raw_hash.hexdigest()):
        report.problems.append(Problem(rel, "checksum",
                                       "recv_ns/raw checksum differs from the stored one"))
    if part is not None:
        _check_partition_rows(report, rel, part, rows, first, last, disorder)
    return rows


def _stats_mismatch(rg: Any, table: pa.Table) -> list[str]:
    """Columns whose footer statistics (null count, numeric min/max) disagree with the rows."""
    bad = []
    for j in range(rg.num_columns):
        meta = rg.column(j)
        st = meta.statistics
        name = meta.path_in_schema
        if st is None or name not in table.column_names:
            continue
        col = table.column(name)
        if st.has_null_count and st.null_count != col.null_count:
            bad.append(name)
        elif st.has_min_max and (pa.types.is_integer(col.type) or pa.types.is_floating(
                col.type) or pa.types.is_boolean(col.type)):
            mm = pc.min_max(col)
            if (mm["min"].as_py(), mm["max"].as_py()) != (st.min, st.max):
                bad.append(name)
    return bad


def _first_decrease(recv: Any, prev: int | None, base: int) -> int | None:
    """Row number (in the file) of the first ``recv_ns`` smaller than the one before it."""
    if prev is not None and recv[0].as_py() < prev:
        return base
    if len(recv) < 2:
        return None
    dropped = pc.less(pc.pairwise_diff(recv), pa.scalar(0, pa.int64()))
    idx = pc.index(dropped, True).as_py()
    return None if idx < 0 else base + idx

def _check_partition_rows(report: VerifyReport, rel: str, part: Partition, rows: int,
                          first: int | None, last: int | None, disorder: int | None) -> None:
    if rows == 0 or first is None or last is None:
        report.problems.append(Problem(rel, "empty", "partition has no rows"))
        return
    if disorder is not None:
        report.problems.append(Problem(rel, "order", f"recv_ns decreases at row {disorder}"))
    if (first, last) != (part.first_ns, part.last_ns) and disorder is None:
        report.problems.append(Problem(
            rel, "name", f"rows span {first}-{last}, name says {part.first_ns}-{part.last_ns}"))
    if date_of_ns(part.first_ns) != part.date:
        report.problems.append(Problem(rel, "name", f"first row is dated "
                                       f"{date_of_ns(part.first_ns)}, directory {part.date}"))


def _check_overlaps(report: VerifyReport, listing: ArchiveListing) -> None:
    for stream in listing.streams:
        prev: Partition | None = None
        for p in sorted(listing.partitions(stream), key=lambda q: q.key):
            if prev is not None and p.first_ns < prev.last_ns:
                report.problems.append(Problem(
                    _rel(report, p.path), "overlap",
                    f"range {p.first_ns}-{p.last_ns} overlaps {prev.path.name}"))
            if prev is None or p.last_ns > prev.last_ns:
                prev = p


def _check_layout(report: VerifyReport, listing: ArchiveListing, live: bool) -> None:
    for tmp in listing.tmp_files:
        if live and tmp.name.endswith(OPEN_SUFFIX):
            report.notes.append(f"{_rel(report, tmp)}: partition being written (--live)")
        else:
            report.problems.append(Problem(_rel(report, tmp), "tmp",
                                           "unfinished .tmp file left by a writer"))
    for stray in listing.stray_files:
        report.problems.append(Problem(_rel(report, stray), "stray", "not a partition file"))
    for old in listing.superseded:
        report.notes.append(f"{_rel(report, old.path)}: superseded by a compacted file "
                            "(interrupted compact; readers ignore it, `compact` removes it)")
    staging = listing.root / STAGING_DIR
    if staging.is_dir():
        for leftover in sorted(staging.iterdir()):
            report.notes.append(f"{_rel(report, leftover)}: staged output of an interrupted "
                                "compact (ignored; `compact` removes it)")
    journal = listing.root / JOURNAL_DIR
    if journal.is_dir():
        segments = sorted(p.name for p in journal.iterdir() if p.name.endswith(JOURNAL_SUFFIX))
        if segments and live:
            report.notes.append(f"{JOURNAL_DIR}: {len(segments)} open segment(s) (--live)")
        elif segments:
            report.problems.append(Problem(
                JOURNAL_DIR, "journal",
                f"{len(segments)} unsealed segment(s) ({', '.join(segments[:3])}"
                f"{', ...' if len(segments) > 3 else ''}); start the recorder once to seal them"))


def verify(archive: str | os.PathLike[str], live: bool = False) -> VerifyReport:
    """Check every file of ``archive`` (module docstring); never writes anything.

    ``live``: the recorder is running, so its open ``<first>-open.parquet.tmp`` partitions
    and journal segments are expected (reported as notes, not problems).
    """
    root = Path(archive)
    if not root.is_dir():
        raise ArchiveError(f"archive {os.fspath(archive)!r} is not a directory")
    listing = list_archive(root)
    report = VerifyReport(str(root))
    _check_layout(report, listing, live)
    for part in listing.partitions():
        report.files += 1
        report.rows += check_file(part.path, table_for(part.stream).schema, report, part)
    for old in listing.superseded:
        report.files += 1
        check_file(old.path, table_for(old.stream).schema, report, old)
    for gap_part in listing.gaps:
        report.files += 1
        check_file(gap_part.path, GAP_SCHEMA, report)
    _check_overlaps(report, listing)
    return report


__all__ = ["CHECKSUM_KEY", "GAP_SCHEMA", "RAW_CHECKSUM_KEY", "STAGING_DIR", "Problem",
           "VerifyReport", "check_file", "verify"]
