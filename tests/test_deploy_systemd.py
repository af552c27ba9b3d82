"""deploy/systemd: the units say what a deployment needs (the schema first, restarts, a graceful
stop, hardening), systemd-analyze accepts them, and every Exec line runs as written: with the
paths swapped for a `drip init` folder and this venv's `drip`, the environment file
deploy/drip.env.example with its placeholders filled, a new database."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dripengine.storage.engine import HEAD_REVISION
from dripengine.testing.sendgrid_standin import SendGridStandIn
from dripengine.testing.sendgrid_webhook import Signer
from dripengine.testing.serve_process import free_port
from tests.deploy_files import (
    DEPLOY,
    command_line,
    empty_database,
    fill_placeholders,
    group_gone,
    healthz,
    one,
    read_env_file,
    read_unit,
    seconds,
    start,
    workers,
    working_folder,
)
from tests.waiting import wait_for

UNITS = DEPLOY / "systemd"
UPGRADE, RUN, SERVE = "drip-db-upgrade.service", "drip-run@.service", "drip-serve.service"
ENV_FILE = "/etc/dripengine/drip.env"
# what systemd gives a service before Environment= and EnvironmentFile=
SYSTEMD_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    return read_unit(UNITS / name)


def test_every_drip_unit_runs_the_schema_upgrade_first() -> None:
    upgrade = unit(UPGRADE)
    assert one(upgrade, "Service", "Type") == "oneshot"
    assert "RemainAfterExit" not in upgrade["Service"]  # each start of a drip unit runs it again
    assert one(upgrade, "Service", "ExecStart") == "/opt/dripengine/bin/drip db upgrade"
    for name in (RUN, SERVE):
        service = unit(name)
        assert UPGRADE in one(service, "Unit", "Requires").split()
        assert UPGRADE in one(service, "Unit", "After").split()
        assert one(service, "Service", "Restart") == "on-failure"
        assert one(service, "Service", "KillSignal") == "SIGTERM"
        assert one(service, "Service", "KillMode") == "mixed"  # SIGTERM to drip, not its children
    assert one(unit(RUN), "Service", "ExecStart") == "/opt/dripengine/bin/drip run"
    assert seconds(one(unit(RUN), "Service", "TimeoutStopSec")) == 120


@pytest.mark.parametrize("name", [UPGRADE, RUN, SERVE])
def test_every_unit_is_hardened_and_reads_its_secrets_from_the_environment_file(name: str) -> None:
    service = unit(name)["Service"]
    assert service["User"] == ["drip"] and service["Group"] == ["drip"]
    assert service["EnvironmentFile"] == [ENV_FILE]
    assert service["WorkingDirectory"] == ["/srv/dripengine"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert service[key] == [value], key
    if name != UPGRADE:  # SQLite and the outbox provider write in the working folder
        assert service["ReadWritePaths"] == ["/srv/dripengine"]
    # no secret in a unit: `systemctl show` prints Environment= to every local user
    for line in service.get("Environment", []):
        assert not any(word in line for word in ("SECRET", "TOKEN", "PASSWORD", "API_KEY"))


def local_units(tmp_path: Path, paths: dict[str, str]) -> Path:
    """The units with the deployment's paths replaced; the template also as instance @1."""
    folder = tmp_path / "units"
    folder.mkdir()
    for source in UNITS.glob("*.service"):
        text = source.read_text(encoding="utf-8")
        for deployed, local in paths.items():
            text = text.replace(deployed, local)
        (folder / source.name).write_text(text, encoding="utf-8")
    shutil.copy(folder / RUN, folder / "drip-run@1.service")
    return folder


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    paths = {
        "/opt/dripengine/bin/drip": str(Path(sys.executable).parent / "drip"),
        "/srv/dripengine": str(tmp_path),
        ENV_FILE: str(tmp_path / "drip.env"),
    }
    (tmp_path / "drip.env").write_text("", encoding="utf-8")
    folder = local_units(tmp_path, paths)
    names = [UPGRADE, SERVE, "drip-run@1.service"]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(f"./{n}" for n in names)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    # systemd-analyze exits 0 on an unknown key or a bad value too, but says so on stderr
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.slow
def test_the_units_exec_lines_run_as_written(tmp_path: Path) -> None:
    """drip-db-upgrade builds the schema and exits 0; drip-run@1, drip-run@2 and drip-serve start
    after it, serve answers /healthz, and SIGTERM stops each with exit 0 within TimeoutStopSec."""
    folder = working_folder(tmp_path / "srv-dripengine")
    paths = {"/opt/dripengine/bin/drip": str(Path(sys.executable).parent / "drip")}
    example = read_env_file((DEPLOY / "drip.env.example").read_text(encoding="utf-8"))
    port = free_port()
    with empty_database(tmp_path) as url, SendGridStandIn() as sendgrid:
        env_file = fill_placeholders(
            example,
            {
                "DRIP_DATABASE_URL": url,
                "SENDGRID_API_KEY": sendgrid.api_key,
                "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": Signer.generate().public_key,
            },
        )
        # this host's: the SendGrid stand-in, a free port (the file may override the unit's)
        env_file |= {"DRIP_SENDGRID_HOST": sendgrid.url, "DRIP_WEB_PORT": str(port)}

        def environment(name: str) -> dict[str, str]:
            """systemd's order: its own, Environment= lines, then EnvironmentFile= wins."""
            env = dict(SYSTEMD_ENV)
            for line in unit(name)["Service"].get("Environment", []):
                env |= dict(pair.split("=", 1) for pair in line.split())
            return env | env_file

        def exec_start(name: str, instance: str = "") -> list[str]:
            line = one(unit(name), "Service", "ExecStart").replace("%i", instance)
            return command_line(line, paths)

        def timeout(name: str) -> float:
            return seconds(one(unit(name), "Service", "TimeoutStopSec"))

        upgrade = subprocess.run(
            exec_start(UPGRADE),
            cwd=folder,
            env=environment(UPGRADE),
            capture_output=True,
            text=True,
        )
        assert upgrade.returncode == 0, upgrade.stderr
        expected = f"upgraded from empty to {HEAD_REVISION}" if "sqlite" not in url else "upgraded"
        assert expected in upgrade.stdout

        runs = [
            start(f"drip-run@{i}", exec_start(RUN, str(i)), environment(RUN), folder, tmp_path)
            for i in (1, 2)
        ]
        serve = start("drip-serve", exec_start(SERVE), environment(SERVE), folder, tmp_path)
        try:
            wait_for(lambda: healthz(port) or not serve.alive(), 60, "drip-serve's /healthz")
            assert serve.alive(), serve.output()
            assert f"http://127.0.0.1:{port} (2 worker(s))" in serve.output()
            wait_for(lambda: len(workers(url)) == 2, 60, "drip-run@1 and @2 alive")
            for run in runs:
                code, took = run.stop(timeout(RUN))
                assert code == 0, run.output()
                assert took < timeout(RUN)
            assert [stopped for _id, stopped in workers(url)] == [True, True]
            code, _took = serve.stop(timeout(SERVE))
            assert code == 0, serve.output()
            assert wait_for(lambda: group_gone(serve.process.pid), 10, "serve's workers to exit")
        finally:
            for running in (*runs, serve):
                running.kill()


def test_the_example_environment_file_holds_no_secret_and_its_placeholders_are_refused(
    tmp_path: Path,
) -> None:
    """As written, drip.env.example starts nothing: `drip db upgrade` names the first setting
    still to fill in, before it touches the database."""
    example = read_env_file((DEPLOY / "drip.env.example").read_text(encoding="utf-8"))
    for key, value in example.items():
        if any(word in key for word in ("SECRET", "TOKEN", "API_KEY", "PUBLIC_KEY")):
            assert value == "CHANGE_ME", key
    assert ":CHANGE_ME@" in example["DRIP_DATABASE_URL"]
    folder = working_folder(tmp_path / "srv-dripengine")
    env = SYSTEMD_ENV | example | {"DRIP_DATABASE_URL": f"sqlite:///{tmp_path / 'never.db'}"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "drip"), "db", "upgrade"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "DRIP_SECRET_KEY" in result.stderr or "DRIP_API_TOKEN" in result.stderr, result.stderr
    assert not (tmp_path / "never.db").exists()
