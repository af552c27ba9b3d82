"""A "billion laughs" campaign or SLA file through the real `drip` command (issue 12, item 9): one
file:line error, fast, in bounded memory; anchors and merge keys a marketer writes still load.

The command runs as a subprocess with its address space capped, so the unbounded expansion this
guards against (1.18 GB) fails the test instead of eating the machine; its peak RSS is read from
``os.wait4``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_yamlfile import BILLION_LAUGHS

pytestmark = pytest.mark.slow  # `drip` subprocesses in capped memory

SKELETON = Path(__file__).parent.parent / "dripengine" / "skeleton"
ADDRESS_SPACE = 768 * 2**20  # the command needs ~70 MB resident; the bomb needed 1.18 GB
BOMB_ERROR = (
    ":6: aliases expand this file past 20,000 values (nested anchors and aliases); write the "
    "values out, or alias fewer levels"
)


# The cap is set by a small Python that then execs the command: a preexec_fn would fork pytest
# itself, and the child's peak RSS (ru_maxrss, kept across exec) would then count pytest's memory.
CAP_AND_EXEC = (
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE})); "
    "os.execv(sys.executable, [sys.executable, '-m', 'dripengine', *sys.argv[1:]])"
)


def drip(folder: Path, *args: str) -> tuple[int, str, str, float, int]:
    """Exit code, stdout, stderr, seconds and peak RSS (MB) of ``drip *args`` in ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    out_path, err_path = folder / "out.txt", folder / "err.txt"
    started = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", CAP_AND_EXEC, *args],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=err,
        )
    killer = threading.Timer(60, process.kill)  # a runaway command is killed, then reaped below
    killer.start()
    try:  # os.wait4, not Popen.wait: it gives the child's own peak RSS; it blocks, no polling
        _pid, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    return (
        process.returncode,
        out_path.read_text(),
        err_path.read_text(),
        seconds,
        usage.ru_maxrss // 1024,  # Linux: KB
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The shipped campaigns, templates, sla.yaml and drip.toml; no database needed."""
    target = tmp_path / "acme-drip"
    shutil.copytree(SKELETON, target)
    return target


def test_a_campaign_alias_bomb_is_one_line_fast_and_small(folder: Path) -> None:
    (folder / "campaigns" / "bomb.yaml").write_text(BILLION_LAUGHS)
    code, _, err, seconds, peak_mb = drip(folder, "campaigns", "validate")
    assert code == 1
    assert f"campaigns/bomb.yaml{BOMB_ERROR}\n" in err
    assert "Traceback" not in err and "MemoryError" not in err
    assert seconds < 20 and peak_mb < 200, (seconds, peak_mb)


def test_an_sla_alias_bomb_is_one_line(folder: Path) -> None:
    (folder / "sla.yaml").write_text(BILLION_LAUGHS.replace("id: bomb\n", "title: SLA\n"))
    code, _, err, seconds, peak_mb = drip(folder, "sla")
    assert code == 1
    assert f"sla.yaml{BOMB_ERROR}\n" in err
    assert "Traceback" not in err and "MemoryError" not in err
    assert seconds < 20 and peak_mb < 200, (seconds, peak_mb)


def test_anchors_and_merge_keys_in_a_campaign_still_validate(folder: Path) -> None:
    path = folder / "campaigns" / "lost-sql-winback.yaml"
    text = path.read_text()
    plain = (
        "      - id: checkin\n        wait: 1d\n        template: lost-sql/checkin.mjml\n"
        "        subject: \"Still thinking about {{ lead.company | default('your team') }}?\"\n"
        "      - id: whats-new\n        wait: 10d\n        template: lost-sql/whats-new.mjml\n"
    )
    merged = (
        "      - &checkin\n        id: checkin\n        wait: 1d\n"
        "        template: lost-sql/checkin.mjml\n"
        "        subject: \"Still thinking about {{ lead.company | default('your team') }}?\"\n"
        "      - <<: *checkin\n        id: whats-new\n        wait: 10d\n"
        "        template: lost-sql/whats-new.mjml\n"
    )
    assert plain in text
    text = text.replace(plain, merged).replace(
        "days: [mon, tue, wed, thu]", "days: &weekdays [mon, tue, wed, thu]"
    )
    path.write_text(text)
    code, out, err, _, _ = drip(folder, "campaigns", "validate")
    assert code == 0, err
    assert "2 campaign(s) valid" in out
