"""``drip init``: copy the example working folder shipped in the package and migrate its database."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dripengine.config import load_settings
from dripengine.exceptions import DripError
from dripengine.storage.engine import current_revision, open_engine, upgrade

SKELETON = Path(__file__).parent.parent / "skeleton"
SKELETON_ENTRIES = (
    "drip.toml",
    "sla.yaml",
    "campaigns",
    "templates",
    "leads.csv",
    "lost-deals.csv",
)


@dataclass
class ScaffoldResult:
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    database: str = ""
    revision: str | None = None


def scaffold(directory: Path, *, force: bool = False) -> ScaffoldResult:
    """Copy the example folder into ``directory`` (existing files are kept) and migrate its database.

    The database is the one the new ``drip.toml`` names, unless ``DRIP_DATABASE_URL`` says otherwise.
    """
    if directory.exists() and not directory.is_dir():
        raise DripError(f"{directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    result = ScaffoldResult()
    for name in SKELETON_ENTRIES:
        source = SKELETON / name
        if source.is_dir():
            for file in sorted(p for p in source.rglob("*") if p.is_file()):
                _copy(file, directory / name / file.relative_to(source), force, result)
        else:
            _copy(source, directory / name, force, result)
    config = directory / "drip.toml"
    if config in result.written:
        _write_secret(config)
    settings = load_settings(config)
    engine = open_engine(settings)
    try:
        upgrade(engine)
        result.revision = current_revision(engine)
    finally:
        engine.dispose()
    result.database = engine.url.render_as_string(hide_password=True)
    return result


SECRET_PLACEHOLDER = '# secret_key = "set by drip init"'


def _write_secret(config: Path) -> None:
    """Give the new folder its own signing key for the links in its emails."""
    text = config.read_text(encoding="utf-8")
    line = f'secret_key = "{secrets.token_urlsafe(32)}"'
    config.write_text(text.replace(SECRET_PLACEHOLDER, line, 1), encoding="utf-8")


def _copy(source: Path, target: Path, force: bool, result: ScaffoldResult) -> None:
    if target.exists() and not force:
        result.kept.append(target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    result.written.append(target)
