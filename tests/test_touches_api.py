"""``POST /api/touches`` over real HTTP against `drip serve` (at a fixed ``--now``): the token, one
touch and a batch, duplicates, did-you-mean for kinds, fields and addresses, naive and future times,
hostile values stored verbatim or refused; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import NOW, drip
from tests.served import Answer, drip_serve, free_port, request
from tests.test_web_api import rows

pytestmark = pytest.mark.slow  # `drip serve` subprocesses

TOKEN = "touches-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
AT = "2026-11-23T09:30:00+01:00"  # 08:30 UTC, before NOW (10:00 UTC)


@pytest.fixture
def api(folder: Path) -> Iterator[str]:
    (folder / "leads.csv").write_text(
        "email,first_name\njane@acme.example,Jane\nbob@acme.example,Bob\n"
    )
    assert drip("leads", "import", "leads.csv")[0] == 0
    with drip_serve(folder, free_port(), now=NOW, env={"DRIP_API_TOKEN": TOKEN}) as base:
        yield base


def post(base: str, body: Any, headers: dict[str, str] | None = None) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request(
        base, "POST", "/api/touches", body=raw, headers=AUTH if headers is None else headers
    )


def stored() -> list[tuple[str, str, str, str | None, str, str | None]]:
    return [
        (r["email"], r["kind"], r["at"], r["actor"], r["source"], r["note"])
        for r in rows(
            "SELECT l.email, t.kind, t.at, t.actor, t.source, t.note FROM sales_touch t "
            "JOIN lead l ON l.id = t.lead_id ORDER BY t.id"
        )
    ]


def test_one_touch_stored_then_a_duplicate_then_the_token(api: str) -> None:
    touch = {"email": " Jane@ACME.example ", "kind": "Call", "at": AT, "actor": "sam", "note": "Q3"}
    answer = post(api, touch)
    assert answer.status == 201, answer.text
    body = json.loads(answer.body)
    assert (body["stored"], body["duplicates"], body["refused"]) == (1, 0, 0)
    assert body["touches"] == [
        {
            "index": 0,
            "email": "jane@acme.example",
            "kind": "call",
            "at": "2026-11-23T08:30:00+00:00",
            "outcome": "stored",
            "message": "recorded",
        }
    ]
    again = post(api, {**touch, "at": "2026-11-23T08:30:00Z", "rep": "sam"})  # the same moment
    assert again.status == 200, again.text
    assert json.loads(again.body)["touches"][0]["outcome"] == "duplicate"
    # no `at`: now; `rep` is the same field as `actor`
    now = post(api, {"email": "bob@acme.example", "kind": "meeting", "rep": "ann"})
    assert now.status == 201
    assert json.loads(now.body)["touches"][0]["at"] == "2026-11-23T10:00:00+00:00"
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        refused = post(api, touch, headers)
        assert refused.status == 401 and refused.headers["www-authenticate"] == "Bearer"
    rows_ = stored()
    assert [(e, k, a, s, n) for e, k, _, a, s, n in rows_] == [
        ("jane@acme.example", "call", "sam", "api", "Q3"),
        ("bob@acme.example", "meeting", "ann", "api", None),
    ]


def test_refusals_name_the_fix(api: str) -> None:
    cases = [
        ({"email": "jane@acme.example", "kind": "cal"}, 422, 'did you mean "call"?'),
        ({"email": "jane@acme.example", "kind": "call", "nte": "x"}, 422, 'did you mean "note"?'),
        ({"email": "jane@acme.exmaple", "kind": "call"}, 404, "did you mean jane@acme.example?"),
        ({"email": "nobody@else.example", "kind": "call"}, 404, "no lead nobody@else.example"),
        (
            {"email": "jane@acme.example", "kind": "call", "at": "2026-11-23T09:00:00"},
            422,
            "has no time zone; add its offset, e.g. 2026-11-23T09:00:00Z",
        ),
        (
            {"email": "jane@acme.example", "kind": "call", "at": "2026-11-23T10:30:00Z"},
            422,
            "is in the future",
        ),
        ({"email": "jane@acme.example", "kind": "call", "at": "yesterday"}, 422, "not an ISO 8601"),
        ({"email": "jane@acme.example"}, 422, "kind: missing"),
        ({"kind": "call"}, 422, "email: missing"),
        ({"email": "jane@acme.example", "kind": 3}, 422, "kind: expected a string"),
    ]
    for body, status, words in cases:
        answer = post(api, body)
        assert answer.status == status, (body, answer.text)
        error = answer.json_error()
        assert words in error and "\n" not in error, (body, error)
        assert json.loads(answer.body)["touches"][0]["outcome"] == "refused"
    assert post(api, b"[1, 2]").status == 400
    assert post(api, b"not json").status == 400
    assert post(api, []).status == 422
    assert stored() == []  # no touch, and no lead made for an unknown address
    assert len(rows("SELECT id FROM lead")) == 2


def test_a_batch_keeps_the_good_touches_and_says_what_became_of_each(api: str) -> None:
    batch = [
        {"email": "jane@acme.example", "kind": "email", "at": AT},
        {"email": "jane@acme.example", "kind": "email", "at": AT},  # twice in one batch
        {"email": "ghost@acme.example", "kind": "call"},
        {"email": "bob@acme.example", "kind": "meeting", "at": "2026-11-22T15:00:00-05:00"},
    ]
    answer = post(api, batch)
    assert answer.status == 201, answer.text
    body = json.loads(answer.body)
    assert [(t["index"], t["outcome"]) for t in body["touches"]] == [
        (0, "stored"),
        (1, "duplicate"),
        (2, "refused"),
        (3, "stored"),
    ]
    assert body["touches"][1]["message"] == "the same touch as touch [0]"
    assert (body["stored"], body["duplicates"], body["refused"]) == (2, 1, 1)
    assert body["error"] == "1 of 4 touches refused (see touches)"
    all_refused = post(api, [{"email": "ghost@acme.example", "kind": "call"}, {"kind": "x"}])
    assert all_refused.status == 422
    assert all_refused.json_error().startswith("every touch refused; [0]: no lead ghost@")
    assert len(stored()) == 2


def test_hostile_values_are_stored_verbatim_or_refused(api: str) -> None:
    note = "line one\r\nBcc: victim@example.com\r\n=?utf-8?b?SGVsbG8=?= " + "x" * 9_900
    answer = post(
        api,
        {
            "email": "jane@acme.example",
            "kind": "call",
            "at": AT,
            "note": note,
            "actor": "=?utf-8?q?Sam?=\r\nX-Evil: 1",
        },
    )
    assert answer.status == 201, answer.text
    assert stored()[0][5] == note and stored()[0][3] == "=?utf-8?q?Sam?=\r\nX-Evil: 1"
    refusals = [
        ({"note": "a\x00b"}, "note contains a NUL character; remove it"),
        ({"note": "x" * 10_001}, "note is 10001 characters long; the limit is 10000"),
        ({"actor": "s" * 201}, "actor is 201 characters long; the limit is 200"),
        ({"actor": "sam\x1b[31m"}, "actor contains a control character (0x1b)"),
        ({"kind": "call\x00"}, "is not a kind of touch"),
        ({"kind": "c" * 10_000}, "is not a kind of touch"),
        ({"email": "jane@acme.example\r\nBcc: x@y.example"}, "is not an email address"),
        ({"at": "2026-11-23T09:00:00\x00+00:00"}, "not an ISO 8601"),
        ({"\x00": 1}, "unknown field"),
    ]
    for change, words in refusals:
        answer = post(api, {"email": "jane@acme.example", "kind": "meeting", **change})
        assert answer.status == 422, (change, answer.text)
        assert words in answer.json_error(), (change, answer.json_error())
        assert len(answer.json_error()) < 400
    assert len(stored()) == 1
