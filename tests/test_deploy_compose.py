"""deploy/compose.yaml and deploy/Dockerfile: valid Compose, the order a deploy needs, and every
`command:` of the drip services run as written (the image's `drip` is this venv's, the mounted
working folder a `drip init` folder, the database a new one). There is no Docker engine here:
the file is validated against the Compose Specification's JSON schema (tests/data/README.md), and
with `docker compose config` too where Docker Compose v2 is installed."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dripengine.storage.engine import HEAD_REVISION
from dripengine.testing.sendgrid_standin import SendGridStandIn
from dripengine.testing.sendgrid_webhook import Signer
from dripengine.testing.serve_process import free_port
from tests.deploy_files import (
    DEPLOY,
    REPO,
    dockerfile,
    empty_database,
    fill_placeholders,
    group_gone,
    healthz,
    interpolate,
    read_env_file,
    read_unit,
    seconds,
    start,
    workers,
    working_folder,
)
from tests.waiting import wait_for

COMPOSE = DEPLOY / "compose.yaml"
SCHEMA = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text(encoding="utf-8"))
# what deploy/.env holds on a real host
HOST_ENV = {"POSTGRES_PASSWORD": "a-password-for-the-test", "DRIP_DOMAIN": "drip.acme.example"}
DRIP_SERVICES = ("migrate", "run", "serve")


def compose(env: dict[str, str] = HOST_ENV) -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    result = interpolate(document, env)
    assert isinstance(result, dict)
    return result


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []
    # the schema is strict: a misspelt key or a made-up condition is caught
    broken = compose()
    broken["services"]["run"]["depends_onn"] = broken["services"]["run"].pop("depends_on")
    broken["services"]["serve"]["depends_on"]["migrate"]["condition"] = "service_done"
    errors = schema_errors(broken)
    assert any("depends_onn" in e for e in errors), errors
    assert any("service_done" in e for e in errors), errors


def test_compose_refuses_to_start_without_the_database_password() -> None:
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        compose({"DRIP_DOMAIN": "drip.acme.example"})


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_compose_config_accepts_it(tmp_path: Path) -> None:
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if version.returncode != 0:
        pytest.skip("Docker Compose v2 (`docker compose`) is not installed")
    shutil.copy(DEPLOY / "drip.env.example", tmp_path / "drip.env")
    for name in ("compose.yaml", "Caddyfile", "Dockerfile"):
        shutil.copy(DEPLOY / name, tmp_path / name)
    result = subprocess.run(
        ["docker", "compose", "-f", str(tmp_path / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **HOST_ENV},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_starts_nothing_before_the_schema_and_stops_gracefully() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("run", "serve"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    # `--scale run=N`: no fixed name, no published port
    assert "container_name" not in services["run"] and "ports" not in services["run"]
    assert services["run"]["healthcheck"] == {"disable": True}
    # the daemon gets as long to finish its batch as systemd gives it
    unit = read_unit(DEPLOY / "systemd" / "drip-run@.service")
    assert seconds(services["run"]["stop_grace_period"]) == seconds(
        unit["Service"]["TimeoutStopSec"][0]
    )
    # only Caddy is published; `serve` believes X-Forwarded-For from the edge network only
    assert "ports" not in services["serve"]
    assert services["caddy"]["networks"] == ["edge"]
    subnet = compose()["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert services["serve"]["environment"]["FORWARDED_ALLOW_IPS"] == subnet
    caddyfile = services["caddy"]["volumes"][0].split(":")[0]
    assert (DEPLOY / caddyfile).is_file()


def test_the_image_is_built_from_the_repository_as_a_non_root_user() -> None:
    instructions = dockerfile(DEPLOY / "Dockerfile")
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    copied = [
        source
        for word, args in instructions
        if word == "COPY" and "--from" not in args
        for source in shlex.split(args)[:-1]
    ]
    # what `pip install .` reads: pyproject.toml, the readme it names, the package
    assert set(copied) == {"pyproject.toml", "README.md", "dripengine"}
    for source in copied:
        assert (REPO / source).exists(), source
        assert f"!{source}" in ignore or f"!{source}/" in ignore, f"{source} is not in the context"
    assert ("USER", "drip") in instructions
    assert ("ENTRYPOINT", '["drip"]') in instructions
    built = compose()["services"]
    for name in DRIP_SERVICES:
        assert built[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def image_env() -> dict[str, str]:
    """The image's ENV, its /opt/dripengine being this venv."""
    env: dict[str, str] = {}
    for word, args in dockerfile(DEPLOY / "Dockerfile"):
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    bin_dir = str(Path(sys.executable).parent)  # the venv's bin: drip and python
    env["PATH"] = (
        env["PATH"].replace("/opt/dripengine/bin", bin_dir).replace("$PATH", "/usr/bin:/bin")
    )
    return env


