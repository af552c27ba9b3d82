"""The API over real HTTP against `drip serve`: bearer token, /api/recycle (the CLI's rules and
rows), /api/events; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from dripengine.config import load_settings
from dripengine.storage.engine import make_engine
from tests.clirun import NOW, drip
from tests.served import Answer, drip_serve, free_port, request

pytestmark = pytest.mark.slow  # `drip serve` subprocesses

TOKEN = "api-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def api(folder: Path) -> Iterator[str]:
    with drip_serve(folder, free_port(), now=NOW, env={"DRIP_API_TOKEN": TOKEN}) as base:
        yield base


def post(base: str, path: str, body: Any, headers: dict[str, str] | None = None) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request(base, "POST", path, body=raw, headers=AUTH if headers is None else headers)


def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = make_engine(load_settings().database_url)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def execute(*statements: str) -> None:
    engine = make_engine(load_settings().database_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def test_the_token_is_required_and_compared(api: str) -> None:
    deal = {"email": "jane@acme.example", "from": "sql", "reason": "no_budget"}
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
    ):
        for path in ("/api/recycle", "/api/events"):
            answer = post(api, path, deal, headers)
            assert answer.status == 401, (headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
    assert rows("SELECT * FROM lead") == []
    assert post(api, "/api/recycle", deal).status == 201


def test_without_a_token_configured_the_api_is_closed(folder: Path) -> None:
    with drip_serve(folder, free_port(), now=NOW) as base:
        answer = post(base, "/api/recycle", {"email": "jane@acme.example"})
        assert answer.status == 503 and "DRIP_API_TOKEN" in answer.json_error()
        assert post(base, "/api/events", [], {}).status == 503


def snapshot(email: str) -> dict[str, list[dict[str, Any]]]:
    """What a recycle wrote for ``email``, without ids (they depend on the order of inserts)."""
    lead = rows(
        "SELECT email, stage, score, recycle_count, company, first_name, title, attributes, "
        "created_at, updated_at FROM lead WHERE email = :e",
        e=email,
    )
    tables = {
        "stage_change": "SELECT from_stage, to_stage, reason, actor, at FROM stage_change "
        "WHERE lead_id = (SELECT id FROM lead WHERE email = :e) ORDER BY id",
        "recycle_record": "SELECT from_stage, reason, note, actor, at, recycle_count, "
        "campaign_id, outcome, detail FROM recycle_record "
        "WHERE lead_id = (SELECT id FROM lead WHERE email = :e) ORDER BY id",
        "enrollment": "SELECT campaign_id, campaign_version, status, track, current_step, "
        "step_index, round, next_due_at, exit_reason, enrolled_at FROM enrollment "
        "WHERE lead_id = (SELECT id FROM lead WHERE email = :e) ORDER BY id",
    }
    found = {"lead": lead}
    for name, sql in tables.items():
        found[name] = rows(sql, e=email)
    for lead_row in found["lead"]:
        if isinstance(lead_row["attributes"], str):
            lead_row["attributes"] = json.loads(lead_row["attributes"])
    return found


def test_a_recycle_over_the_api_writes_the_rows_the_cli_writes(api: str, folder: Path) -> None:
    email = "jane.doe@acme.example"
    deal = {
        "email": email,
        "from": "sql",
        "reason": "no_budget",
        "note": "revisit in Q3",
        "actor": "crm",
        "first_name": "Jane",
        "company": "Acme",
        "title": "Head of Ops",
        "employees": 120,
    }
    answer = post(api, "/api/recycle", deal)
    assert answer.status == 201, answer.text
    outcome = json.loads(answer.body)
    assert outcome["outcome"] == "enrolled" and outcome["campaign_id"] == "lost-sql-winback"
    assert outcome["message"].startswith(f"{email} recycled from SQL (no_budget) into")
    by_api = snapshot(email)
    assert by_api["lead"][0]["attributes"] == {"employees": 120}

    execute(
        "DELETE FROM enrollment",
        "DELETE FROM recycle_record",
        "DELETE FROM stage_change",
        "DELETE FROM score_change",
        "DELETE FROM lead",
    )
    csv = folder / "one-deal.csv"
    csv.write_text(
        "email,from_stage,reason,note,actor,first_name,company,title,employees\n"
        f"{email},sql,no_budget,revisit in Q3,crm,Jane,Acme,Head of Ops,120\n"
    )
    code, _, err = drip("recycle", "--csv", str(csv), "--create")
    assert code == 0, err
    by_cli = snapshot(email)
    by_cli["lead"][0]["attributes"] = {
        k: int(v) if str(v).isdigit() else v for k, v in by_cli["lead"][0]["attributes"].items()
    }  # a CSV cell is text; JSON keeps the number
    assert by_api == by_cli
    assert by_api["enrollment"] and by_api["recycle_record"] and len(by_api["stage_change"]) == 1

    # the same push again: the CLI's re-entry rules (kept / restarted), answered 200
    again = post(api, "/api/recycle", deal)
    assert again.status == 200 and json.loads(again.body)["outcome"] != "enrolled"


def test_bad_recycle_input_gets_a_clear_4xx_and_changes_nothing(api: str) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"email": "a@acme.example", "from": "sql", "reason": "nope"}, 422, "use one of: "),
        ({"email": "a@acme.example", "from": "sql"}, 422, "reason: Field required"),
        (
            {"email": "a@acme.example", "from": "sql", "reason": 5},
            422,
            "reason: Input should be a valid string",
        ),
        (
            {"email": "a@acme.example", "from": "sql", "reason": "no_budget", "note": ["x"]},
            422,
            "note:",
        ),
        (
            {"email": "a@acme.example", "from": 3, "reason": "no_budget"},
            422,
            "from: expected a stage name",
        ),
        (
            {"email": "a@acme.example", "from": "sql", "reason": "no_budget", "company": 3},
            422,
            "company: expected a string",
        ),
        (
            {"email": "a@acme.example", "from": "sql", "reason": "no_budget", "deal": {"x": 1}},
            422,
            "deal:",
        ),
        (
            {"email": "not an address", "from": "sql", "reason": "no_budget"},
            422,
            "not a valid email address",
        ),
        (
            {"email": "a@acme.example", "reason": "no_budget"},
            422,
            'say which stage sales had it in with "from"',
        ),
        ({"email": "a@acme.example", "from": "customer", "reason": "no_budget"}, 422, "not from"),
        ([{"email": "a@acme.example"}], 400, "expected a JSON object"),
        (b"{not json", 400, "not JSON"),
    ]
    for body, status, message in cases:
        answer = post(api, "/api/recycle", body)
        assert answer.status == status, (body, answer.text)
        assert message in answer.json_error(), (body, answer.text)
    assert rows("SELECT * FROM lead") == []


def test_custom_events_are_ingested_once_and_bad_ones_name_the_field(api: str) -> None:
    assert (
        post(
            api,
            "/api/recycle",
            {"email": "jane@acme.example", "from": "sql", "reason": "no_budget"},
        ).status
        == 201
    )
    events = [
        {
            "email": "Jane@Acme.example",
            "type": "demo_request",
            "id": "crm-1",
            "url": "https://acme.example/demo",
        },
        {
            "email": "jane@acme.example",
            "type": "site_visit",
            "occurred_at": "2026-11-23T09:30:00+01:00",
        },
        {"email": "nobody@acme.example", "type": "form_fill"},
    ]
    answer = post(api, "/api/events", events)
    assert answer.status == 200, answer.text
    result = json.loads(answer.body)
    assert (result["received"], result["stored"], result["unmatched"]) == (3, 3, 1)
    # by type: on PostgreSQL a batch's rows go in in dedupe-key order, so ids say nothing of order
    stored = rows(
        "SELECT type, provider, provider_event_id, url, occurred_at FROM event ORDER BY type"
    )
    assert [(e["type"], e["provider"], e["provider_event_id"]) for e in stored] == [
        ("demo_request", "api", "crm-1"),
        ("form_fill", "api", None),
        ("site_visit", "api", None),
    ]
    when = stored[2]["occurred_at"]  # SQLite hands back text, PostgreSQL a datetime
    when = when.astimezone(UTC).replace(tzinfo=None) if isinstance(when, datetime) else when
    assert str(when).startswith("2026-11-23 08:30:00")
    assert rows("SELECT count(*) AS n FROM score_change")[0]["n"] >= 1  # the lead was rescored
    # the same id again: a duplicate, not a second demo request; one object works as well as a list
    again = post(api, "/api/events", events[0])
    assert json.loads(again.body)["duplicates"] == 1
    for body, message in (
        ([events[1], {"email": "jane@acme.example", "type": "open"}], "[1].type: Input should be"),
        (
            {
                "email": "jane@acme.example",
                "type": "site_visit",
                "occurred_at": "2026-11-23T09:30:00",
            },
            "occurred_at: Input should have timezone info",
        ),
        (
            {"email": "jane@acme.example", "type": "site_visit", "id": 7},
            "id: Input should be a valid string",
        ),
        ({"email": "jane", "type": "site_visit"}, "email: Value error, not an email address"),
        (
            {"email": "jane@acme.example", "type": "site_visit", "score": 100},
            "score: Extra inputs are not permitted",
        ),
        ([], "no events"),
    ):
        answer = post(api, "/api/events", body)
        assert answer.status == 422 and message in answer.json_error(), (body, answer.text)
    assert len(rows("SELECT * FROM event")) == 3


def test_what_postgresql_would_refuse_is_a_422_naming_the_field_on_both(api: str) -> None:
    """Issue 12, finding 5: a NUL or an over-long value was a 503 on PostgreSQL (and stored on
    SQLite); now the same 422 on both, and nothing stored."""
    deal = {"email": "jane@acme.example", "from": "sql", "reason": "no_budget"}
    for extra, message in (
        ({"first_name": "Ja\x00ne"}, "first_name contains a NUL character; remove it"),
        ({"company": "C" * 301}, "company is 301 characters long; the limit is 300"),
        ({"note": "call\x00back"}, "note contains a NUL character; remove it"),
        ({"title": "Head\x1b[2J"}, "title contains a control character (0x1b); remove it"),
        ({"industry": "saas\x00"}, "an attribute contains a NUL character; remove it"),
    ):
        answer = post(api, "/api/recycle", {**deal, **extra})
        assert answer.status == 422, (extra, answer.text)
        assert answer.json_error() == message
    assert rows("SELECT * FROM lead") == []
    assert post(api, "/api/recycle", {**deal, "note": "two\nlines\tfine"}).status == 201


def test_an_api_event_with_a_nul_in_its_url_is_stored_without_it(api: str) -> None:
    deal = {"email": "jane@acme.example", "from": "sql", "reason": "no_budget"}
    assert post(api, "/api/recycle", deal).status == 201
    visit = {"email": "jane@acme.example", "type": "site_visit"}
    answer = post(api, "/api/events", [{**visit, "url": "https://acme.example/p\x00x", "id": "v1"}])
    assert answer.status == 200, answer.text
    assert rows("SELECT url FROM event WHERE provider = 'api'") == [
        {"url": "https://acme.example/px"}
    ]
    answer = post(api, "/api/events", [{**visit, "id": "v2"}, {**visit, "id": "v\x003"}])
    assert answer.status == 422
    assert answer.json_error() == "[1].id contains a NUL character; remove it"
    assert len(rows("SELECT id FROM event WHERE provider = 'api'")) == 1  # all or nothing
