"""``drip events ingest``: replay a file of provider events through the webhook's path."""

from __future__ import annotations

from pathlib import Path

import click

from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.lazy import LazyGroup
from dripengine.cli.output import terminal_safe
from dripengine.engagement.event_files import read_items
from dripengine.exceptions import ImportFileError
from dripengine.providers import EVENT_FORMATS, event_parser
from dripengine.providers.webhook import BadEvent
from dripengine.vocabulary import IncomingEvent

BATCH = 1000  # events a transaction, as an ESP's event webhook posts them
MAX_ERRORS_SHOWN = 50


@click.group(cls=LazyGroup)
def events() -> None:
    """Engagement events: replay provider exports."""


@events.command(
    "ingest", short_help="Replay a provider's event export through the webhook's parser."
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--provider",
    type=Choice(list(EVENT_FORMATS)),
    default=EVENT_FORMATS[0],
    show_default=True,
    help="Whose event format the file is in.",
)
@click.pass_obj
def ingest(app: App, file: Path, provider: str) -> None:
    """Replay FILE (a JSON array, or one event a line) through the same parser and ingest as the
    webhook: duplicates of events already received are recognised, bad lines reported as
    FILE:LINE: reason while the rest is kept. Events are stored 1,000 to a transaction."""
    from dripengine.engagement.ingest import Engagement

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"{file}: cannot read it as UTF-8 text: {exc}") from None
    parse_event = event_parser(provider)
    engagement = Engagement(app.ready_engine(), app.settings, app.sla, app.clock)
    totals = {"read": 0, "stored": 0, "duplicates": 0, "unmatched": 0, "suppressed": 0}
    requalified = 0
    errors: list[str] = []
    batch: list[IncomingEvent] = []

    def flush() -> None:
        nonlocal requalified
        if not batch:
            return
        result = engagement.ingest(batch)
        totals["stored"] += result.stored
        totals["duplicates"] += result.duplicates
        totals["unmatched"] += result.unmatched
        totals["suppressed"] += len(result.suppressed)
        errors.extend(f"{file}: an event not storable: {why}" for _, why in result.skipped)
        requalified += len(result.requalified)
        batch.clear()

    for item in read_items(text):
        if item.error is not None:
            errors.append(f"{file}:{item.line}: {item.error}")
            continue
        totals["read"] += 1
        try:
            batch.append(parse_event(item.value))
        except BadEvent as exc:
            errors.append(f"{file}:{item.line}: {exc}")
            continue
        if len(batch) >= BATCH:
            flush()
    flush()
    for line in errors[:MAX_ERRORS_SHOWN]:
        click.echo(terminal_safe(line), err=True)  # a reason may quote the file's data
    if len(errors) > MAX_ERRORS_SHOWN:
        click.echo(f"… and {len(errors) - MAX_ERRORS_SHOWN} more", err=True)
    click.echo(
        f"{totals['read']} events read: {totals['stored']} stored, "
        f"{totals['duplicates']} duplicates, {totals['unmatched']} matched no lead, "
        f"{len(errors)} skipped; {totals['suppressed']} address(es) suppressed, "
        f"{requalified} lead(s) requalified"
    )
