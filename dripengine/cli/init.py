"""``drip init``: a working folder with settings, SLA, example campaigns and a migrated database."""

from __future__ import annotations

from pathlib import Path

import click

from dripengine.cli.scaffold import SKELETON_ENTRIES, scaffold


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite example files that already exist.")
def init(directory: Path, force: bool) -> None:
    """Create a working folder: drip.toml, sla.yaml, campaigns/, templates/, drip.db.

    The example campaigns ("Rejected MQL nurture", "Lost SQL win-back") and sample CSV files are
    ready to use; edit them to fit your company.
    """
    result = scaffold(directory, force=force)
    for path in result.written:
        click.echo(f"  wrote {path}")
    for path in result.kept:
        click.echo(f"  kept  {path} (exists; --force overwrites)")
    click.echo(f"  database {result.database} at revision {result.revision}")
    where = directory if str(directory) != "." else Path.cwd().name
    click.echo(
        f"\nReady. Next:\n  cd {where}\n  drip campaigns validate\n"
        "  drip leads import leads.csv\n"
        "  drip recycle jane@acme.example --from sql --reason no_budget\n"
    )


__all__ = ["SKELETON_ENTRIES", "init"]
