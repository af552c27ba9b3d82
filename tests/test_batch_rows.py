"""A batch of rows in one statement (``storage.dialect.table_rows``): what goes in comes back.

On PostgreSQL the ingest writes events, score changes and lead updates as one JSON document
(``json_to_recordset``); on SQLite as an executemany. Hostile values — quotes, backslashes, array and
JSON syntax, encoded headers, emoji, right-to-left text, floats at the edge of their precision —
must come back exactly as given on both, and a value JSON cannot carry as it binds (a NUL, a naive
datetime) must take the array path, which refuses or converts it as a single row would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from dripengine.storage import events
from dripengine.storage.dialect import json_document, table_rows, unnest
from dripengine.storage.models import EVENT, LEAD, SCORE_CHANGE

T0 = datetime(2026, 11, 30, 9, 15, 7, 123456, tzinfo=UTC)

HOSTILE = [
    'a "quoted" value, with commas',
    "back\\slash \\N and a tab\tand\nnewline",
    "{array,syntax} (row,syntax) 'single'",
    "=?utf-8?b?SGVsbG8=?= =?utf-8?q?Bcc:_evil@example.com?=",
    "emoji 🙂 and RTL \u202e\u05e9\u05dc\u05d5\u05dd",
    "",
    "NULL",
]


def _event(n: int, text: str) -> dict[str, Any]:
    return {
        "message_id": None,
        "lead_id": None,
        "type": "click",
        "provider": "sendgrid",
        "provider_event_id": f"ev-{n}",
        "occurred_at": T0 + timedelta(seconds=n),
        "received_at": T0 + timedelta(hours=1, microseconds=n),
        "url": f"https://acme.example/p?q={n}&t={text}",
        "tag": None if n % 2 else "pricing",
        "machine": bool(n % 3),
        "dedupe_key": f"key-{n}",
        "detail": text,
        "raw": {"text": text, "nested": {"list": [1, 2.5, None, True], '"k"': text}, "n": n},
    }


def test_hostile_event_rows_come_back_exactly(engine: Engine) -> None:
    rows = [_event(n, text) for n, text in enumerate(HOSTILE)]
    with engine.begin() as connection:
        inserted = events.insert_new_events(connection, rows)
    assert sorted(key for _, key in inserted) == sorted(r["dedupe_key"] for r in rows)
    with engine.connect() as connection:
        stored = {r.dedupe_key: r._asdict() for r in connection.execute(select(EVENT))}
    for row in rows:
        got = stored[row["dedupe_key"]]
        for column, value in row.items():
            assert got[column] == value, (column, got[column], value)


def test_a_stored_event_is_skipped_and_not_returned(engine: Engine) -> None:
    with engine.begin() as connection:
        events.insert_new_events(connection, [_event(1, "first")])
    with engine.begin() as connection:
        again = events.insert_new_events(connection, [_event(1, "again"), _event(2, "new")])
    assert [key for _, key in again] == ["key-2"]
    with engine.connect() as connection:
        details = dict(connection.execute(select(EVENT.c.dedupe_key, EVENT.c.detail)).all())
    assert details == {"key-1": "first", "key-2": "new"}


def test_score_floats_keep_every_digit(engine: Engine) -> None:
    with engine.begin() as connection:
        lead_id = connection.execute(
            insert(LEAD).values(
                email="lead@acme.example",
                stage="recycled",
                attributes={},
                created_at=T0,
                updated_at=T0,
            )
        ).inserted_primary_key[0]
        [(event_id, _)] = events.insert_new_events(connection, [_event(1, "x")])
        deltas = [0.1 + 0.2, 1 / 3, 2.5e-308, 1e308, -7.000000000000001]
        rows = [
            {
                "lead_id": lead_id,
                "event_id": event_id,
                "delta": d,
                "score_after": d / 2,
                "reason": HOSTILE[i % len(HOSTILE)],
                "at": T0,
            }
            for i, d in enumerate(deltas)
        ]
        events.insert_score_changes(connection, rows)
    with engine.connect() as connection:
        got = connection.execute(
            select(
                SCORE_CHANGE.c.delta, SCORE_CHANGE.c.score_after, SCORE_CHANGE.c.reason
            ).order_by(SCORE_CHANGE.c.id)
        ).all()
    assert [tuple(r) for r in got] == [(r["delta"], r["score_after"], r["reason"]) for r in rows]


def test_values_json_cannot_carry_take_the_array_path() -> None:
    columns = ["detail", "occurred_at"]
    assert json_document(EVENT, columns, [{"detail": "plain", "occurred_at": T0}]) is not None
    nul = [{"detail": "a\x00b", "occurred_at": T0}]
    naive = [{"detail": "plain", "occurred_at": T0.replace(tzinfo=None)}]
    for rows in (nul, naive):
        assert json_document(EVENT, columns, rows) is None
        chosen, params = table_rows(EVENT, columns, rows)
        assert (str(chosen), params) == (str(unnest(EVENT, columns, rows)), {})
    # orjson would write these as null: a score of infinity must not arrive as NULL
    for odd in (float("inf"), float("-inf"), float("nan")):
        assert json_document(SCORE_CHANGE, ["delta"], [{"delta": 1.0}, {"delta": odd}]) is None


def test_a_naive_time_is_refused_as_for_one_row(engine: Engine) -> None:
    row = _event(1, "x") | {"received_at": T0.replace(tzinfo=None)}
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as connection:
        events.insert_new_events(connection, [row])
