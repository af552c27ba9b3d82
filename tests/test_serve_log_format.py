"""`drip serve` logs every line in one format (issue 15, item 13): dripengine's own messages,
uvicorn's server messages and its access log alike, with one worker and with several."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dripengine.cli import main
from dripengine.testing.serve_process import ServeProcess

pytestmark = pytest.mark.slow  # `drip serve` subprocesses

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S"
)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_line_of_drip_serve_has_one_format(tmp_path: Path, workers: str) -> None:
    folder = tmp_path / "p"
    assert CliRunner().invoke(main, ["init", str(folder)]).exit_code == 0
    with ServeProcess(folder, args=("--workers", workers), clean_env=True) as server:
        assert server.healthy()
        server.http.request("GET", f"{server.url}/no-such-page")
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    assert any(
        "uvicorn.access" in line and '"GET /no-such-page HTTP/1.1" 404' in line for line in lines
    )
    assert any("dripengine.web: drip serve on http://127.0.0.1:" in line for line in lines)
    odd = [line for line in lines if not LINE.match(line)]
    assert odd == []
