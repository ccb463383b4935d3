"""Every response, success or error, is the OCP envelope; every bad input gets its status
and code and changes nothing."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from obpilot.db.engine import Database
from tests.support.inventory import add_cluster, add_local_host

ENVELOPE_KEYS = {"successful", "timestamp", "duration", "status", "traceId", "server"}


def assert_envelope(response: httpx.Response, status: int) -> dict[str, object]:
    body = response.json()
    assert response.status_code == status, body
    assert body.keys() >= ENVELOPE_KEYS
    assert body["status"] == status
    assert body["successful"] is (status < 400)
    assert re.fullmatch(r"[0-9a-f]{16}", body["traceId"])
    assert response.headers["x-trace-id"] == body["traceId"]
    assert body["server"] == "test-node:8080"
    stamp = datetime.fromisoformat(body["timestamp"])
    assert stamp.utcoffset() is not None
    assert re.search(r"\.\d{3}[+-]\d\d:\d\d$", body["timestamp"])
    assert isinstance(body["duration"], int)
    return dict(body)


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    body = assert_envelope(response, status)
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
    assert "Traceback" not in error["message"]
    return str(error["message"])


@pytest.fixture
async def cluster_id(database: Database) -> int:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        return (await add_cluster(session, host, zones=2)).id


class TestSuccess:
    async def test_paged_list(self, client: httpx.AsyncClient, cluster_id: int) -> None:
        body = assert_envelope(await client.get("/api/v2/ob/clusters"), 200)
        data = body["data"]
        assert isinstance(data, dict)
        assert data["page"] == {"totalElements": 1, "totalPages": 1, "number": 1, "size": 20}
        cluster = data["contents"][0]
        assert cluster["id"] == cluster_id
        assert cluster["obClusterId"] == 100
        assert cluster["status"] == "RUNNING"
        assert [zone["name"] for zone in cluster["zones"]] == ["zone1", "zone2"]

    async def test_contents_list(self, client: httpx.AsyncClient, cluster_id: int) -> None:
        body = assert_envelope(await client.get(f"/api/v2/ob/clusters/{cluster_id}/servers"), 200)
        data = body["data"]
        assert isinstance(data, dict)
        assert set(data) == {"contents"}
        assert [s["zoneName"] for s in data["contents"]] == ["zone1", "zone2"]
        assert {"id", "ip", "port", "sqlPort", "status", "hostId", "clusterId"} <= set(
            data["contents"][0]
        )

    async def test_zone_servers(self, client: httpx.AsyncClient, cluster_id: int) -> None:
        url = f"/api/v2/ob/clusters/{cluster_id}/zones/zone2/servers"
        body = assert_envelope(await client.get(url), 200)
        data = body["data"]
        assert isinstance(data, dict)
        assert [s["zoneName"] for s in data["contents"]] == ["zone2"]

    async def test_info_names_dialect_and_address(self, client: httpx.AsyncClient) -> None:
        body = assert_envelope(await client.get("/api/v2/info"), 200)
        assert body["data"] == {
            "name": "obpilot",
            "version": body["data"]["version"],  # type: ignore[index]
            "metadbDialect": "sqlite",
            "address": "test-node:8080",
        }


class TestBadInput:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/v2/ob/clusters/0",
            "/api/v2/ob/clusters/-1",
            "/api/v2/ob/clusters/9223372036854775808",
            "/api/v2/ob/clusters/abc",
            "/api/v2/ob/clusters/1.5",
            "/api/v2/compute/hosts/0",
            "/api/v2/ob/clusters?page=0",
            "/api/v2/ob/clusters?page=x",
            "/api/v2/ob/clusters?size=0",
            "/api/v2/ob/clusters?size=2001",
            "/api/v2/ob/clusters?sort=name,sideways",
            "/api/v2/ob/clusters?status=NOT_A_STATUS",
        ],
    )
    async def test_bad_parameter_is_400(self, client: httpx.AsyncClient, path: str) -> None:
        assert_error(await client.get(path), 400, "COM10001")

    async def test_sort_field_outside_allow_list(self, client: httpx.AsyncClient) -> None:
        message = assert_error(
            await client.get("/api/v2/ob/clusters?sort=password,asc"), 400, "COM10011"
        )
        assert "password" in message

    async def test_largest_id_is_a_valid_id(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/api/v2/ob/clusters/9223372036854775807"), 404, "OBE11001")

    @pytest.mark.parametrize(
        ("path", "code"),
        [
            ("/api/v2/ob/clusters/424242", "OBE11001"),
            ("/api/v2/ob/clusters/424242/zones", "OBE11001"),
            ("/api/v2/ob/clusters/424242/servers", "OBE11001"),
            ("/api/v2/compute/hosts/424242", "CMP07005"),
        ],
    )
    async def test_unknown_resource(self, client: httpx.AsyncClient, path: str, code: str) -> None:
        assert_error(await client.get(path), 404, code)

    async def test_unknown_zone(self, client: httpx.AsyncClient, cluster_id: int) -> None:
        url = f"/api/v2/ob/clusters/{cluster_id}/zones/nozone/servers"
        assert_error(await client.get(url), 404, "OBE18002")

    async def test_unknown_route(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/api/v2/no/such/thing"), 404, "COM10002")
        # GET / is the web console now (obpilot.web); a write there is still an unknown route.
        assert_error(await client.post("/"), 404, "COM10002")

    async def test_wrong_method(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.put("/api/v2/ob/clusters", json={}), 405, "COM10008")

    async def test_malformed_json_changes_nothing(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v2/compute/hosts",
            content=b'{"innerIpAddress": ',
            headers={"content-type": "application/json"},
        )
        assert "not valid JSON" in assert_error(response, 400, "COM10001")
        await self._assert_no_hosts(client)

    async def test_wrong_types(self, client: httpx.AsyncClient) -> None:
        body = {"innerIpAddress": "10.0.0.1", "sshPort": "twenty-two"}
        message = assert_error(
            await client.post("/api/v2/compute/hosts", json=body), 400, "COM10001"
        )
        assert "sshPort" in message
        body = {"innerIpAddress": "not-an-ip"}
        assert_error(await client.post("/api/v2/compute/hosts", json=body), 400, "COM10001")
        await self._assert_no_hosts(client)

    async def test_unsupported_media_type(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v2/compute/hosts",
            content=b"innerIpAddress=10.0.0.1",
            headers={"content-type": "text/plain"},
        )
        assert_error(response, 415, "COM10003")
        await self._assert_no_hosts(client)

    async def test_conflict(self, client: httpx.AsyncClient) -> None:
        # LOCAL: adding any other kind logs in over SSH first.
        body = {"innerIpAddress": "127.0.0.1", "sshPort": 22, "kind": "LOCAL"}
        assert_envelope(await client.post("/api/v2/compute/hosts", json=body), 200)
        assert_error(await client.post("/api/v2/compute/hosts", json=body), 409, "CMP07001")

    @staticmethod
    async def _assert_no_hosts(client: httpx.AsyncClient) -> None:
        body = (await client.get("/api/v2/compute/hosts")).json()
        assert body["data"]["page"]["totalElements"] == 0


class TestUnexpected:
    async def test_500_is_generic_and_names_the_trace(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        database = app.state.database
        original = database.sessionmaker

        def broken() -> object:
            raise RuntimeError("secret internal detail")

        database.sessionmaker = broken
        try:
            response = await client.get("/api/v2/ob/clusters")
        finally:
            database.sessionmaker = original
        message = assert_error(response, 500, "COM10999")
        assert response.json()["traceId"] in message
        assert "secret internal detail" not in response.text
