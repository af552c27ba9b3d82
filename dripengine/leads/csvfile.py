"""A CSV file's header and rows: encoding, delimiter, header names and physical line numbers.

UTF-8 with or without a BOM; the delimiter is sniffed from the header line (``,`` ``;`` or tab).
The header names the columns; they are normalised (stripped, lower-cased, runs of spaces and
hyphens become ``_``) and a few common aliases are mapped (``E-mail`` -> ``email``, ``Surname`` ->
``last_name``, ...). Each row keeps the physical line it starts on; a row the reader cannot read
becomes the reason, and the rows after it are read as usual. Pure of the database: what a row
means for a lead is :mod:`dripengine.leads.csvrows`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from os import PathLike
from pathlib import Path
from typing import Protocol, TextIO

from dripengine.exceptions import ImportFileError

__all__ = [
    "ALIASES",
    "CsvRecord",
    "Row",
    "csv_rows",
    "normalise_header",
    "read_csv_records",
    "read_csv_rows",
    "read_header",
    "sniff_delimiter",
]

ALIASES: dict[str, str] = {
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "firstname": "first_name",
    "first": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "last": "last_name",
    "organisation": "company",
    "organization": "company",
    "company_name": "company",
    "job_title": "title",
    "tz": "timezone",
    "time_zone": "timezone",
    "phone_number": "phone",
}
DELIMITERS = (",", ";", "\t")
_SPACES = re.compile(r"[\s\-]+")


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One data row of a CSV file: its first physical line and its values by column name."""

    line: int
    values: dict[str, str]
    surplus: int = 0  # fields beyond the header's columns (not in ``values``)
    problem: str | None = None  # the row could not be read as CSV (then ``values`` is empty)


class _Reader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...


@lru_cache(maxsize=1024)
def normalise_header(name: str) -> str:
    """``" E-Mail "`` -> ``"email"``; ``"Job Title"`` -> ``"title"``; others just normalised."""
    key = _SPACES.sub("_", name.strip().lower())
    return ALIASES.get(key, key)


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a file: whichever of ``,`` ``;`` and tab its header line uses most."""
    best_count, best = max((header_line.count(c), c) for c in reversed(DELIMITERS))
    return best if best_count else ","


def read_header(header: Sequence[str], *, source: str) -> list[str]:
    """The normalised column names (``""`` for an unnamed column); duplicates are refused."""
    names = [normalise_header(name) for name in header]
    originals: dict[str, list[str]] = {}
    for original, name in zip(header, names, strict=True):
        if name:
            originals.setdefault(name, []).append(original.strip())
    duplicates = [
        f"{', '.join(given)} (all mean {name})"
        for name, given in originals.items()
        if len(given) > 1
    ]
    if duplicates:
        raise ImportFileError(
            f"{source}: duplicate columns: {'; '.join(duplicates)}; keep one of each"
        )
    return names


Row = tuple[int, "list[str] | str"]  # the physical line a row starts on, its fields (or why not)


def csv_rows(lines: Iterable[str], *, source: str) -> tuple[list[str], Iterator[Row]]:
    """The normalised header and the rows of a CSV file's text lines (opened with ``newline=""``).

    Raises :class:`ImportFileError` for an empty file or duplicate columns. Blank lines (and
    lines of delimiters only) are skipped; a row's line is the physical line it starts on,
    multi-line quoted fields counted.
    """
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None or not first.strip():
        raise ImportFileError(
            f"{source}: the file is empty; its first line must name the columns "
            "(e.g. email,first_name,last_name,company)"
        )
    first = first.removeprefix("\ufeff")
    reader = csv.reader(chain([first], iterator), delimiter=sniff_delimiter(first))
    header = read_header(next(reader), source=source)
    return header, _numbered(reader)


def _numbered(reader: _Reader) -> Iterator[Row]:
    """``(line, fields)`` per row; ``(line, why)`` for a row the reader could not read (a field
    over its 131,072-character limit, say): the rows after it are read as usual."""
    line = reader.line_num
    rows = iter(reader)
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            start, line = line + 1, reader.line_num
            yield start, _unreadable(exc)
            continue
        start, line = line + 1, reader.line_num
        if any(values):  # else a blank line, or one of delimiters only (Excel writes those)
            yield start, values


def _unreadable(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"a field is longer than {csv.field_size_limit():,} characters; "
            "shorten it (or check for an unclosed double quote)"
        )
    return f"cannot be read as CSV: {exc}"


def read_csv_rows(path: str | PathLike[str]) -> tuple[list[str], Iterator[Row]]:
    """The normalised header and the rows of the CSV file at ``path``.

    UTF-8 with or without a BOM; the delimiter is sniffed (``,`` ``;`` or tab). The header is
    checked now; the rows are read lazily, the file closed when they are exhausted.
    """
    path = Path(path)
    with _open(path) as handle:
        header, _ = csv_rows(_decoded(handle, path), source=str(path))
    return header, _rows_of(path)


def _rows_of(path: Path) -> Iterator[Row]:
    with _open(path) as handle:
        _, rows = csv_rows(_decoded(handle, path), source=str(path))
        yield from rows


def read_csv_records(path: str | PathLike[str]) -> tuple[list[str], Iterator[CsvRecord]]:
    """Like :func:`read_csv_rows`, each row as a :class:`CsvRecord` of values by column name."""
    header, rows = read_csv_rows(path)
    return header, _records(header, rows)


def _records(header: list[str], rows: Iterable[Row]) -> Iterator[CsvRecord]:
    width = len(header)
    named = [(i, name) for i, name in enumerate(header) if name]
    for line, values in rows:
        if isinstance(values, str):
            yield CsvRecord(line, {}, problem=values)
            continue
        found = {name: values[i] for i, name in named if i < len(values)}
        yield CsvRecord(line, found, max(len(values) - width, 0))


def _open(path: Path) -> TextIO:
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read the file: {exc.strerror}") from None


def _decoded(handle: TextIO, path: Path) -> Iterator[str]:
    """The lines of ``handle``, with a decoding error turned into a message that names the fix."""
    try:
        yield from handle
    except UnicodeDecodeError:
        raise ImportFileError(
            f"{path}: line {_first_bad_line(path)} is not UTF-8; "
            'save the file as "CSV UTF-8" and try again'
        ) from None


def _first_bad_line(path: Path) -> int:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0
