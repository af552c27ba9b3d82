"""The sales-facing views: `drip leads list --requalified`, `drip leads show`, `drip scoring
explain`, `drip status`'s handoffs and `drip run --once` delivering them, on real rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from dripengine.cli import main
from dripengine.storage.engine import make_engine
from dripengine.storage.queries import REQUALIFIED_COLUMNS
from dripengine.testing.crm_receiver import CRMReceiver
from tests import rows
from tests.clirun import drip

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # tests.clirun's time
JANE = "jane@acme.example"
BOB = "bob.miller@northwind.example"


@pytest.fixture
def handed_back(folder: Path, db_url: str) -> Engine:
    """The sample leads recycled; Jane requalified 2 days ago, Bob 10 days ago (handoff rows)."""
    assert drip("leads", "import", "leads.csv")[0] == 0
    assert drip("recycle", "--csv", "lost-deals.csv")[0] == 0
    assert drip("recycle", JANE, "--from", "sql", "--reason", "no_budget")[0] == 0
    engine = make_engine(
        db_url if not db_url.startswith("sqlite") else f"sqlite:///{folder}/drip.db"
    )
    with engine.connect() as connection:
        ids = dict(connection.execute(select(rows.LEAD.c.email, rows.LEAD.c.id)).all())
    rows.handoff(engine, ids[JANE], NOW - timedelta(days=2))
    rows.handoff(
        engine,
        ids[BOB],
        NOW - timedelta(days=10),
        score=71.5,
        fit_grade="A",
        status="delivered",
        payload={"recycle": {"reason": "chose_competitor"}, "days_in_nurture": 90},
    )
    # Jane's engagement: a click 45 days ago (+20), a reply today (+25); score 35 stored now
    click_at, reply_at = NOW - timedelta(days=45), NOW
    rows.score_change(engine, ids[JANE], 20, 20, click_at, reason="click [pricing] in x/checkin")
    rows.score_change(engine, ids[JANE], 25, 35, reply_at, reason="reply in x/guide")
    with engine.begin() as connection:
        connection.execute(
            update(rows.LEAD)
            .where(rows.LEAD.c.id == ids[JANE])
            .values(score=35.0, score_updated_at=reply_at)
        )
    yield engine
    engine.dispose()


def test_requalified_list_as_csv_for_sales(handed_back: Engine) -> None:
    code, out, err = drip("leads", "list", "--requalified", "--format", "csv")
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0]) == list(REQUALIFIED_COLUMNS)
    assert [r["email"] for r in table] == [JANE, BOB]  # newest first
    jane, bob = table
    assert (jane["first_name"], jane["company"], jane["fit_grade"]) == ("Jane", "Acme Corp", "B")
    assert jane["recycle_reason"] == "no_budget" and jane["days_in_nurture"] == "41"
    assert jane["handoff_status"] == "pending" and jane["score"] == "64.0"
    assert bob["recycle_reason"] == "chose_competitor" and bob["handoff_status"] == "delivered"
    assert datetime.fromisoformat(jane["requalified_at"]) == NOW - timedelta(days=2)

    code, out, _ = drip("leads", "list", "--requalified", "--since", "7d", "--format", "json")
    assert [r["email"] for r in json.loads(out)] == [JANE]
    code, out, _ = drip("leads", "list", "--requalified", "--since", "2026-11-01")
    assert JANE in out and "bob.miller" in out
    code, out, _ = drip("leads", "list", "--requalified", "--since", "1h")
    assert code == 0 and out.strip() == "no lead requalified since 1h"


def test_since_names_the_accepted_forms(handed_back: Engine) -> None:
    code, _, err = drip("leads", "list", "--requalified", "--since", "a week")
    assert code == 1 and err.count("\n") == 1
    assert "--since" in err and "7d, 12h or 2w" in err and "ISO date" in err
    code, _, err = drip("leads", "list", "--since", "7d")
    assert code == 2 and "--requalified" in err


def test_leads_show_has_the_score_now_fit_suppression_and_changes(handed_back: Engine) -> None:
    code, out, err = drip("leads", "show", JANE, "--format", "json")
    assert code == 0, err
    profile = json.loads(out)
    assert profile["score_now"] == 35.0 and profile["fit_grade"] in "ABCD"
    assert profile["suppressed"] is None
    assert [c["delta"] for c in profile["score_changes"]] == [25, 20]  # newest first
    assert profile["score_changes"][0]["reason"] == "reply in x/guide"
    assert drip("suppress", "add", JANE, "--reason", "unsubscribe")[0] == 0
    code, out, _ = drip("leads", "show", JANE)
    assert code == 0
    assert "35 now" in out and "fit" in out and "unsubscribe since 2026-11-23" in out
    assert "Score changes" in out and "click [pricing] in x/checkin" in out and "+25" in out


def test_scoring_explain(handed_back: Engine) -> None:
    code, out, err = drip("scoring", "explain", JANE, "--format", "json")
    assert code == 0, err
    why = json.loads(out)
    # +20 45 days ago (one half-life: 10 left) and +25 today: 35 stored, 35 now
    assert [round(line["now"], 2) for line in why["lines"]] == [10.0, 25.0]
    assert why["score"] == pytest.approx(35.0) and why["carried"] == 0
    assert why["threshold"] == 60 and why["gap"] == pytest.approx(25.0) and not why["ready"]
    assert why["fit"]["grade"] in "ABCD" and isinstance(why["fit"]["missing"], list)
    code, out, _ = drip("scoring", "explain", JANE)
    assert code == 0 and "requalification threshold 60" in out and "to go" in out
    assert "fit grade" in out and "click [pricing]" in out
    code, _, err = drip("scoring", "explain", "nobody@acme.example")
    assert code == 1 and "no lead nobody@acme.example" in err


def test_status_counts_the_handoffs_waiting_without_a_crm(handed_back: Engine) -> None:
    _, out, _ = drip("status", "--format", "json")
    report = json.loads(out)
    assert report["handoffs_pending"] == 1 and report["handoffs_failing"] == 0
    _code, out, _ = drip("status")
    assert "handoffs to the CRM: 1 pending" in out and "drip leads list --requalified" in out


def test_run_once_delivers_the_handoffs(
    handed_back: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "crm-shared-secret-0123456789"
    with CRMReceiver(secret) as crm:
        monkeypatch.setenv("DRIP_CRM_WEBHOOK_URL", crm.url)
        monkeypatch.setenv("DRIP_CRM_WEBHOOK_SECRET", secret)
        crm.answers.append(503)
        result = CliRunner().invoke(main, ["--now", NOW.isoformat(), "run", "--once"])
        assert result.exit_code == 0, result.output
        assert "handoffs to the CRM: 0 delivered, 1 to retry" in result.stdout
        assert "HTTP 503" in result.stdout
        _, out, _ = drip("status")
        assert "1 retrying, last error: HTTP 503" in out
        later = (NOW + timedelta(hours=1)).isoformat()
        result = CliRunner().invoke(main, ["--now", later, "run", "--once"])
        assert "handoffs to the CRM: 1 delivered, 0 to retry" in result.stdout
    [body] = crm.accepted
    assert body["lead"]["email"] == JANE and body["evidence"][0]["tag"] == "pricing"
    _code, out, _ = drip("leads", "list", "--requalified", "--format", "json")
    assert {r["handoff_status"] for r in json.loads(out)} == {"delivered"}
