"""One running obpilot for the lifecycle tests, with the local host and the real
pylibseekdb wheel registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.support.lifecycle import stop_leftover_servers
from tests.support.server import ADMIN_PASSWORD, ServerProcess

WHEELS = Path(__file__).resolve().parents[2] / ".cache" / "wheels"


@pytest.fixture(scope="package")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, int, str]]:
    """A running obpilot with the local host and the wheel registered: (client, host id,
    the wheel's file name)."""
    wheels = sorted(WHEELS.glob("pylibseekdb-*.whl"))
    if not wheels:
        if IN_CI:
            pytest.fail(f"no pylibseekdb wheel in {WHEELS}")
        pytest.skip(f"no pylibseekdb wheel in {WHEELS} (make install)")
    with ServerProcess(tmp_path_factory.mktemp("lifecycle")) as server:
        client = httpx.Client(base_url=server.base_url, auth=("admin", ADMIN_PASSWORD), timeout=120)
        host = client.post(
            "/api/v2/compute/hosts", json={"innerIpAddress": "127.0.0.1", "kind": "LOCAL"}
        ).json()["data"]
        with wheels[-1].open("rb") as file:
            answer = client.post(
                "/api/v2/software-packages", files={"file": (wheels[-1].name, file)}
            )
        assert answer.status_code == 200, answer.text
        try:
            yield client, host["id"], wheels[-1].name
        finally:
            stop_leftover_servers(client)
            client.close()
