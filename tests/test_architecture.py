"""The shape docs/architecture.md promises, measured from the code (issue 13).

Each check reads the source tree: a module added at the root, a module grown past 400 lines, SQL
written outside ``storage/``, an ESP named outside its provider package or an import that points
up the layers fails here, with the place to fix.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dripengine"

# Lowest first: a package imports only from packages before it in this list (the root's
# `__main__.py`, which runs the CLI, aside). docs/architecture.md draws the same order.
ORDER: tuple[str, ...] = (
    "root",
    "yamlfile",
    "storage",
    "scoring",
    "campaigns",
    "templates",
    "leads",
    "funnel",
    "engagement",
    "mail",
    "providers",
    "sending",
    "handoff",
    "reports",
    "authoring",
    "daemon",
    "web",
    "testing",
    "demo",
    "cli",
)
ROOT_LIMIT = 12
LINE_LIMIT = 400
SQL_LIMIT = 24  # 20 after issue 13; issue 16 adds one storage module per new capability
# Where SendGrid may be named besides its package and testing/: the wiring.
SENDGRID_WIRING = {"config.py", "providers/__init__.py", "cli/__init__.py"}


def modules() -> list[Path]:
    return sorted(
        path for path in PACKAGE.rglob("*.py") if "migrations/versions" not in path.as_posix()
    )


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def package_of(module: str) -> str:
    """``dripengine.a.b`` -> ``a`` for a package, ``root`` for a root module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (PACKAGE / parts[1]).is_dir() else "root"


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_root_holds_only_the_shared_vocabulary() -> None:
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root) <= ROOT_LIMIT, f"{len(root)} modules in dripengine/: {root}"


def test_no_module_is_over_the_line_limit() -> None:
    long = {rel(p): n for p in modules() if (n := len(p.read_text().splitlines())) > LINE_LIMIT}
    assert not long, f"over {LINE_LIMIT} lines (split by idea): {long}"


def test_sql_is_built_only_behind_the_storage_boundary() -> None:
    users = [
        rel(p)
        for p in modules()
        if any(n.split(".")[0] in {"sqlalchemy", "sqlmodel"} for n in imported(p))
    ]
    outside = [name for name in users if not name.startswith("storage/")]
    assert len(users) <= SQL_LIMIT, f"{len(users)} modules import SQLAlchemy/SQLModel: {users}"
    assert len(outside) <= 4, f"outside storage/: {outside}"


def test_sendgrid_is_named_only_in_its_package_and_the_wiring() -> None:
    named = [
        rel(p)
        for p in modules()
        if re.search("sendgrid", p.read_text(), re.IGNORECASE)
        and not rel(p).startswith(("providers/sendgrid/", "testing/"))
    ]
    assert set(named) <= SENDGRID_WIRING, (
        f"SendGrid named outside the wiring: {sorted(set(named) - SENDGRID_WIRING)}"
    )


def test_imports_point_down_the_layers() -> None:
    rank = {package: index for index, package in enumerate(ORDER)}
    upward: list[str] = []
    for path in modules():
        if path.name == "__main__.py" and path.parent == PACKAGE:
            continue  # `python -m dripengine` runs the CLI
        source = rel(path)
        here = source.split("/")[0] if "/" in source else "root"
        assert here in rank, f"package {here}/ is not in ORDER (this test, docs/architecture.md)"
        for name in imported(path):
            if name.startswith("dripengine.") and _exists(name):
                there = package_of(name)
                if rank[there] > rank[here]:
                    upward.append(f"{source} imports {name} ({there}/ is above {here}/)")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(sorted(set(upward)))


def _exists(module: str) -> bool:
    path = PACKAGE.parent / module.replace(".", "/")
    return path.with_suffix(".py").exists() or path.is_dir()
