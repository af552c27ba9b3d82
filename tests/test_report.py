"""drip report and GET /report: one self-contained page, every value escaped, every chart drawn in
headless Chromium with no request leaving the file; the dashboard behind the API token."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from dripengine import report, stats
from dripengine.db import make_engine
from tests import rows
from tests.browser import CHROMIUM
from tests.clirun import drip
from tests.report_browser import ReportBrowser
from tests.served import drip_serve, free_port, request
from tests.test_stats import NOW, build_history

EVIL_CAMPAIGN = '<script>alert("campaign")</script>'
EVIL_REASON = "</script><img src=x onerror=alert(1)>"
TOKEN = "report-token-0123456789abcdef"


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def page_of(engine: Engine, since: datetime | None = None) -> str:
    return report.build(engine, stats.Window(NOW, since))


def with_evil_names(engine: Engine) -> Engine:
    build_history(engine)
    lead = rows.lead(engine, "mallory@acme.example", datetime(2026, 11, 1, tzinfo=UTC))
    rows.recycle_record(
        engine,
        lead,
        datetime(2026, 11, 5, tzinfo=UTC),
        reason=EVIL_REASON,
        campaign_id=EVIL_CAMPAIGN,
    )
    rows.enrollment(engine, lead, EVIL_CAMPAIGN, datetime(2026, 11, 5, tzinfo=UTC))
    rows.message(
        engine, lead, EVIL_CAMPAIGN, datetime(2026, 11, 9, tzinfo=UTC), step_id="<b>step</b>"
    )
    return engine


def test_the_page_is_self_contained_and_escapes_every_value(engine: Engine) -> None:
    page = page_of(with_evil_names(engine))
    parsed = Elements()
    parsed.feed(page)
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "action", "poster", "data"):
            assert not (attrs.get(name) or "").startswith(("http:", "https:", "//")), (tag, attrs)
    assert [t for t, _ in parsed.tags if t in ("link", "img", "iframe")] == []
    assert [t for t, a in parsed.tags if t == "script" and "src" in a] == []
    assert len(parsed.scripts) == 3  # the data, Chart.js, the drawing script
    assert "Chart.js v4.6.1" in parsed.scripts[1]

    # names from the database: escaped in the tables, \u-escaped in the JSON, never markup
    assert EVIL_CAMPAIGN not in page and EVIL_REASON not in page and "<b>step</b>" not in page
    assert "&lt;script&gt;alert(&#34;campaign&#34;)&lt;/script&gt;" in page
    data = json.loads(parsed.scripts[0])
    assert EVIL_CAMPAIGN in [c["name"] for c in data["funnel"]["campaigns"]]
    assert EVIL_REASON in data["reasons"]["labels"]
    evil_steps = next(s for s in data["steps"] if s["campaign"] == EVIL_CAMPAIGN)
    assert evil_steps["labels"] == ["<b>step</b>"]  # no track: the step alone

    # the policy lets the page load nothing and run only its own two scripts
    (csp,) = [
        a["content"] or ""
        for t, a in parsed.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp.startswith("default-src 'none'; script-src 'sha256-")
    assert csp.count("'sha256-") == 2 and "unsafe-eval" not in csp


def test_the_numbers_on_the_page_are_the_stats(engine: Engine) -> None:
    build_history(engine)
    parsed = Elements()
    parsed.feed(page_of(engine))
    data = json.loads(parsed.scripts[0])
    funnel = {c["name"]: c["counts"] for c in data["funnel"]["campaigns"]}
    assert funnel["lost-sql-winback"] == [6, 2, 2, 1, 1]  # jane x2, bob x2, carl, dana
    reasons = dict(
        zip(data["reasons"]["labels"], data["reasons"]["requalification_rate"], strict=True)
    )
    assert reasons["no_budget"] == 1.0 and reasons["bad_timing"] == 0.0
    assert data["weeks"]["labels"] == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert data["weeks"]["sent"] == [0, 5, 2] and data["weeks"]["human_opens"] == [0, 1, 0]
    winback = next(s for s in data["steps"] if s["campaign"] == "lost-sql-winback")
    assert winback == {
        "campaign": "lost-sql-winback",
        "labels": ["cold: checkin", "cold: value"],
        "sent": [4, 2],
        "reach": [1.0, 0.5],
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[ReportBrowser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"{CHROMIUM} not found: install the Debian package chromium "
            "(apt-get install chromium; .ci/run does)"
        )
    with ReportBrowser() as chromium:
        yield chromium


def test_every_chart_draws_in_chromium_with_no_request_and_no_error(
    engine: Engine, browser: ReportBrowser, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"
    path.write_text(page_of(with_evil_names(engine)), encoding="utf-8")
    loaded = browser.load(path)
    assert loaded.errors == []
    assert loaded.requests == [path.resolve().as_uri()]  # the file itself, nothing else
    ids = [c["id"] for c in loaded.canvases]
    assert ids[:3] == ["chart-funnel", "chart-reasons", "chart-weeks"]
    assert len(ids) == 3 + 3  # a step chart per campaign with emails: A, B and the evil one
    assert loaded.charts_drawn == len(ids)
    for canvas in loaded.canvases:
        assert canvas["width"] > 100 and canvas["height"] > 100, canvas
        assert canvas["painted"] > 1000, canvas  # bars, lines, axes: not a blank canvas


def test_an_empty_database_gives_a_page_with_a_hint(
    engine: Engine, browser: ReportBrowser, tmp_path: Path
) -> None:
    page = page_of(engine)
    assert "Nothing counted yet in this window" in page
    if engine.dialect.name != "sqlite":
        return
    path = tmp_path / "empty.html"
    path.write_text(page, encoding="utf-8")
    loaded = browser.load(path)
    assert loaded.errors == [] and loaded.canvases == [] and loaded.charts_drawn == 0


def test_drip_report_writes_the_file(folder: Path, db_url: str) -> None:
    url = f"sqlite:///{folder / 'drip.db'}" if db_url.startswith("sqlite") else db_url
    engine = make_engine(url)
    try:
        build_history(engine)
    finally:
        engine.dispose()
    code, out, err = drip("report", "--out", "out/report.html", "--since", "60d")
    assert code == 1 and "cannot write out/report.html" in err  # no such folder
    (folder / "out").mkdir()
    code, out, err = drip("report", "--out", "out/report.html", "--since", "60d")
    assert code == 0, err
    assert re.fullmatch(r"wrote out/report\.html \(\d+ KB\)\n", out)
    page = (folder / "out" / "report.html").read_text(encoding="utf-8")
    assert "since 2026-09-24 10:00 (60d) up to 2026-11-23 10:00 UTC" in page
    assert list(folder.glob("out/.*partial")) == []

    code, _, err = drip("report", "--since", "yesterday")
    assert code == 1 and '--since: "yesterday"' in err


def test_get_report_behind_the_api_token(folder: Path) -> None:
    port = free_port()
    with drip_serve(folder, port, env={"DRIP_API_TOKEN": TOKEN}) as base:
        answer = request(base, "GET", "/report")
        assert answer.status == 401
        assert answer.headers["www-authenticate"].startswith('Basic realm="dripengine report"')
        assert request(base, "GET", f"/report?token={TOKEN}").status == 401  # never in the URL
        wrong = base64.b64encode(b"me:not-the-token").decode()
        assert (
            request(base, "GET", "/report", headers={"Authorization": f"Basic {wrong}"}).status
            == 401
        )

        answer = request(base, "GET", "/report", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-store"
        assert "<title>dripengine report</title>" in answer.text

        basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
        answer = request(
            base,
            "GET",
            "/report?since=30d&campaign=lost-sql-winback",
            headers={"Authorization": f"Basic {basic}"},
        )
        assert answer.status == 200 and "dripengine report: lost-sql-winback" in answer.text

        answer = request(
            base, "GET", "/report?since=soon", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert answer.status == 400 and 'since: "soon"' in answer.text


def test_get_report_is_closed_without_a_configured_token(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIP_API_TOKEN", raising=False)
    port = free_port()
    with drip_serve(folder, port) as base:
        answer = request(base, "GET", "/report", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status == 503 and "DRIP_API_TOKEN" in answer.text