def healthcheck_command() -> list[str]:
    for word, args in dockerfile(DEPLOY / "Dockerfile"):
        if word == "HEALTHCHECK":
            command = json.loads(args.partition("CMD")[2])
            assert isinstance(command, list)
            return [str(part) for part in command]
    raise AssertionError("the Dockerfile has no HEALTHCHECK")


@pytest.mark.slow
def test_the_compose_commands_run_as_written(tmp_path: Path) -> None:
    """migrate builds the schema and exits 0; two `run` replicas and `serve --workers 2` start,
    serve passes the image's and the compose file's health checks, and each stops on SIGTERM
    (Docker's stop) with exit 0 within its stop_grace_period."""
    folder = working_folder(tmp_path / "srv-dripengine")  # the read-only mount
    services = compose()["services"]
    secrets_file = read_env_file((DEPLOY / "drip.env.example").read_text(encoding="utf-8"))
    port = free_port()
    with empty_database(tmp_path) as url, SendGridStandIn() as sendgrid:
        filled = fill_placeholders(
            secrets_file,
            {
                "SENDGRID_API_KEY": sendgrid.api_key,
                "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": Signer.generate().public_key,
            },
        )

        def env_of(name: str) -> dict[str, str]:
            env = {**image_env(), **filled, **services[name].get("environment", {})}
            # the test's: its database, loopback, a free port, the SendGrid stand-in
            return env | {
                "DRIP_DATABASE_URL": url,
                "DRIP_WEB_HOST": "127.0.0.1",
                "DRIP_WEB_PORT": str(port),
                "DRIP_SENDGRID_HOST": sendgrid.url,
            }

        def argv(name: str) -> list[str]:
            drip = shutil.which("drip", path=env_of(name)["PATH"])
            assert drip is not None
            return [drip, *services[name]["command"]]

        migrate = subprocess.run(
            argv("migrate"), cwd=folder, env=env_of("migrate"), capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stderr
        assert f"upgraded from empty to {HEAD_REVISION}" in migrate.stdout

        runs = [start(f"run-{i}", argv("run"), env_of("run"), folder, tmp_path) for i in (1, 2)]
        serve = start("serve", argv("serve"), env_of("serve"), folder, tmp_path)
        try:
            assert services["serve"]["command"][1:] == ["--workers", "2"]
            wait_for(lambda: healthz(port) or not serve.alive(), 60, "serve's /healthz")
            assert serve.alive(), serve.output()
            for check in (healthcheck_command(), services["serve"]["healthcheck"]["test"][1:]):
                python = shutil.which("python", path=image_env()["PATH"])
                probe = [python or "python", *check[1:]]
                result = subprocess.run(
                    probe, env=env_of("serve"), capture_output=True, check=False
                )
                assert result.returncode == 0, result.stderr
            wait_for(lambda: len(workers(url)) == 2, 60, "two `drip run` workers alive")
            assert all(run.alive() for run in runs), [run.output() for run in runs]

            for run in runs:
                code, _ = run.stop(seconds(services["run"]["stop_grace_period"]))
                assert code == 0, run.output()
                assert "stopped: 0 sent, 0 failed" in run.output()
            assert [stopped for _id, stopped in workers(url)] == [True, True]
            code, _ = serve.stop(seconds(services["serve"]["stop_grace_period"]))
            assert code == 0, serve.output()
            assert wait_for(lambda: group_gone(serve.process.pid), 10, "serve's workers to exit")
            # the image's health check fails once serve is gone: Docker would see it unhealthy
            probe = [shutil.which("python", path=image_env()["PATH"]) or "python"]
            result = subprocess.run(
                [*probe, *healthcheck_command()[1:]], env=env_of("serve"), capture_output=True
            )
            assert result.returncode != 0
        finally:
            for running in (*runs, serve):
                running.kill()
