"""OCP resources obpilot does not manage answer 501 with the reason in OCP's envelope, so a
client never reads them as gone; the arbitration list stays a 404 ("not supported")."""

from __future__ import annotations

import httpx

from obpilot.system.unserved import ARBITRATION, OBPROXY, TENANTS, UNSERVED
from tests.conftest import UserClientFactory

CALLS = [
    ("POST", "/api/v2/ob/clusters/1/tenants/createTenant", TENANTS),
    ("POST", "/api/v2/ob/clusters/1/tenants", TENANTS),
    ("GET", "/api/v2/ob/clusters/1/tenants", TENANTS),
    ("GET", "/api/v2/ob/clusters/1/tenants/1001", TENANTS),
    ("DELETE", "/api/v2/ob/clusters/1/tenants/1001", TENANTS),
    ("GET", "/api/v2/ob/cluster/1/tenants/1001", TENANTS),
    ("GET", "/api/v2/ob/tenants", TENANTS),
    ("POST", "/api/v2/obproxy/clusters", OBPROXY),
    ("GET", "/api/v2/obproxy/clusters/11", OBPROXY),
    ("DELETE", "/api/v2/obproxy/clusters/11", OBPROXY),
    ("POST", "/api/v2/arbitration/services", ARBITRATION),
    ("GET", "/api/v2/arbitration/services/5", ARBITRATION),
    ("DELETE", "/api/v2/arbitration/services/5/delete", ARBITRATION),
]


def test_every_unserved_path_is_called_here() -> None:
    assert len(CALLS) == len(UNSERVED)
    assert {(method, why) for method, _, why in CALLS} == {(m, w) for m, _, w in UNSERVED}


async def test_each_answers_501_with_its_reason(client_as: UserClientFactory) -> None:
    """Whoever asks, whatever the body: a read-only user gets the same answer."""
    viewer = await client_as("CLUSTER_VIEWER")
    for method, url, why in CALLS:
        body = {"name": "t1", "mode": "MYSQL"} if method == "POST" else None
        response = await viewer.request(method, url, json=body)
        assert response.status_code == 501, (method, url, response.text)
        envelope = response.json()
        assert envelope["successful"] is False
        assert envelope["status"] == 501
        assert envelope["error"]["code"] == "COM10501"
        assert envelope["error"]["message"] == why
    assert TENANTS.startswith("obpilot does not manage tenants: seekdb servers are single-tenant")


async def test_the_arbitration_list_stays_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2/arbitration/services")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "COM10002"


async def test_anonymous_callers_get_401_not_the_reason(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v2/obproxy/clusters", json={}, auth=None)
    assert response.status_code == 401
