"""``drip stats --by variant``: each A/B variant's emails and outcomes, and where its step's test
stands (docs/variants.md)."""

from __future__ import annotations

import contextlib

from rich import box
from rich.table import Table

from dripengine.campaigns import Campaign
from dripengine.cli.app import App
from dripengine.cli.output import console, emit_rows
from dripengine.cli.stats import heading
from dripengine.exceptions import DripError
from dripengine.reports import variants
from dripengine.reports.stats import Row, Window

FOOTER = (
    "rates: opens, clicks and replies / delivered; each email counts once per outcome; machine "
    "opens and scanner clicks are left out of opens and clicks",
    "a winner is picked on leads (each lead once) over the emails sent, up to now; "
    "docs/variants.md says how",
)


def print_variants(
    app: App, window: Window, campaign: str | None, since: str | None, fmt: str
) -> None:
    files: list[Campaign] = []
    with contextlib.suppress(DripError):  # broken files: the database's variants still show
        files = app.campaigns
    with app.ready_engine().connect() as connection:
        rows = variants.by_variant(connection, window, files, campaign)
    if fmt != "text":
        view = variants.VIEW
        columns = [*view.keys, "weight", *view.counts, *view.rates, *variants.COLUMNS[1:]]
        emit_rows([r.as_dict() for r in rows], fmt, columns)
        return
    out = console()
    out.print(heading("variant", "emails sent", window, campaign, since), markup=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for i, column in enumerate(
        (
            "campaign",
            "step",
            "variant",
            "weight",
            "sent",
            "human opens",
            "clicks",
            "replies",
            "winner",
        )
    ):
        table.add_column(column, justify="left" if i < 3 or i == 8 else "right")
    for row in rows:
        table.add_row(*_cells(row))
    out.print(table)
    said: set[tuple[str, str]] = set()
    for row in rows:
        step = (str(row.key["campaign"]), str(row.key["step"]))
        if step not in said:
            said.add(step)
            out.print(f"{step[0]} / {step[1]}: {row.key['status']}", markup=False)
    for line in FOOTER:
        out.print(line, markup=False, style="dim")
    if not rows:
        out.print(
            "hint: no step has variants yet: list `variants:` on a step (docs/variants.md)",
            markup=False,
        )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _cells(row: Row) -> list[str]:
    key, counts = row.key, row.counts
    weight = key["weight"]
    winner = ""
    if key["winner"]:
        winner = f"winner since {str(key['decided_at'])[:16].replace('T', ' ')}"
    return [
        str(key["campaign"]),
        str(key["step"]),
        str(key["variant"]),
        "-" if weight is None else f"{weight:g}",
        f"{counts['sent']:,}",
        f"{counts['human_opens']:,} ({_percent(row.rate('open_rate'))})",
        f"{counts['clicks']:,} ({_percent(row.rate('click_rate'))})",
        f"{counts['replies']:,} ({_percent(row.rate('reply_rate'))})",
        winner,
    ]


__all__ = ["print_variants"]
