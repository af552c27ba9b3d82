"""``drip stats`` and ``drip report`` over 1,000,000 emails and 3,000,000 events.

The history: 200,000 leads, each recycled once (five reasons, five campaigns) and enrolled, five
emails each (steps s1…s5, one track) sent over 26 weeks; three events an email: a delivery (2 % hard
bounces, 1 % drops instead), then a mix of human and machine opens, human and scanner clicks,
replies, unsubscribes and complaints; 1 to 9 % of the leads handed back (by reason) to sales, and sales' word on half
of those. Built with one ``INSERT … SELECT`` a table (``generate_series`` on PostgreSQL, a
recursive CTE on SQLite), then ``ANALYZE``. ``--quick``: 20,000 emails.

Measured, each the best of 3 (after one warm-up), on SQLite and PostgreSQL:

- ``stats.<db>.by_campaign``: :func:`dripengine.reports.stats.by_campaign` (what ``drip stats`` runs), the
  target ≤ 5 s on SQLite; and the other views (``by_step``, ``by_week``, ``by_reason``);
- ``stats.<db>.report``: :func:`dripengine.reports.html.build` end to end (every query the page needs,
  and the HTML), with the file's size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from benchmarks.common import Context, measurement, postgres_engine, skipped, sqlite_engine
from dripengine.reports import stats

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
START = "2026-05-18 00:00:00"  # a Monday, 26 weeks before NOW
HOURS = 26 * 7 * 24
EMAILS_PER_LEAD = 5
REPEATS = 3
TARGET_SECONDS = 5.0
REASONS = ("no_budget", "bad_timing", "no_decision", "competitor", "not_a_fit")
CAMPAIGNS = (
    "lost-sql-winback",
    "rejected-mql-nurture",
    "lost-opportunity",
    "competitor-switch",
    "budget-next-quarter",
)


def _at(postgres: bool, hours: str) -> str:
    """SQL for START + ``hours`` hours, in the column format of each database."""
    if postgres:
        return f"(timestamptz '{START}+00' + make_interval(hours => {hours}))"
    return f"(strftime('%Y-%m-%d %H:%M:%S', '{START}', '+' || ({hours}) || ' hours') || '.000000')"


def _numbers(postgres: bool, count: str) -> tuple[str, str]:
    """(a prefix, a FROM clause) that give the rows n = 1 … count."""
    if postgres:
        return "", f"generate_series(1, {count}) AS n"
    return (
        f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {count}) ",
        "seq",
    )


def statements(postgres: bool) -> list[str]:

    def pick(names: tuple[str, ...], expr: str) -> str:
        cases = " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(names))
        return f"CASE ({expr}) % {len(names)} {cases} END"

    def reason(expr: str) -> str:
        return pick(REASONS, expr)

    def campaign(expr: str) -> str:
        return pick(CAMPAIGNS, expr)

    def handed_back(x: str) -> str:
        # per reason (x % 5) a different share of the leads comes back: 6, 9, 3, 2 and 1 %
        return f"(({x}) / 5 % 100 < CASE ({x}) % 5 WHEN 0 THEN 6 WHEN 1 THEN 9 WHEN 2 THEN 3 WHEN 3 THEN 2 ELSE 1 END)"

    json_empty = "'{}'::jsonb" if postgres else "'{}'"
    true, false = ("true", "false") if postgres else ("1", "0")
    out = []
    pre, src = _numbers(postgres, ":leads")
    out.append(
        pre + "INSERT INTO lead (email, attributes, stage, score, recycle_count, created_at, "
        "updated_at) "
        f"SELECT 'lead' || n || '@history.example', {json_empty}, "
        f"CASE WHEN {handed_back('n')} THEN 'mql' ELSE 'recycled' END, 0.0, 1, {_at(postgres, '0')}, "
        f"{_at(postgres, '0')} FROM {src}"
    )
    out.append(
        pre + "INSERT INTO recycle_record (lead_id, from_stage, reason, at, recycle_count, "
        "campaign_id, outcome) "
        f"SELECT n, 'sql', {reason('n')}, {_at(postgres, 'n % 168')}, 1, "
        f"{campaign('n')}, 'enrolled' FROM {src}"
    )
    out.append(
        pre + "INSERT INTO enrollment (lead_id, campaign_id, campaign_version, status, track, "
        "current_step, step_index, round, enrolled_at, updated_at) "
        f"SELECT n, {campaign('n')}, 1, 'completed', 'cold', NULL, 5, 1, "
        f"{_at(postgres, 'n % 168')}, {_at(postgres, 'n % 168')} FROM {src}"
    )
    pre, src = _numbers(postgres, ":emails")
    # email n: lead (n - 1) / 5 + 1, step (n - 1) % 5 + 1, a week apart
    lead = f"((n - 1) / {EMAILS_PER_LEAD} + 1)"
    sent_hours = f"(({lead}) % 168 + ((n - 1) % 5) * 24 * 7 + ({lead}) % 19 * 168 % {HOURS - 900})"
    out.append(
        pre + "INSERT INTO message (uid, enrollment_id, lead_id, campaign_id, round, step_id, "
        "track, provider, status, attempts, created_at, sent_at) "
        f"SELECT 'm' || n, {lead}, {lead}, {campaign(lead)}, 1, "
        f"'s' || ((n - 1) % 5 + 1), 'cold', 'sendgrid', 'sent', 1, "
        f"{_at(postgres, sent_hours)}, {_at(postgres, sent_hours)} FROM {src}"
    )
    pre, src = _numbers(postgres, ":events")
    # event n: email m = (n - 1) % emails + 1, the k-th (0, 1, 2) of its three events; h1, h2 and
    # h3 spread the outcomes over the emails (permutations of m's residues, so no campaign, step
    # or reason gets all of one outcome)
    m = "((n - 1) % :emails + 1)"
    k = "((n - 1) / :emails)"
    h1 = f"({m} % 1000 * 7919 % 1000)"
    h2 = f"({m} % 997 * 31 % 100)"
    h3 = f"({m} % 991 * 17 % 1000)"
    kind = (
        f"CASE WHEN {k} = 0 THEN CASE WHEN {h1} < 20 THEN 'bounce' WHEN {h1} < 30 THEN 'dropped' "
        f"WHEN {h1} < 40 THEN 'soft_bounce' ELSE 'delivered' END "
        f"WHEN {h1} < 40 THEN 'deferred' "
        f"WHEN {k} = 1 THEN CASE WHEN {h2} < 50 THEN 'open' WHEN {h2} < 55 THEN 'click' "
        f"ELSE 'processed' END "
        f"ELSE CASE WHEN {h3} < 60 THEN 'click' WHEN {h3} < 70 THEN 'reply' "
        f"WHEN {h3} < 75 THEN 'unsubscribe' WHEN {h3} < 76 THEN 'complaint' "
        f"WHEN {h3} < 86 THEN 'auto_reply' WHEN {h3} < 286 THEN 'open' ELSE 'processed' END END"
    )
    # the second event: 30 % human opens, 20 % machine opens (proxies), 5 % scanner clicks
    machine = f"CASE WHEN {k} = 1 AND {h1} >= 40 AND {h2} >= 30 AND {h2} < 55 THEN {true} ELSE {false} END"
    m_lead = f"(({m} - 1) / {EMAILS_PER_LEAD} + 1)"
    m_hours = f"(({m_lead}) % 168 + (({m} - 1) % 5) * 24 * 7 + ({m_lead}) % 19 * 168 % {HOURS - 900} + {k} + 1)"
    out.append(
        pre + "INSERT INTO event (message_id, lead_id, type, provider, occurred_at, received_at, "
        "machine, raw) "
        f"SELECT {m}, {m_lead}, {kind}, 'sendgrid', {_at(postgres, m_hours)}, "
        f"{_at(postgres, m_hours)}, {machine}, {json_empty} FROM {src}"
    )
    # 1 to 9 % of the leads handed back (by reason) (after its third email); sales' word on about half of those
    out.append(
        "INSERT INTO handoff (uid, lead_id, campaign_id, score, fit_grade, payload, status, "
        "attempts, created_at) "
        f"SELECT 'h' || id, id, {campaign('id')}, 60.0, 'B', {json_empty}, 'delivered', 1, "
        f"{_at(postgres, 'id % 168 + 2 * 24 * 7 + 12')} FROM lead WHERE {handed_back('id')}"
    )
    out.append(
        "INSERT INTO feedback (lead_id, handoff_id, outcome, campaign_id, recycle_reason, "
        "score_at_handoff, fit_at_handoff, at) "
        "SELECT lead_id, id, CASE lead_id / 15 % 4 WHEN 0 THEN 'won' WHEN 1 THEN 'rejected' "
        "ELSE 'accepted' END, campaign_id, NULL, score, fit_grade, "
        f"{_at(postgres, 'lead_id % 168 + 2 * 24 * 7 + 48')} FROM handoff WHERE lead_id / 5 % 3 <> 0"
    )
    return out


def populate(engine: Engine, emails: int) -> None:
    postgres = engine.dialect.name == "postgresql"
    leads = emails // EMAILS_PER_LEAD
    params = {"leads": leads, "emails": emails, "events": emails * 3}
    with engine.begin() as connection:
        for sql in statements(postgres):
            connection.execute(text(sql), params)
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))


def best(action: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of the fastest of :data:`REPEATS` runs after a warm-up, and the last result."""
    result = action()
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return min(times), result


