"""`drip suppress` and `drip leads forget`: real rows, the real command, the send path after them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from dripengine.cli import main
from dripengine.sending.claim import load_round
from dripengine.storage import suppression
from dripengine.storage.engine import make_engine
from tests import rows
from tests.clirun import drip

LATER = "2026-11-26T15:00:00+00:00"  # inside the example campaigns' send windows
AMELIE = "amelie.laurent@lumiere.example"  # in leads.csv and lost-deals.csv


def folder_engine(folder: Path, db_url: str) -> Engine:
    return make_engine(db_url if not db_url.startswith("sqlite") else f"sqlite:///{folder}/drip.db")


def enrollments(engine: Engine, email: str) -> list[tuple[str, str | None]]:
    with engine.connect() as connection:
        lead_id = connection.execute(
            select(rows.LEAD.c.id).where(rows.LEAD.c.email == email)
        ).scalar_one()
        return [
            (r.status, r.exit_reason)
            for r in connection.execute(
                select(rows.ENROLLMENT).where(rows.ENROLLMENT.c.lead_id == lead_id)
            )
        ]


def mailed(folder: Path, email: str) -> bool:
    return any(email in p.read_text("utf-8") for p in (folder / "outbox").rglob("*.eml"))


def test_suppress_add_exits_at_once_and_remove_guards_complaints(folder: Path, db_url: str) -> None:
    assert drip("recycle", "--csv", "lost-deals.csv", "--create")[0] == 0
    code, out, err = drip("suppress", "add", AMELIE.upper(), "--note", "asked on the phone")
    assert code == 0 and out.strip() == f"{AMELIE} suppressed (manual); 1 enrollment(s) exited", err
    engine = folder_engine(folder, db_url)
    try:
        assert enrollments(engine, AMELIE) == [("exited", "suppressed: manual")]
    finally:
        engine.dispose()
    code, out, _ = drip("suppress", "add", AMELIE, "--reason", "unsubscribe")
    assert code == 0 and "suppressed already" in out
    code, out, _ = drip("suppress", "list", "--format", "json")
    [entry] = json.loads(out)
    assert entry["email"] == AMELIE and entry["reason"] == "manual"
    assert entry["note"] == "asked on the phone"
    assert drip("suppress", "remove", AMELIE)[0] == 0
    assert drip("suppress", "list")[1].strip() == "no address is suppressed"

    assert drip("suppress", "add", "x@spam.example", "--reason", "spam_report")[0] == 0
    code, _, err = drip("suppress", "remove", "x@spam.example")
    assert code == 1 and err.count("\n") == 1
    assert "spam" in err and "reputation" in err and "--force" in err
    assert drip("suppress", "remove", "x@spam.example", "--force")[0] == 0
    code, _, err = drip("suppress", "remove", "nobody@acme.example")
    assert code == 1 and "is not suppressed" in err


def test_forget_erases_and_the_address_never_comes_back(folder: Path, db_url: str) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    assert drip("recycle", "--csv", "lost-deals.csv", "--create")[0] == 0
    code, out, err = drip("leads", "forget", AMELIE, "--yes")
    assert code == 0 and "erased (now erased-" in out, err
    engine = folder_engine(folder, db_url)
    try:
        with engine.connect() as connection:
            lead = connection.execute(
                select(rows.LEAD).where(rows.LEAD.c.email.like("erased-%"))
            ).one()
            stored = list(connection.execute(select(rows.SUPPRESSION.c.email)).scalars())
        assert lead.first_name is None and lead.company is None and lead.attributes == {}
        # FR + Europe/Paris + whitepaper next to a stage history can single a person out
        assert (lead.country, lead.timezone, lead.source) == (None, None, None)
        assert lead.scoring_stopped_at is not None and lead.stage == "recycled"
        assert stored == [suppression.hashed(AMELIE)], "only the hash is kept"
        assert enrollments(engine, lead.email) == [("exited", "erased on request")]
    finally:
        engine.dispose()
    # everything personal is gone from what `drip leads show` finds
    code, _, err = drip("leads", "show", AMELIE)
    assert code == 1 and "no lead" in err

    # the address comes back in a file, in a recycle, in a CSV of lost deals: refused each time
    code, out, _ = drip("leads", "import", "leads.csv", "--format", "json")
    report = json.loads(out)
    assert [e["email"] for e in report["errors"]] == [AMELIE]
    assert "erased on request" in report["errors"][0]["message"]
    code, _, err = drip("recycle", AMELIE, "--from", "mql", "--reason", "bad_timing", "--create")
    assert code == 1 and "suppressed (erased on" in err
    drip("recycle", "--csv", "lost-deals.csv", "--create")
    result = CliRunner().invoke(main, ["--now", LATER, "run", "--once"])
    assert result.exit_code == 0, result.output
    assert list((folder / "outbox").rglob("*.eml")), "the others were mailed"
    assert not mailed(folder, AMELIE) and not mailed(folder, "Amélie")


def test_the_send_path_honours_a_hashed_entry(engine: Engine) -> None:
    """A lead whose address only a hash suppresses (say, re-created by a path that skipped the
    import check) is still never mailed: the dispatcher's load sees the hash."""
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    lead_id = rows.lead(engine, "jane@acme.example", at)
    enrollment_id = rows.enrollment(engine, lead_id, "lost-sql-winback", at)
    with engine.begin() as connection:
        suppression.add(connection, suppression.hashed("jane@acme.example"), "erased", at)
        batch = load_round(connection, [enrollment_id], at + timedelta(minutes=1))
    assert batch.suppressed == {"jane@acme.example": "erased on 23 Nov 2026"}


