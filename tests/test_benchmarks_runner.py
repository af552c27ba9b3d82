"""Smoke test: the benchmark runner runs one tiny benchmark and prints JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # benchmarks/run.py as a subprocess

REPO = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_POSTGRES_URL")}
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )


def test_runner_prints_one_json_object_a_line() -> None:
    result = run("lead_import", "--quick")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {line["name"]: line for line in lines}
    insert = by_name["lead_import.sqlite.insert"]
    assert insert["unit"] == "rows/s" and insert["value"] > 0
    assert insert["baseline"] > 0
    assert insert["ratio"] == pytest.approx(insert["value"] / insert["baseline"], rel=0.01)
    assert insert["rows"] == 2000 and insert["target"] == 50_000
    assert by_name["lead_import.sqlite.reimport"]["value"] > 0
    skipped = by_name["lead_import.postgres"]
    assert skipped["skipped"] is True and "DRIP_BENCH_POSTGRES_URL" in skipped["reason"]


def test_runner_refuses_an_unknown_benchmark() -> None:
    result = run("no_such_thing", "--quick")
    assert result.returncode == 2
    assert "no benchmark no_such_thing; there are: " in result.stderr
    assert "lead_import" in result.stderr
