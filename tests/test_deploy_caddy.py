"""deploy/Caddyfile as written, in front of a real `drip serve`: HTTPS, the requests passed on,
/metrics kept off the internet. `localhost` as the domain makes Caddy use its own local CA (no
ACME, no network); CADDY_OPTIONS binds it to loopback on free ports, keeps its CA out of the
system's trust store and turns its admin endpoint off. Skipped where Caddy is not installed
(Debian: `apt-get install caddy`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import urllib3

from dripengine.testing.serve_process import ServeProcess, free_port
from tests.deploy_files import DEPLOY, start, working_folder
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(shutil.which("caddy") is None, reason="Caddy is not installed")


def test_caddyfile_adapts_with_the_documented_environment() -> None:
    env = {"PATH": "/usr/bin:/bin", "DRIP_DOMAIN": "drip.acme.example", "HOME": "/nonexistent"}
    result = subprocess.run(
        ["caddy", "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # the defaults name the compose service; the domain is the site
    assert '"name":"serve","port":"8080"' in result.stdout
    assert '"host":["drip.acme.example"]' in result.stdout


@pytest.mark.slow
def test_caddy_terminates_tls_in_front_of_drip_serve(tmp_path: Path) -> None:
    folder = working_folder(tmp_path / "srv-dripengine")
    https_port, http_port = free_port(), free_port()
    with ServeProcess(folder, clean_env=True) as serve:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "DRIP_DOMAIN": "localhost",
            "DRIP_UPSTREAM_HOST": "127.0.0.1",
            "DRIP_UPSTREAM_PORT": str(serve.port),
            "CADDY_OPTIONS": "\n".join(
                (
                    f"http_port {http_port}",
                    f"https_port {https_port}",
                    "default_bind 127.0.0.1",
                    "skip_install_trust",
                    "admin off",
                )
            ),
        }
        argv = ["caddy", "run", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"]
        caddy = start("caddy", argv, env, tmp_path, tmp_path)
        root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        try:
            wait_for(lambda: root.is_file() or not caddy.alive(), 60, "Caddy's local CA")
            assert caddy.alive(), caddy.output()
            pool = urllib3.HTTPSConnectionPool(
                "127.0.0.1",
                https_port,
                server_hostname="localhost",
                assert_hostname="localhost",
                ca_certs=str(root),
                retries=False,
                timeout=5.0,
            )

            def get(path: str) -> urllib3.BaseHTTPResponse | None:
                try:
                    return pool.request("GET", path, headers={"Host": "localhost"})
                except urllib3.exceptions.HTTPError:
                    return None  # the certificate is still being issued

            response = wait_for(lambda: get("/healthz"), 60, "/healthz through Caddy")
            assert response.status == 200 and response.json()["status"] == "ok"
            metrics = get("/metrics")
            assert metrics is not None and metrics.status == 404
            assert "GET /metrics" not in serve.log()  # refused at the edge, never passed on
            code, _ = caddy.stop(30)
            assert code == 0, caddy.output()
        finally:
            caddy.kill()
