"""``drip leads import`` throughput, end to end (read, validate, upsert).

Target: at least 50,000 rows/s for a 100,000-row CSV into an empty database, on SQLite and on
PostgreSQL (``meets_target`` in both ``insert`` lines). Measured on SQLite and, when a server is
configured, PostgreSQL: a first import into an empty database (all inserts), a re-import
of the same file (all updates), and a naive baseline side by side on a smaller sample (one ORM
``Lead`` a row through ``session.add``, a look-up a row, full ``validate_email`` a row).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from email_validator import validate_email
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from benchmarks.common import (
    Context,
    compared,
    measurement,
    postgres_engine,
    skipped,
    sqlite_engine,
    timed,
)
from dripengine.leads import import_leads_file
from dripengine.storage.models import Lead

TARGET_ROWS_PER_S = 50_000
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
HEADER = [
    "Email",
    "First Name",
    "Last Name",
    "Company",
    "Job Title",
    "Phone",
    "Country",
    "Time Zone",
    "Industry",
    "Employees",
    "Lost Reason",
    "Owner",
]
FIRST = ["Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kai"]
LAST = ["Müller", "Smith", "García", "Rossi", "Nowak", "Dubois", "Jensen", "Sato", "Kaya", "Berg"]
TITLES = ["CTO", "Head of Marketing", "VP Sales", "Developer", "Founder", "Buyer", "", ""]
PLACES = [
    ("DE", "Europe/Berlin", "+49 30 {n:07d}"),
    ("FR", "Europe/Paris", "+33 1 {n:08d}"),
    ("US", "America/New_York", "+1 212 {n:07d}"),
    ("GB", "Europe/London", "+44 20 {n:08d}"),
    ("JP", "Asia/Tokyo", "+81 3 {n:08d}"),
]
INDUSTRIES = ["saas", "retail", "manufacturing", "finance", "health", "logistics", ""]
REASONS = ["no_budget", "timing", "competitor", "no_decision", "champion_left"]


def write_leads_csv(path: Path, rows: int, *, seed: int = 42, domains: int = 2000) -> Path:
    """A realistic lead list: ~``domains`` company domains, a few extra attribute columns."""
    rng = random.Random(seed)
    companies = [
        f"{rng.choice(['acme', 'globex', 'initech', 'umbrella', 'stark'])}{i}"
        for i in range(domains)
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            first, last, company = rng.choice(FIRST), rng.choice(LAST), rng.choice(companies)
            country, zone, phone = rng.choice(PLACES)
            local = f"{first}.{last}.{n}".replace("é", "e").replace("ü", "u").replace("í", "i")
            writer.writerow(
                [
                    f"{local}@{company}.example"
                    if n % 10
                    else f"{local.upper()}@{company.upper()}.EXAMPLE",
                    first,
                    last,
                    company.title() + " GmbH",
                    rng.choice(TITLES),
                    phone.format(n=n),
                    country,
                    zone,
                    rng.choice(INDUSTRIES),
                    str(rng.choice([10, 50, 200, 1000, 5000])),
                    rng.choice(REASONS),
                    f"rep{rng.randrange(40)}@seller.example",
                ]
            )
    return path


def naive_import(engine: Engine, path: Path, now: datetime) -> int:
    """The obvious way: DictReader, full validate_email, a look-up and an ORM object per row."""
    count = 0
    with path.open(encoding="utf-8-sig", newline="") as handle, Session(engine) as session:
        for record in csv.DictReader(handle):
            email = validate_email(record["Email"], check_deliverability=False).normalized.lower()
            lead = session.exec(select(Lead).where(Lead.email == email)).first()
            attributes = {k: v for k, v in record.items() if k in HEADER[8:] and v}
            if lead is None:
                lead = Lead(email=email, attributes=attributes, created_at=now, updated_at=now)
            else:
                lead.attributes = {**lead.attributes, **attributes}
                lead.updated_at = now
            lead.first_name = record["First Name"] or lead.first_name
            lead.last_name = record["Last Name"] or lead.last_name
            lead.company = record["Company"] or lead.company
            lead.timezone = record["Time Zone"] or lead.timezone
            session.add(lead)
            count += 1
        session.commit()
    return count


def _backends(
    ctx: Context,
) -> Iterator[tuple[str, Callable[[str], AbstractContextManager[Engine]]]]:
    yield "sqlite", lambda label: nullcontext(sqlite_engine(ctx, label))
    if ctx.postgres_url is not None:
        yield "postgres", lambda label: postgres_engine(ctx, label)


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    rows = ctx.size(100_000, 2_000)
    sample = ctx.size(5_000, 200)
    big = write_leads_csv(ctx.tmp / "leads.csv", rows)
    small = write_leads_csv(ctx.tmp / "leads-sample.csv", sample)
    for backend, fresh in _backends(ctx):
        with fresh("naive") as engine:
            _, naive_seconds = timed(partial(naive_import, engine, small, NOW))
            engine.dispose()
        naive_rate = sample / naive_seconds
        with fresh("import") as engine:
            first = import_leads_file(engine, big, now=NOW)
            again = import_leads_file(engine, big, now=NOW)
            engine.dispose()
        assert first.inserted == rows and not first.errors, first.summary()
        assert again.updated == rows and not again.errors, again.summary()
        extra: dict[str, Any] = {
            "rows": rows,
            "baseline_rows": sample,
            "target": TARGET_ROWS_PER_S,
            "meets_target": rows / first.seconds >= TARGET_ROWS_PER_S,
        }
        yield compared(
            f"lead_import.{backend}.insert",
            rows / first.seconds,
            naive_rate,
            "rows/s",
            baseline_is="naive: ORM Lead a row + full validate_email",
            **extra,
        )
        yield measurement(
            f"lead_import.{backend}.reimport", rows / again.seconds, "rows/s", rows=rows
        )
    if ctx.postgres_url is None:
        yield skipped("lead_import.postgres", ctx.postgres_skip_reason)
