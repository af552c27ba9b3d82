"""The report as one self-contained HTML page: tables, the data as JSON, Chart.js and the script
that draws the charts, all inside the file.

Every value from the database reaches the page escaped: table cells through Jinja's autoescape,
the charts' data as JSON whose ``<``, ``>`` and ``&`` are ``\\u`` escapes (so no name can close the
``<script>`` element it sits in), and the charts draw labels on a canvas, never as HTML. The
Content-Security-Policy allows exactly the two inline scripts (by their SHA-256) and nothing from
anywhere else: the page makes no request, even if someone edits it to try.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from dripengine.reports import holdout, stats
from dripengine.reports.page_data import ReportData

ASSETS = Path(__file__).parent / "assets"
TITLE = "dripengine report"
EMAIL_DENOMINATORS = (
    "Rates: delivered / sent; human opens, machine opens, clicks, replies, unsubscribes and "
    "complaints / delivered; bounces / sent; requalified / enrolled. Delivered: no bounce or drop "
    "came back. Machine opens: opened only by a privacy proxy. Clicks leave out link scanners."
)
_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


@cache
def _asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    if "</script" in text.lower():  # an inline script must not close its own element
        raise ValueError(f"{name} contains '</script' and cannot be inlined")
    return text


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(ASSETS),
        autoescape=select_autoescape(default=True, default_for_string=True),
        keep_trailing_newline=True,
    )


def script_json(value: Any) -> Markup:
    """``value`` as JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return Markup(text)


def _sha256(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def _percent(value: float | None) -> str:
    if value is None:
        return ""
    percent = value * 100
    if percent >= 10 or percent == 0:
        return f"{percent:.0f}%"
    return f"{percent:.1f}%" if percent >= 1 else f"{percent:.2f}%"


def _table(
    rows: list[stats.Row], counts: tuple[str, ...], rates: dict[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    beside = {numerator: name for name, (numerator, _d) in rates.items()}
    return [
        {
            "key": row.key,
            "cells": [
                {
                    "count": f"{row.counts[c]:,}",
                    "rate": _percent(row.rate(beside[c])) if c in beside else "",
                }
                for c in counts
            ],
        }
        for row in rows
    ]


def render(data: ReportData, generated: datetime, since_text: str | None = None) -> str:
    """The page for ``data``; ``generated`` is the time it is written (the app's clock)."""
    window = data.window
    if window.since is not None:
        since = f"since {window.since:%Y-%m-%d %H:%M}" + (f" ({since_text})" if since_text else "")
        span = f"{since} up to {window.now:%Y-%m-%d %H:%M} UTC"
        span_short = since
    else:
        span = f"everything up to {window.now:%Y-%m-%d %H:%M} UTC"
        span_short = "so far"
    chartjs, script = _asset("chart.umd.min.js"), _asset("report.js")
    csp = (
        "default-src 'none'; "
        f"script-src {_sha256(chartjs)} {_sha256(script)}; "
        "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    )
    charts = data.charts()
    lifts = [
        {"campaign": name, "headline": holdout.headline(name, result), **result}
        for name, result in data.lifts.items()
        if result["holdout"]["leads"]
    ]
    email_counts = stats.CAMPAIGN_COUNTS
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=TITLE + (f": {data.campaign}" if data.campaign else ""),
            scope=f"campaign {data.campaign}" if data.campaign else "every campaign",
            span=span,
            span_short=span_short,
            generated=f"{generated:%Y-%m-%d %H:%M}",
            csp=csp,
            empty=data.empty,
            lifts=lifts,
            percent=_percent,
            stages=stats.FUNNEL_COUNTS,
            funnel_rows=_table(data.funnel_by_campaign, stats.FUNNEL_COUNTS, stats.FUNNEL_RATES),
            reason_rows=_table(data.funnel_by_reason, stats.FUNNEL_COUNTS, stats.FUNNEL_RATES),
            has_weeks=any(charts["weeks"]["sent"]),
            step_charts=charts["steps"],
            colours=charts["colours"],
            campaign_columns=[c.replace("_", " ") for c in email_counts],
            campaign_rows=_table(data.campaigns, email_counts, stats.CAMPAIGN_RATES),
            email_denominators=EMAIL_DENOMINATORS,
            sla=data.sla,
            data_json=script_json(charts),
            chartjs=Markup(chartjs),
            script=Markup(script),
        )
    )
