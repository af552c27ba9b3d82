"""docs/deploy.md and the files in deploy/ name only settings that exist, and link only to files
that exist: a renamed setting cannot leave a deployment guide that silently sets nothing."""

from __future__ import annotations

import re
from pathlib import Path

from dripengine.config import ALIASES, Settings
from tests.deploy_files import DEPLOY, REPO

GUIDE = REPO / "docs" / "deploy.md"
# variables the deployment files define for themselves (Compose interpolation, the Caddyfile),
# read by dripengine outside Settings, or by uvicorn
NOT_SETTINGS = {
    "DRIP_SECTION_KEY",  # the pattern itself
    "DRIP_CONFIG",  # which drip.toml (config.py)
    "DRIP_FOLDER",
    "DRIP_DOMAIN",
    "DRIP_UPSTREAM_HOST",
    "DRIP_UPSTREAM_PORT",
    "DRIP_EDGE_SUBNET",
    "DRIP_SERVE_WORKERS",
    "DRIP_IMAGE_TAG",
    # the PgBouncer switch, added beside this guide (database.pgbouncer)
}
NAME = re.compile(r"\b(?:DRIP|SENDGRID)_[A-Z0-9_]*[A-Z0-9]\b")


def settings_variables() -> set[str]:
    names = set(ALIASES)
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and hasattr(model, "model_fields"):
            names.update(f"DRIP_{section}_{key}".upper() for key in model.model_fields)
    return names


def deployment_files() -> list[Path]:
    return [GUIDE, *sorted(p for p in DEPLOY.rglob("*") if p.is_file())]


def test_every_variable_named_is_a_setting_or_a_deployment_variable() -> None:
    known = settings_variables() | NOT_SETTINGS
    unknown = {
        f"{path.relative_to(REPO)}: {name}"
        for path in deployment_files()
        for name in NAME.findall(path.read_text(encoding="utf-8"))
        if name not in known
    }
    assert not unknown, sorted(unknown)


def test_every_relative_link_of_the_guide_exists() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", GUIDE.read_text(encoding="utf-8"))
    missing = [link for link in links if "://" not in link and not (GUIDE.parent / link).exists()]
    assert links and not missing, missing


def test_the_metrics_table_is_marked_for_the_metrics_endpoint() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert "<!-- METRICS -->" in text and "/metrics" in text


def test_the_readme_links_the_guide() -> None:
    assert "(docs/deploy.md)" in (REPO / "README.md").read_text(encoding="utf-8")