def test_forget_leaves_the_address_nowhere_in_the_database_files_or_the_outbox(
    folder: Path, db_url: str
) -> None:
    """Issue 12, finding 6: a lead that clicked a link carrying its address (a merge field),
    replied, was mailed to the outbox, and had an event before it was a lead."""
    from dripengine import vocabulary as v
    from dripengine.clock import FixedClock
    from dripengine.config import load_settings
    from dripengine.engagement.ingest import Engagement
    from dripengine.funnel.sla import load_sla

    engine = folder_engine(folder, db_url)
    at = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    engagement = Engagement(
        engine,
        load_settings(folder / "drip.toml", env={}),
        load_sla(folder / "sla.yaml"),
        FixedClock(at),
    )
    try:
        # an event for the address before any lead had it: stored without a lead
        early = v.IncomingEvent(
            type=v.DELIVERED,
            occurred_at=at - timedelta(days=30),
            provider="sendgrid",
            email="Amelie.Laurent@Lumiere.example",
            provider_event_id="early-1",
            raw={"email": "Amelie.Laurent@Lumiere.example", "event": "delivered"},
        )
        assert engagement.ingest([early]).unmatched == 1
        assert drip("leads", "import", "leads.csv")[0] == 0
        assert drip("recycle", "--csv", "lost-deals.csv", "--create")[0] == 0
        assert CliRunner().invoke(main, ["--now", LATER, "run", "--once"]).exit_code == 0
        assert mailed(folder, AMELIE)
        with engine.connect() as connection:
            uid = connection.execute(
                select(rows.MESSAGE.c.uid)
                .join(rows.LEAD, rows.LEAD.c.id == rows.MESSAGE.c.lead_id)
                .where(rows.LEAD.c.email == AMELIE)
            ).scalar_one()
        url = (
            "https://lumiere.example/pricing?email=amelie.laurent%40lumiere.example&utm_source=drip"
        )
        engagement.ingest(
            [
                v.IncomingEvent(
                    type=v.CLICK,
                    occurred_at=at,
                    provider="drip",
                    message_uid=uid,
                    url=url,
                    tag="pricing",
                    raw={"url": url},
                ),
                v.IncomingEvent(
                    type=v.REPLY,
                    occurred_at=at + timedelta(hours=1),
                    provider="inbound",
                    message_uid=uid,
                    email=AMELIE,
                    provider_event_id="<r1@lumiere.example>",
                    detail="Re: pricing",
                    raw={"from": f"Amélie Laurent <{AMELIE}>", "text": "Call me"},
                ),
            ]
        )

        # a requalification handed to the CRM (its payload, a CRM error naming the address),
        # sales' feedback on it, a score reason and a send error that carry the address
        with engine.connect() as connection:
            lead_id = connection.execute(
                select(rows.LEAD.c.id).where(rows.LEAD.c.email == AMELIE)
            ).scalar_one()
        handoff_id, _ = rows.handoff(
            engine,
            lead_id,
            at,
            payload={"lead": {"email": AMELIE, "first_name": "Amélie"}},
            status="delivered",
            last_error="CRM 409: contact AMELIE.LAURENT@LUMIERE.EXAMPLE exists",
        )
        rows._insert(
            engine,
            rows.FEEDBACK,
            {
                "lead_id": lead_id,
                "handoff_id": handoff_id,
                "outcome": "rejected",
                "reason": "no_budget",
                "note": f"spoke to {AMELIE}, call back in Q3",
                "at": at,
            },
        )
        rows.score_change(
            engine, lead_id, -5, 20, at, reason="bounce Amelie.Laurent%40Lumiere.example"
        )
        with engine.begin() as connection:
            connection.execute(
                rows.MESSAGE.update()
                .where(rows.MESSAGE.c.uid == uid)
                .values(error=f"550 <{AMELIE}>: mailbox full")
            )

        code, out, err = drip("leads", "forget", AMELIE, "--yes")
        assert code == 0, err
        assert "1 outbox file(s) removed" in out and "other row(s) scrubbed" in out
        assert not mailed(folder, AMELIE) and not mailed(folder, "Amélie")

        # any case (the bytes are lowercased), as is and URL-encoded, and the first name
        needles = ("amelie.laurent", "amelie.laurent%40", "amélie")
        if db_url.startswith("sqlite"):
            engine.dispose()
            for path in folder.glob("drip.db*"):
                data = path.read_bytes().lower()
                assert not any(n.encode() in data for n in needles), path.name
        else:
            with engine.connect() as connection:
                for table in SQLModel.metadata.sorted_tables:
                    for column in table.columns:
                        text = func.lower(cast(column, String))
                        found = connection.execute(
                            select(func.count())
                            .select_from(table)
                            .where(or_(*(text.contains(n, autoescape=True) for n in needles)))
                        ).scalar_one()
                        assert found == 0, f"{table.name}.{column.name}"
    finally:
        engine.dispose()


def test_forget_finds_an_encoded_local_part_in_events_that_matched_no_lead(engine: Engine) -> None:
    """A plus-address in a click URL is ``jane%2Btag%40…``: the SQL pre-filter must look for the
    encoded local part too, or the event keeps it (issue 12, finding 6)."""
    from dripengine.leads.optout import forget

    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    url = "https://acme.example/p?email=Jane%2BNews%40Acme.example&utm_source=drip"
    rows.event(engine, "click", at, url=url, raw={"url": url})
    done = forget(engine, "jane+news@acme.example", at)
    assert done.scrubbed == 1
    with engine.connect() as connection:
        stored = connection.execute(select(rows.EVENT.c.url, rows.EVENT.c.raw)).one()
    assert "jane" not in stored.url.lower() and stored.raw == {}
    assert stored.url == "https://acme.example/p?email=erased@erased.invalid&utm_source=drip"
