"""The batch statements (``dripengine.storage.dialect`` on PostgreSQL, the portable forms on SQLite) agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from dripengine.storage.dialect import any_of
from dripengine.storage.messages import ENROLLMENT, MESSAGE, insert_messages, update_rows
from dripengine.storage.rounds import LEAD
from tests import rows

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _leads_and_enrollments(engine: Engine, count: int) -> tuple[list[int], list[int]]:
    leads = [rows.lead(engine, f"lead{n}@example.com", NOW) for n in range(count)]
    return leads, [rows.enrollment(engine, lead, "lost-sql-winback", NOW) for lead in leads]


def test_any_of_selects_what_in_selects(engine: Engine) -> None:
    leads, _ = _leads_and_enrollments(engine, 5)
    with engine.connect() as connection:

        def ids(values: list[int]) -> list[int]:
            query = select(LEAD.c.id).where(any_of(connection, LEAD.c.id, values))
            return sorted(connection.execute(query).scalars())

        assert ids([*leads[1:4], 10**9]) == leads[1:4]
        assert ids([]) == []
        emails = select(LEAD.c.email).where(
            any_of(connection, LEAD.c.email, ["lead0@example.com", "nobody@example.com"])
        )
        assert list(connection.execute(emails).scalars()) == ["lead0@example.com"]


def test_update_rows_sets_values_nulls_and_aware_times_and_honours_the_status_guard(
    engine: Engine,
) -> None:
    _, enrollments = _leads_and_enrollments(engine, 4)
    later = NOW + timedelta(days=3, hours=1)
    with engine.begin() as connection:
        connection.execute(
            ENROLLMENT.update()
            .where(ENROLLMENT.c.id == enrollments[3])
            .values(status="exited", lease_owner="w")
        )
        update_rows(
            connection,
            ENROLLMENT,
            [
                {"id": e, "next_due_at": later, "lease_owner": None, "current_step": f"s{n}"}
                for n, e in enumerate(enrollments)
            ]
            + [{"id": enrollments[0], "status": "completed", "next_due_at": None}],
            where_status="active",
        )
    with engine.connect() as connection:
        by_id = {
            r.id: r
            for r in connection.execute(
                select(
                    ENROLLMENT.c.id,
                    ENROLLMENT.c.status,
                    ENROLLMENT.c.next_due_at,
                    ENROLLMENT.c.current_step,
                    ENROLLMENT.c.lease_owner,
                )
            )
        }
    assert [by_id[e].current_step for e in enrollments[:3]] == ["s0", "s1", "s2"]
    assert by_id[enrollments[1]].next_due_at == later  # aware UTC, as written
    assert by_id[enrollments[0]].status == "completed" and by_id[enrollments[0]].next_due_at is None
    assert by_id[enrollments[3]].current_step == "checkin"  # not active: the guard kept it
    assert by_id[enrollments[3]].lease_owner == "w"


def test_update_rows_naming_a_row_twice_applies_both_in_order(engine: Engine) -> None:
    """The second update sees the first one's result (its status guard fails here)."""
    _, enrollments = _leads_and_enrollments(engine, 2)
    with engine.begin() as connection:
        update_rows(
            connection,
            ENROLLMENT,
            [
                {"id": enrollments[0], "status": "completed"},
                {"id": enrollments[0], "status": "exited"},
                {"id": enrollments[1], "status": "exited"},
            ],
            where_status="active",
        )
        statuses = dict(connection.execute(select(ENROLLMENT.c.id, ENROLLMENT.c.status)).all())
    assert statuses == {enrollments[0]: "completed", enrollments[1]: "exited"}


def test_insert_messages_returns_new_ids_and_skips_existing_keys(engine: Engine) -> None:
    leads, enrollments = _leads_and_enrollments(engine, 3)

    def row(n: int, step: str) -> dict[str, object]:
        return {
            "uid": f"{n}-{step}",
            "enrollment_id": enrollments[n],
            "lead_id": leads[n],
            "campaign_id": "lost-sql-winback",
            "round": 1,
            "step_id": step,
            "track": None,
            "status": "sending",
            "attempts": 1,
            "created_at": NOW,
            "sent_at": None,
        }

    with engine.begin() as connection:
        first = insert_messages(connection, [row(0, "intro"), row(1, "intro")])
        second = insert_messages(
            connection, [{**row(1, "intro"), "uid": "again"}, row(2, "intro"), row(0, "two")]
        )
        stored = dict(connection.execute(select(MESSAGE.c.uid, MESSAGE.c.id)).all())
    assert set(first) == {(enrollments[0], 1, "intro"), (enrollments[1], 1, "intro")}
    assert set(second) == {(enrollments[2], 1, "intro"), (enrollments[0], 1, "two")}
    assert "again" not in stored  # the existing (enrollment, round, step) stood
    assert stored["2-intro"] == second[(enrollments[2], 1, "intro")]
    assert insert_messages(connection, []) == {}
