"""`drip events ingest`: a SendGrid export replayed through the webhook's parser and ingest."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from dripengine.storage.engine import make_engine
from dripengine.storage.models import Event
from dripengine.testing.sendgrid_webhook import sendgrid_event
from tests.clirun import drip

TS = 1_795_428_000


def test_ndjson_with_bad_lines_keeps_the_rest_and_replays_as_duplicates(folder: Path) -> None:
    good = [sendgrid_event(t, timestamp=TS, email=f"{t}@x.example") for t in ("delivered", "open")]
    lines = [
        json.dumps(good[0]),
        "this is not json",
        json.dumps({**good[0], "event": "exploded", "sg_event_id": "e3"}),
        "",
        json.dumps(good[1]),
    ]
    path = folder / "export.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = drip("events", "ingest", str(path))
    assert code == 0, err
    assert f"{path}:2: not JSON" in err
    assert f'{path}:3: unknown event type "exploded"' in err
    assert out.startswith("3 events read: 2 stored, 0 duplicates, 2 matched no lead, 2 skipped")
    code, out, _ = drip("events", "ingest", str(path))
    assert out.startswith("3 events read: 0 stored, 2 duplicates")


def test_a_json_array_in_batches(folder: Path) -> None:
    events = [
        sendgrid_event("delivered", timestamp=TS + i, email=f"l{i}@x.example") for i in range(2500)
    ]
    path = folder / "export.json"
    path.write_text(json.dumps(events, indent=1), encoding="utf-8")
    code, out, err = drip("events", "ingest", str(path))
    assert code == 0, err
    assert out.startswith("2500 events read: 2500 stored")
    from dripengine.config import load_settings

    engine = make_engine(load_settings().database_url)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Event)) == 2500
    engine.dispose()


def test_a_missing_file_is_one_line(folder: Path) -> None:
    code, _, err = drip("events", "ingest", "nope.json")
    assert code == 1
    assert err.strip().startswith("Error: nope.json: cannot read it")


def test_a_bad_line_is_reported_without_its_terminal_escapes(folder: Path) -> None:
    """The reason quotes the file's data (an unknown event type): an OSC 8 link or a clear-screen
    in it must not reach the terminal (issue 12, finding 11)."""
    hostile = "\x1b]8;;http://x.example\x07evil\x1b]8;;\x07\x1b[2J\u202e"
    event = {**sendgrid_event("delivered", timestamp=TS, email="a@x.example"), "event": hostile}
    path = folder / "export.ndjson"
    path.write_text(json.dumps(event) + "\n", encoding="utf-8")
    code, _, err = drip("events", "ingest", str(path))
    assert code == 0
    assert err.splitlines()[0] == f'{path}:1: unknown event type "evil"'
