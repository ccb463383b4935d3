"""Finding 2: an id in a path is read strictly, and the permission is checked on the same
integer the route acts on. Before, a user with rights on cluster 2 only stopped cluster 1
by spelling its id `1.0`, `+1`, ` 1`, `0_1` or `0001`."""

from __future__ import annotations

import httpx
import pytest

from obpilot.db.engine import Database
from obpilot.engine import repository as repo
from obpilot.inventory.models import Cluster
from tests.conftest import UserClientFactory
from tests.support.inventory import add_cluster, add_local_host


def spellings(n: int) -> list[str]:
    """Texts that a lenient parser reads as `n`."""
    return [f"{n}.0", f"+{n}", f"%20{n}", f"0_{n}", f"000000000000{n}", f"{n}%20", f"{n}e0"]


@pytest.fixture
async def two_clusters(database: Database) -> tuple[Cluster, Cluster]:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        target = await add_cluster(session, host, name="target", zones=1)
        other = await add_cluster(session, host, name="other", zones=1, first_port=31000)
    return target, other


async def _state(database: Database, cluster_id: int) -> tuple[object, ...]:
    async with database.transaction() as session:
        cluster = await session.get(Cluster, cluster_id)
        assert cluster is not None
        _, total = await repo.page_tasks(session, repo.TaskFilter(), offset=0, limit=10, sort=[])
        return cluster.status, cluster.update_time, total


async def test_other_spellings_of_a_cluster_id_are_refused_before_any_permission(
    client: httpx.AsyncClient,
    database: Database,
    client_as: UserClientFactory,
    two_clusters: tuple[Cluster, Cluster],
) -> None:
    target, other = two_clusters
    role = await client.post(
        "/api/v2/iam/roles",
        json={
            "name": "OTHER_ONLY",
            "permissions": [
                f"CLUSTER:{other.id}:{action}" for action in ("READ", "UPDATE", "DELETE")
            ],
        },
    )
    assert role.status_code == 200, role.text
    attacker = await client_as("OTHER_ONLY")
    before = await _state(database, target.id)
    server_id = 1
    for text in spellings(target.id):
        for method, path in (
            ("GET", f"/api/v2/ob/clusters/{text}"),
            ("GET", f"/api/v2/ob/clusters/{text}/zones"),
            ("GET", f"/api/v2/ob/clusters/{text}/servers"),
            ("GET", f"/api/v2/ob/clusters/{text}/zones/zone1/servers"),
            ("POST", f"/api/v2/ob/clusters/{text}/stop"),
            ("POST", f"/api/v2/ob/clusters/{text}/restart"),
            ("POST", f"/api/v2/ob/clusters/{text}/zones/zone1/stop"),
            ("POST", f"/api/v2/ob/clusters/{text}/servers/{server_id}/stop"),
            ("DELETE", f"/api/v2/ob/clusters/{text}?keepProcesses=true"),
        ):
            for caller in (attacker, client):
                response = await caller.request(method, path)
                body = response.json()
                assert (response.status_code, body["error"]["code"]) == (400, "COM10001"), (
                    method,
                    path,
                    body,
                )
    assert await _state(database, target.id) == before
    # The plain spelling is still judged on the cluster it names.
    refused = await attacker.post(f"/api/v2/ob/clusters/{target.id}/stop")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "OBE11065")
    allowed = await attacker.get(f"/api/v2/ob/clusters/{other.id}")
    assert allowed.status_code == 200
    assert allowed.json()["data"]["id"] == other.id


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/compute/hosts/{}",
        "/api/v2/profiles/me/credentials/{}",
        "/api/v2/tasks/instances/{}",
        "/api/v2/tasks/instances/1/subtasks/{}",
        "/api/v2/iam/users/{}",
        "/api/v2/iam/roles/{}",
        "/api/v2/ob/clusters/1/servers/{}/stop",
    ],
)
async def test_every_id_in_a_path_is_strict(client: httpx.AsyncClient, path: str) -> None:
    method = "POST" if path.endswith("/stop") else "GET"
    for text in [*spellings(1), "0", "-1", "9223372036854775808", "abc", "1 "]:
        response = await client.request(method, path.format(text))
        body = response.json()
        assert (response.status_code, body["error"]["code"]) == (400, "COM10001"), (text, body)
    largest = await client.request(method, path.format(9223372036854775807))
    assert largest.status_code != 400, largest.json()  # the largest id is an id
