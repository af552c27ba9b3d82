"""The demo's folder: its marker (so a second ``drip demo`` starts it over, and nothing else is
ever emptied) and the serving settings it leaves in ``drip.toml`` (so its links can be served
again with a plain ``drip serve``)."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

from dripengine.exceptions import DripError

__all__ = ["MARKER", "prepare_folder", "remember_serving"]

MARKER = ".drip-demo"
MARKER_TEXT = (
    "Made by drip demo. Running drip demo on this folder again starts it over: everything in it\n"
    "is removed first. Delete this file to keep the folder as it is.\n"
)


def prepare_folder(folder: Path) -> bool:
    """Make ``folder`` ready for a demo; True when it held an earlier demo, now emptied.

    Only a folder with the marker an earlier demo left is emptied; any other folder with something
    in it is refused, so a demo never deletes what it did not make.
    """
    if folder.exists() and not folder.is_dir():
        raise DripError(f"{folder} exists and is not a folder: name another (drip demo DIR)")
    entries = list(folder.iterdir()) if folder.exists() else []
    started_over = False
    if entries:
        if not (folder / MARKER).is_file():
            raise DripError(
                f"{folder} is not empty and no drip demo made it: the demo needs a folder of its "
                f"own (name another: drip demo DIR, or empty this one)"
            )
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        started_over = True
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    return started_over


def remember_serving(config: Path, base: str, port: int, token: str) -> bool:
    """Write the demo's base URL, port and API token into its ``drip.toml``, so a later ``drip
    serve`` in the folder answers the links in the demo's emails; False when the file would not
    take them (then the caller names ``--port``)."""
    text = config.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^base_url = ".*"$', f'base_url = "{base}"', text, count=1)
    lines = "# set by drip demo: the port its emails link to, the token of /api and /report\n"
    lines += f'port = {port}\napi_token = "{token}"\n'
    if re.search(r"(?m)^\[web\]$", text):
        text = re.sub(r"(?m)^\[web\]$", lambda _: "[web]\n" + lines.rstrip("\n"), text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n[web]\n" + lines
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    if (
        parsed.get("web", {}).get("port") != port
        or parsed.get("sender", {}).get("base_url") != base
    ):
        return False
    config.write_text(text, encoding="utf-8")
    return True
