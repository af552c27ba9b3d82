"""A "billion laughs" campaign or SLA file through the real `drip` command (issue 12, item 9): one
file:line error, fast, in bounded memory; anchors and merge keys a marketer writes still load.

The command runs as a subprocess with its address space capped, so the unbounded expansion this
guards against (1.18 GB) fails the test instead of eating the machine; its peak RSS is read from
``os.wait4`` by a small launcher process: a child forked from pytest itself would count pytest's
own resident memory at the fork (Linux keeps the larger of the two in ``ru_maxrss``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


# Forks the command from a small process, caps its address space, waits and reports its peak RSS.
LAUNCHER = """
import os, resource, sys
limit, report, *args = sys.argv[1:]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    os.execv(sys.executable, [sys.executable, "-m", "dripengine", *args])
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as file:
    file.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def drip(folder: Path, *args: str) -> tuple[int, str, str, float, int]:
    """Exit code, stdout, stderr, seconds and peak RSS (MB) of ``drip *args`` in ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    out_path, err_path = folder / "out.txt", folder / "err.txt"
    report = folder / "peak-rss.txt"
    started = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(ADDRESS_SPACE), str(report), *args],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            raise
    seconds = time.perf_counter() - started
    return (
        code,
        out_path.read_text(),
        err_path.read_text(),
        seconds,
        int(report.read_text()) // 1024,  # Linux: KB
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
        "      - id: whats-new\n        wait: 10d\n        template: lost-sql/whats-new.mjml\n"
        '        subject: "What has changed at Acme since we last spoke"\n'
        "      - id: breakup\n        wait: 14d\n        template: lost-sql/breakup.mjml\n"
    )
    merged = (
        "      - &whats-new\n        id: whats-new\n        wait: 10d\n"
        "        template: lost-sql/whats-new.mjml\n"
        '        subject: "What has changed at Acme since we last spoke"\n'
        "      - <<: *whats-new\n        id: breakup\n        wait: 14d\n"
        "        template: lost-sql/breakup.mjml\n"
    )
    assert plain in text
    text = text.replace(plain, merged).replace(
        "days: [mon, tue, wed, thu]", "days: &weekdays [mon, tue, wed, thu]"
    )
    path.write_text(text)
    code, out, err, _, _ = drip(folder, "campaigns", "validate")
    assert code == 0, err
    assert "2 campaign(s) valid" in out
