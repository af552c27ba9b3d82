"""``drip leads import``: read, validate and upsert leads in batches, and report what happened.

A batch is sent to the database, and the next one is read while the database writes it
(PostgreSQL; on SQLite the write is done when sent); its counts are added, and it is committed,
before the next batch is sent or the import ends, also when reading the rows fails.

Without ``strict`` each batch is committed on its own (good rows are kept, bad rows reported, and
SQLite's write lock is held one batch at a time); a re-run is harmless because the import is an
upsert. With ``strict`` the whole import is one transaction: once a bad row is seen nothing more is
written, the rest of the input is still checked so every error is reported, and the transaction is
rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from os import PathLike

from dripengine.leads.csvfile import read_csv_rows
from dripengine.leads.csvrows import LeadRow, RowError, lead_rows, parse_mappings
from dripengine.storage import Engine, suppression
from dripengine.storage.leads import Batch, Written

__all__ = ["BATCH_SIZE", "ImportReport", "import_leads_file", "import_leads_rows"]

BATCH_SIZE = 5000
ERASED_ROW = (
    "suppressed: this address was erased on request (`drip leads forget`) and is never "
    "imported or mailed again"
)
Progress = Callable[[int], None]


@dataclass
class ImportReport:
    """What an import did. ``aborted``: strict mode met bad rows, so nothing was imported."""

    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    ignored_stage: int = 0
    seconds: float = 0.0
    aborted: bool = False

    def summary(self) -> list[str]:
        """The report in a few lines of text, for a person."""
        rate = f" ({self.rows_read / self.seconds:,.0f} rows/s)" if self.seconds else ""
        lines = [
            f"{self.rows_read} rows in {self.seconds:.2f}s{rate}: {self.inserted} new, "
            f"{self.updated} updated, {len(self.errors)} with errors"
        ]
        if self.ignored_stage:
            lines.append(
                f"stage column ignored for {self.ignored_stage} existing leads "
                "(stage changes go through the funnel, e.g. `drip recycle`)"
            )
        if self.aborted:
            lines.append(
                f"strict mode: nothing imported because {len(self.errors)} rows have errors"
            )
        return lines


def import_leads_file(
    engine: Engine,
    path: str | PathLike[str],
    *,
    now: datetime,
    strict: bool = False,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import the CSV file at ``path`` (see :mod:`dripengine.leads.csvrows` for its columns).

    Raises :class:`~dripengine.exceptions.ImportFileError` for a problem with the whole file;
    problems with single rows are in the report's ``errors``.
    """
    started = time.perf_counter()
    header, records = read_csv_rows(path)
    rows = lead_rows(header, records, source=str(path))
    return _import(engine, rows, now, strict, progress, batch_size, started)


def import_leads_rows(
    engine: Engine,
    rows: Iterable[Mapping[str, object]],
    *,
    now: datetime,
    strict: bool = False,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    first_line: int = 1,
) -> ImportReport:
    """Import a stream of rows, each a mapping of column name to value as in a CSV file.

    Rows are numbered from ``first_line`` in the report's errors.
    """
    started = time.perf_counter()
    return _import(
        engine,
        parse_mappings(rows, first_line=first_line),
        now,
        strict,
        progress,
        batch_size,
        started,
    )


def _import(
    engine: Engine,
    rows: Iterable[LeadRow | RowError],
    now: datetime,
    strict: bool,
    progress: Progress | None,
    batch_size: int,
    started: float,
) -> ImportReport:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: pass an aware datetime (UTC)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    report = ImportReport()
    batch = Batch(engine, now)
    written: Written | None = None  # the batch being written while the next one is read
    with engine.connect() as connection:

        def settle() -> None:
            nonlocal written
            if written is not None:
                sent, written = written, None
                counts = sent.counts()
                report.inserted += counts.inserted
                report.updated += counts.updated
                report.ignored_stage += counts.ignored_stage
                if not strict:
                    connection.commit()

        def flush() -> None:
            nonlocal written
            if strict and report.errors:
                batch.clear()  # nothing will be kept: stop writing, keep checking
            else:
                settle()
                written = batch.send(connection)
            if progress is not None:
                progress(report.rows_read)

        erased = suppression.erased_hashes(connection)  # people who asked to be forgotten
        try:
            for row in rows:
                report.rows_read += 1
                if isinstance(row, RowError):
                    report.errors.append(row)
                    continue
                if erased and suppression.hashed(row.email) in erased:
                    report.errors.append(RowError(row.line, row.email, ERASED_ROW))
                    continue
                batch.add(row)
                if len(batch) >= batch_size:
                    flush()
            flush()
        finally:
            settle()  # also when reading failed: the batch sent last is kept, as the ones before
        if strict and report.errors:
            connection.rollback()
            report.inserted = report.updated = report.ignored_stage = 0
            report.aborted = True
        else:
            connection.commit()
    report.seconds = time.perf_counter() - started
    return report
