"""One running obpilot for the lifecycle tests, with the local host and the real
pylibseekdb wheel registered."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.lifecycle import stop_leftover_servers
from tests.support.server import ADMIN_PASSWORD, ServerProcess
from tests.support.wheels import locked_wheel


@pytest.fixture(scope="package")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, int, str]]:
    """A running obpilot with the local host and the wheel registered: (client, host id,
    the wheel's file name)."""
    seekdb_wheel = locked_wheel()
    with ServerProcess(tmp_path_factory.mktemp("lifecycle")) as server:
        client = httpx.Client(base_url=server.base_url, auth=("admin", ADMIN_PASSWORD), timeout=120)
        host = client.post(
            "/api/v2/compute/hosts", json={"innerIpAddress": "127.0.0.1", "kind": "LOCAL"}
        ).json()["data"]
        with seekdb_wheel.open("rb") as file:
            answer = client.post(
                "/api/v2/software-packages", files={"file": (seekdb_wheel.name, file)}
            )
        assert answer.status_code == 200, answer.text
        try:
            yield client, host["id"], seekdb_wheel.name
        finally:
            stop_leftover_servers(client)
            client.close()
