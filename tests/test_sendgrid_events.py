"""SendGrid Event Webhook payloads → IncomingEvent: every event type, and what is skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dripengine import vocabulary as v
from dripengine.providers.sendgrid.events import parse_event, parse_events
from dripengine.testing.sendgrid_webhook import EVENT_FIELDS, sendgrid_event

TS = 1_795_428_000  # 2026-11-23 10:00 UTC
UID = "0123456789abcdef0123456789abcdef"


def one(event: str, **fields: object) -> dict[str, object]:
    return {**sendgrid_event(event, timestamp=TS, uid=UID), **fields}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("processed", v.PROCESSED),
        ("delivered", v.DELIVERED),
        ("deferred", v.DEFERRED),
        ("dropped", v.DROPPED),
        ("bounce", v.BOUNCE),
        ("open", v.OPEN),
        ("click", v.CLICK),
        ("spamreport", v.COMPLAINT),
        ("unsubscribe", v.UNSUBSCRIBE),
        ("group_unsubscribe", v.GROUP_UNSUBSCRIBE),
        ("group_resubscribe", v.GROUP_RESUBSCRIBE),
    ],
)
def test_every_sendgrid_event_type_maps_to_ours(name: str, expected: str) -> None:
    raw = one(name)
    event = parse_event(raw)
    assert event.type == expected
    assert event.provider == "sendgrid"
    assert event.message_uid == UID
    assert event.email == "jane@acme.example"
    assert event.occurred_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert event.provider_event_id == raw["sg_event_id"]
    assert event.raw == raw  # the original payload is kept whole


def test_all_documented_types_are_covered_by_the_fixtures() -> None:
    assert len(EVENT_FIELDS) == 11


def test_bounce_blocked_is_a_soft_bounce_and_bounce_is_hard() -> None:
    assert parse_event(one("bounce", type="blocked")).type == v.SOFT_BOUNCE
    hard = parse_event(one("bounce", type="bounce"))
    assert hard.type == v.BOUNCE
    assert hard.detail is not None and "500 unknown recipient" in hard.detail
    assert parse_event(one("bounce", type=None)).type == v.BOUNCE  # older payloads had no type


def test_machine_open_is_marked_and_a_human_open_is_not() -> None:
    assert parse_event(one("open", sg_machine_open=True)).machine is True
    assert parse_event(one("open", sg_machine_open=False)).machine is False
    assert parse_event(one("open", sg_machine_open=None)).machine is False


def test_click_keeps_the_url_and_reads_a_link_tag() -> None:
    plain = parse_event(one("click"))
    assert plain.url == "https://acme.example/pricing?utm_source=drip&utm_content=checkin"
    assert plain.tag is None
    tagged = parse_event(one("click", url="https://acme.example/demo?drip_tag=demo&utm_content=x"))
    assert tagged.tag == "demo"


def test_sg_message_id_keeps_the_x_message_id_part() -> None:
    event = parse_event(one("delivered", sg_message_id="W86EgYT6SQKk0lRflfLRsA.filterdrecv-p3.0"))
    assert event.provider_message_id == "W86EgYT6SQKk0lRflfLRsA"


def test_without_our_uid_the_event_still_carries_the_address() -> None:
    event = parse_event(sendgrid_event("open", timestamp=TS))
    assert event.message_uid is None
    assert event.email == "jane@acme.example"


def test_copies_of_one_event_share_a_dedupe_key() -> None:
    first = one("open", sg_message_id="abc.filter1.0")
    copy = {**first, "sg_event_id": "another-id"}
    assert parse_event(first).dedupe_key() == parse_event(copy).dedupe_key()


def test_float_timestamps_are_accepted() -> None:
    assert parse_event(one("open", timestamp=TS + 0.5)).occurred_at.timestamp() == TS + 0.5


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event": "exploded"}, 'unknown event type "exploded"'),
        ({"event": 7}, "event: expected a string, got a number (7)"),
        ({"event": None}, "event: missing"),
        ({"timestamp": "1795428000"}, "timestamp: expected unix seconds (a number), got a string"),
        ({"timestamp": None}, "timestamp: expected unix seconds (a number), got null"),
        ({"timestamp": True}, "timestamp: expected unix seconds (a number), got a boolean"),
        ({"timestamp": 1_795_428_000_000_000}, "is not a unix time in seconds"),
        ({"timestamp": -5}, "is not a unix time in seconds"),
        ({"email": ["jane@acme.example"]}, "email: expected a string, got an array"),
        ({"sg_event_id": 12}, "sg_event_id: expected a string"),
        ({"drip_uid": {"x": 1}}, "drip_uid: expected a string, got an object"),
        ({"drip_uid": "x" * 33}, "drip_uid: longer than 32 characters"),
        ({"sg_event_id": "x" * 201}, "sg_event_id: longer than 200 characters"),
    ],
)
def test_an_unreadable_event_is_skipped_with_its_reason(
    change: dict[str, object], reason: str
) -> None:
    good = one("delivered")
    bad = {**one("open"), **change}
    parsed = parse_events([good, bad, good])
    assert [e.type for e in parsed.events] == [v.DELIVERED, v.DELIVERED]
    assert len(parsed.skipped) == 1
    assert parsed.skipped[0].index == 1
    assert reason in parsed.skipped[0].reason


def test_wrong_types_in_event_specific_fields_are_skipped() -> None:
    parsed = parse_events(
        [
            one("click", url=42),
            one("click", url=None),
            one("open", sg_machine_open="yes"),
            one("bounce", type=3),
            "not an object",
            None,
            [1, 2],
        ]
    )
    assert parsed.events == []
    assert [s.index for s in parsed.skipped] == [0, 1, 2, 3, 4, 5, 6]
    assert parsed.skipped[1].reason == "url: missing"
    assert parsed.skipped[4].reason == "expected an event object, got a string"


def test_a_payload_that_is_not_an_array_gives_one_reason() -> None:
    parsed = parse_events({"event": "open"})
    assert parsed.events == []
    assert parsed.skipped[0].reason == "expected a JSON array of events, got an object"


def test_detail_ignores_values_of_odd_types() -> None:
    event = parse_event(one("dropped", reason={"nested": True}, status="5.0.0"))
    assert event.detail == "5.0.0"
