"""`obpilot serve` as a real process answers on each of the four metadbs."""

from __future__ import annotations

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
