"""How long ``drip`` takes to answer, whole process: ``--help``, ``sla`` and one ``recycle``.

Each command runs as its own process (``subprocess``, the ``drip`` console script beside this
interpreter, else ``python -m dripengine``) in a temporary folder made by ``drip init`` (SQLite
``drip.db``), after one warm-up run; the wall time from starting the process to its exit is what
a user waits. ``cli_startup.recycle`` recycles a different new address each run (``drip recycle
startupN@bench.example --from sql --reason no_budget --create``): it opens the database, checks
the schema revision, loads the SLA and the campaigns, and enrolls the lead.

Lines: ``cli_startup.help``, ``cli_startup.sla``, ``cli_startup.recycle``; ``value`` = the median
in seconds of ``runs`` runs (11; quick: 3), with ``min`` and ``max``, and ``cpu_median`` (user +
system seconds of the process, from ``os.wait4``: steadier than wall time on a busy machine).
Target: median ≤ 0.3 s.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Context, measurement

TARGET_SECONDS = 0.3
TIMEOUT = 60.0


def drip_command() -> list[str]:
    """What a user runs: the ``drip`` script of this environment, else ``python -m dripengine``."""
    script = Path(sys.executable).with_name("drip")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "dripengine"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}


def run_once(argv: Sequence[str], folder: Path) -> tuple[float, float]:
    """Seconds from starting ``drip argv`` in ``folder`` to its exit (which must be 0), and the
    CPU seconds (user + system) that process used (``os.wait4``: that child's own usage)."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*drip_command(), *argv],
            cwd=folder,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            out.seek(0)
            output = out.read().decode(errors="replace")
            raise RuntimeError(f"drip {' '.join(argv)} exited {process.returncode}: {output}")
    return seconds, usage.ru_utime + usage.ru_stime


def timings(make_argv: Any, folder: Path, runs: int) -> list[tuple[float, float]]:
    run_once(make_argv(-1), folder)  # warm-up: the OS caches the files, Python its bytecode
    return [run_once(make_argv(n), folder) for n in range(runs)]


def line(name: str, runs: list[tuple[float, float]], command: str) -> dict[str, Any]:
    seconds = [wall for wall, _ in runs]
    median = statistics.median(seconds)
    return measurement(
        name,
        median,
        "s (median, whole process)",
        min=round(min(seconds), 3),
        max=round(max(seconds), 3),
        # CPU time hardly depends on what else the machine runs: compare these across runs
        cpu_median=round(statistics.median(cpu for _, cpu in runs), 3),
        runs=len(seconds),
        command=command,
        target=TARGET_SECONDS,
        meets_target=median <= TARGET_SECONDS,
    )


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    runs = ctx.size(11, 3)
    folder = ctx.tmp / "drip"
    init = subprocess.run(
        [*drip_command(), "init", str(folder)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if init.returncode != 0:
        raise RuntimeError(f"drip init failed: {init.stderr}")
    try:
        yield line("cli_startup.help", timings(lambda n: ["--help"], folder, runs), "drip --help")
        yield line("cli_startup.sla", timings(lambda n: ["sla"], folder, runs), "drip sla")
        recycle = ["--from", "sql", "--reason", "no_budget", "--create"]
        yield line(
            "cli_startup.recycle",
            timings(lambda n: ["recycle", f"startup{n + 1}@bench.example", *recycle], folder, runs),
            "drip recycle startupN@bench.example --from sql --reason no_budget --create",
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