def backends(
    ctx: Context,
) -> Iterator[tuple[str, Callable[[str], AbstractContextManager[Engine]]]]:
    yield "sqlite", lambda label: nullcontext(sqlite_engine(ctx, label))
    if ctx.postgres_url is not None:
        yield "postgres", lambda label: postgres_engine(ctx, label)


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    from dripengine.reports import html as report

    emails = ctx.size(1_000_000, 20_000)
    window = stats.Window(now=NOW)
    for backend, fresh in backends(ctx):
        with fresh("stats") as engine:
            started = time.perf_counter()
            populate(engine, emails)
            built = time.perf_counter() - started
            size = {"emails": emails, "events": emails * 3, "build_seconds": round(built, 1)}
            for by in stats.BY:

                def view(by: str = by) -> list[stats.Row]:
                    with engine.connect() as connection:
                        return stats.read(connection, by, window)

                seconds, rows = best(view)
                line = measurement(f"stats.{backend}.by_{by}", seconds, "s", rows=len(rows), **size)
                if by == "campaign":
                    line.update(target=TARGET_SECONDS, meets_target=seconds <= TARGET_SECONDS)
                yield line
            seconds, page = best(lambda: report.build(engine, window))
            yield measurement(
                f"stats.{backend}.report", seconds, "s", html_bytes=len(page.encode()), **size
            )
            engine.dispose()
    if ctx.postgres_url is None:
        yield skipped("stats.postgres", ctx.postgres_skip_reason)
