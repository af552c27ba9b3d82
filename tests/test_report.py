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
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from dripengine.reports import html as report
from dripengine.reports import stats
from dripengine.reports.colours import PALETTE, SERIES, campaign_colours
from dripengine.storage.engine import make_engine
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


def with_evil_names(engine: Engine, history: bool = True) -> Engine:
    if history:
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


@pytest.mark.slow  # headless Chromium
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


@pytest.mark.slow  # headless Chromium
def test_an_empty_database_gives_a_page_with_a_hint(
    engine: Engine, browser: ReportBrowser, tmp_path: Path
) -> None:
    page = page_of(engine)
    assert "Nothing counted yet in this window" in page
    if engine.dialect.name != "sqlite":
        return
    path = tmp_path / "empty.html"
    path.write_text(page, encoding="utf-8")
    loaded = browser.load(path, 375)
    browser.shoot(tmp_path / "empty-375.png", 375, loaded.height)
    assert loaded.errors == [] and loaded.canvases == [] and loaded.charts_drawn == 0
    # the hint is HTML, not Markdown: commands as code, no backticks, stars or [links](...)
    layout = browser.layout()
    assert "Nothing counted yet in this window" in layout["text"]
    for markdown in ("`", "**", "__", "](", "# "):
        assert markdown not in layout["text"], markdown
    assert {"drip recycle", "drip run", "drip serve", "drip events ingest"} <= set(layout["code"])
    assert layout["scrollWidth"] <= layout["clientWidth"] and layout["outside"] == []


def with_many_campaigns(engine: Engine) -> Engine:
    """The history, and nine more campaigns with a recycle each (one of them with an email too):
    more campaigns than any palette has colours, listed in a different order on each chart."""
    build_history(engine)
    for n in range(1, 10):
        campaign = f"extra-{n:02d}"
        lead = rows.lead(engine, f"lead{n}@extra.example", datetime(2026, 11, 2, tzinfo=UTC))
        rows.recycle_record(engine, lead, datetime(2026, 11, 3, tzinfo=UTC), campaign_id=campaign)
        if n == 5:
            enrolment = rows.enrollment(engine, lead, campaign, datetime(2026, 11, 3, tzinfo=UTC))
            at = datetime(2026, 11, 10, tzinfo=UTC)
            rows.message(engine, lead, campaign, at, enrollment_id=enrolment)
    return engine


def loaded_report(
    browser: ReportBrowser, page: str, tmp_path: Path, width: int = 1280
) -> dict[str, Any]:
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    loaded = browser.load(path, width)
    assert loaded.errors == []
    browser.shoot(tmp_path / f"report-{width}.png", width, loaded.height)
    return {"loaded": loaded, "charts": browser.charts(), "layout": browser.layout()}


@pytest.mark.slow  # headless Chromium
def test_counts_are_on_a_linear_axis_with_whole_number_ticks(
    engine: Engine, browser: ReportBrowser, tmp_path: Path
) -> None:
    # a handful of emails per week and step: a default axis would tick 0, 0.5, 1, 1.5 ...
    charts = loaded_report(browser, page_of(build_history(engine)), tmp_path)["charts"]
    assert [c["id"] for c in charts][:3] == ["chart-funnel", "chart-reasons", "chart-weeks"]
    assert len(charts) == 5
    for chart in charts:
        assert "logarithmic" not in [s["type"] for s in chart["scales"]], chart["id"]
        (y,) = [s for s in chart["scales"] if s["axis"] == "y"]
        assert y["type"] == "linear" and y["min"] == 0, (chart["id"], y)
        assert len(y["ticks"]) >= 2, (chart["id"], y)
        assert all(float(t).is_integer() for t in y["ticks"]), (chart["id"], y["ticks"])


def rgb(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.mark.slow  # headless Chromium
def test_each_campaign_has_one_colour_on_every_chart_and_table(
    engine: Engine, browser: ReportBrowser, tmp_path: Path
) -> None:
    page = page_of(with_many_campaigns(engine))
    shown = loaded_report(browser, page, tmp_path)
    charts = {c["id"]: c for c in shown["charts"]}
    parsed = Elements()
    parsed.feed(page)
    data = json.loads(parsed.scripts[0])

    seen: dict[str, set[str]] = {}  # campaign -> every colour it was drawn in
    funnel = charts.pop("chart-funnel")
    for dataset in funnel["datasets"]:
        seen.setdefault(dataset["label"], set()).add(dataset["background"])
    for text, colour in funnel["legend"]:
        seen[text].add(colour)
    for i, steps in enumerate(data["steps"]):
        (dataset,) = charts.pop(f"chart-steps-{i}")["datasets"]
        seen.setdefault(steps["campaign"], set()).add(dataset["background"])
    assert len(seen) == 11  # A, B and the nine extra ones
    assert {name for name, colours in seen.items() if len(colours) != 1} == set()
    colour = {name: colours.pop() for name, colours in seen.items()}
    assert len(set(colour.values())) == len(colour)  # no two campaigns share a colour

    # the other charts' series (rates, sends, opens) are in none of the campaigns' colours
    assert set(charts) == {"chart-reasons", "chart-weeks"}
    for chart in charts.values():
        for dataset in chart["datasets"]:
            assert {dataset["background"], dataset["border"]}.isdisjoint(colour.values()), dataset

    # the swatch beside each campaign's name in the tables and step headings: the same colour
    swatches = shown["layout"]["swatches"]
    assert {name for name, _ in swatches} == set(colour)
    assert {(name, rgb(colour[name])) for name in colour} == set(map(tuple, swatches))


def test_campaign_colours_are_distinct_stable_and_never_a_series_grey() -> None:
    names = [f"campaign-{n:02d}" for n in range(40)]
    colours = campaign_colours(reversed(names))
    assert list(colours) == names  # name order, whatever order they came in
    assert colours == campaign_colours([*names, *names])
    assert len(set(colours.values())) == 40 and set(colours.values()).isdisjoint(SERIES)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours.values())
    assert campaign_colours(["b", "a"]) == {"a": PALETTE[0], "b": PALETTE[1]}


@pytest.mark.slow  # headless Chromium
@pytest.mark.parametrize("width", [375, 1280])
def test_the_page_fits_the_window_at_375_and_1280_px(
    engine: Engine, browser: ReportBrowser, tmp_path: Path, width: int
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the page is the same on PostgreSQL: its layout is checked once")
    shown = loaded_report(
        browser,
        page_of(with_evil_names(with_many_campaigns(engine), history=False)),
        tmp_path,
        width,
    )
    assert (tmp_path / f"report-{width}.png").stat().st_size > 10_000
    layout = shown["layout"]
    assert layout["clientWidth"] == width
    assert layout["scrollWidth"] <= width  # no sideways scrolling: wide tables scroll in their box
    assert layout["outside"] == []  # nothing cut off at either edge
    for chart in shown["charts"]:
        assert chart["left"] >= 0 and chart["right"] <= width, chart["id"]
        # room left to read the bars, whatever the legend and the labels take
        assert chart["plot"]["width"] >= 200 and chart["plot"]["height"] >= 120, chart


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


@pytest.mark.slow  # a `drip serve` subprocess
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


@pytest.mark.slow  # a `drip serve` subprocess
def test_get_report_is_closed_without_a_configured_token(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIP_API_TOKEN", raising=False)
    port = free_port()
    with drip_serve(folder, port) as base:
        answer = request(base, "GET", "/report", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status == 503 and "DRIP_API_TOKEN" in answer.text
