"""`obpilot serve` as a real process answers on each of the four metadbs; `obpilot db`
says clearly when it cannot reach one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.server import ADMIN_PASSWORD, ServerProcess


def test_serve_answers_clusters_on_each_metadb(
    dialect: str, metadb_urls: Callable[[str], str], tmp_path: Path
) -> None:
    url = metadb_urls(dialect)
    with ServerProcess(tmp_path / "home", metadb_url=url) as server:
        response = httpx.get(
            server.base_url + "/api/v2/ob/clusters", auth=("admin", ADMIN_PASSWORD), timeout=10
        )
        info = httpx.get(server.base_url + "/api/v2/info", timeout=10).json()
    body = response.json()
    assert response.status_code == 200, body
    assert body["successful"] is True
    assert body["server"] == f"127.0.0.1:{server.port}"
    assert body["data"]["page"]["number"] == 1
    assert info["data"]["metadbDialect"] == (
        "mysql" if dialect in ("mariadb", "seekdb") else dialect
    )


def test_default_metadb_is_sqlite_in_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ServerProcess(home) as server:
        info = httpx.get(server.base_url + "/api/v2/info", timeout=10).json()
    assert info["data"]["metadbDialect"] == "sqlite"
    assert (home / "obpilot.db").exists()


def obpilot_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed `obpilot` command, as a user runs it (no PYTHONWARNINGS of the test's)."""
    environment = {k: v for k, v in env.items() if k != "PYTHONWARNINGS"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "obpilot"), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_help_prints_nothing_on_stderr() -> None:
    """No warning of a dependency's (asyncssh's import warns of DSA with cryptography 51)."""
    done = obpilot_command("--help", env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "Usage: obpilot" in done.stdout
    assert done.stderr == ""


def test_db_current_names_a_metadb_it_cannot_open(tmp_path: Path) -> None:
    """One clear line of obpilot's own and exit 1, not a traceback nor any warning; the
    URL's password is never shown."""
    environment = {
        **os.environ,
        "OBPILOT_HOME": str(tmp_path / "missing" / "home"),
        "OBPILOT_METADB_URL": "postgresql+psycopg://obpilot:s3cret@127.0.0.1:1/none",
    }
    done = obpilot_command("db", "current", env=environment)
    assert done.returncode == 1, done.stderr
    # obpilot's line, which ends with the driver's own (here two-line) reason.
    assert done.stderr.startswith(
        "cannot read the metadb postgresql+psycopg://obpilot:***@127.0.0.1:1/none: "
    )
    assert "Warning" not in done.stderr
    assert "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
