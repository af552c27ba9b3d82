"""A real PgBouncer in transaction pooling mode, started for a test on a free loopback port.

The ini file and the auth file are written in the test's folder; PgBouncer runs in the
foreground as a child process (its log in ``pgbouncer.log``) and is stopped with SIGTERM.
PgBouncer refuses to run as root unless told which user to become: as root it is started with
``-u nobody`` (it reads its files before it drops privileges). From PgBouncer 1.21 on,
``max_prepared_statements`` is set to 0 so the mode is the same on every version: no
protocol-level prepared statements, as on the 1.18 Debian 12 ships.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from dripengine.testing.serve_process import free_port

SBIN = "/usr/sbin:/usr/local/sbin"


def binary() -> str | None:
    return shutil.which("pgbouncer", path=f"{os.environ.get('PATH', '')}:{SBIN}")


def version(path: str) -> tuple[int, ...]:
    """``(1, 18, 0)`` from ``pgbouncer --version`` (``PgBouncer 1.18.0``)."""
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"PgBouncer (\d+)\.(\d+)(?:\.(\d+))?", out)
    assert found, f"no version in {out!r}"
    return tuple(int(part or 0) for part in found.groups())


def why_not() -> str | None:
    """Why PgBouncer cannot be started here; None when it can."""
    path = binary()
    if path is None:
        return "pgbouncer is not installed (apt-get install pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            return "running as root and there is no user nobody for pgbouncer -u"
    return None


def _ini(folder: Path, server_url: str, port: int, pool_size: int, extra: str) -> Path:
    server = make_url(server_url)
    user = server.username or "postgres"
    (folder / "users.txt").write_text(f'"{user}" ""\n', encoding="utf-8")
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        f"""[databases]
* = host={server.host or "127.0.0.1"} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
{extra}
""",
        encoding="utf-8",
    )
    return ini


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def pgbouncer(folder: Path, server_url: str, *, pool_size: int = 2) -> Iterator[str]:
    """PgBouncer in front of the server of ``server_url`` with ``pool_size`` server connections a
    database; yields ``server_url`` with PgBouncer's port in place of the server's."""
    path = binary()
    assert path is not None, why_not()
    extra = "max_prepared_statements = 0" if version(path) >= (1, 21) else ""
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    log_path = folder / "pgbouncer.log"
    for _attempt in range(3):  # the free port may be taken between the probe and the bind
        port = free_port()
        ini = _ini(folder, server_url, port, pool_size, extra)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [path, *as_user, str(ini)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while process.poll() is None and not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None and _listening(port):
            break
        process.kill()
        process.wait()
    else:
        raise RuntimeError(f"pgbouncer did not start: {log_path.read_text()[-2000:]}")
    try:
        yield make_url(server_url).set(port=port).render_as_string(hide_password=False)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
