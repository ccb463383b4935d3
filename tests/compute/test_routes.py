"""The compute catalog over HTTP, in OCP's shapes: regions, IDCs and host types created,
listed a page at a time, read and deleted; refusals in the error envelope that change
nothing; hosts that show and filter by their IDC."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import UserClientFactory

REGIONS = "/api/v2/compute/regions"
IDCS = "/api/v2/compute/idcs"
HOST_TYPES = "/api/v2/compute/hostTypes"
HOSTS = "/api/v2/compute/hosts"


async def create(client: httpx.AsyncClient, url: str, **body: object) -> dict[str, Any]:
    response = await client.post(url, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_regions_idcs_and_host_types_in_ocp_s_shapes(any_client: httpx.AsyncClient) -> None:
    region = await create(any_client, REGIONS, name="east", description="the east")
    assert set(region) == {"id", "name", "description", "createTime", "updateTime"}
    idc = await create(any_client, IDCS, name="dc1", regionId=region["id"])
    assert (idc["regionId"], idc["regionName"], idc["description"]) == (region["id"], "east", None)
    host_type = await create(any_client, HOST_TYPES, name="x86")
    for url, entry in ((REGIONS, region), (IDCS, idc), (HOST_TYPES, host_type)):
        one = await any_client.get(f"{url}/{entry['id']}")
        assert one.json()["data"] == entry
        listed = (await any_client.get(url)).json()["data"]
        assert listed["contents"] == [entry]
        assert listed["page"]["totalElements"] == 1
    await create(any_client, REGIONS, name="west")
    page = (await any_client.get(REGIONS, params={"sort": "name,desc", "size": 1})).json()["data"]
    assert [r["name"] for r in page["contents"]] == ["west"]
    assert page["page"]["totalPages"] == 2


async def test_refusals_change_nothing(client: httpx.AsyncClient) -> None:
    region = await create(client, REGIONS, name="east")
    duplicate = await client.post(REGIONS, json={"name": "east"})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "COM10006"
    unknown_region = await client.post(IDCS, json={"name": "dc1", "regionId": 424242})
    assert unknown_region.status_code == 404
    assert unknown_region.json()["error"]["message"] == "Region <424242> does not exist"
    assert (await client.get(f"{HOST_TYPES}/7")).status_code == 404
    assert (await client.get(f"{IDCS}/1.0")).status_code == 400
    assert (await client.post(HOST_TYPES, json={"name": ""})).status_code == 400
    await create(client, IDCS, name="dc1", regionId=region["id"])
    in_use = await client.delete(f"{REGIONS}/{region['id']}")
    assert in_use.status_code == 409
    assert in_use.json()["error"]["message"] == (
        "Region east has IDC(s) dc1; delete or move those first"
    )
    assert (await client.get(IDCS)).json()["data"]["page"]["totalElements"] == 1
    assert (await client.get(f"{REGIONS}/{region['id']}")).status_code == 200


async def test_hosts_show_and_filter_by_their_place_and_a_used_place_stays(
    client: httpx.AsyncClient,
) -> None:
    region = await create(client, REGIONS, name="east")
    idc = await create(client, IDCS, name="dc1", regionId=region["id"])
    other_idc = await create(client, IDCS, name="dc2", regionId=region["id"])
    host_type = await create(client, HOST_TYPES, name="x86")
    unknown = await client.post(
        HOSTS,
        json={"innerIpAddress": "127.0.0.1", "kind": "LOCAL", "idcId": 999, "typeId": 1},
    )
    assert unknown.status_code == 404
    assert (await client.get(HOSTS)).json()["data"]["contents"] == []
    host = await create(
        client,
        HOSTS,
        name="local",
        alias="me",
        innerIpAddress="127.0.0.1",
        kind="LOCAL",
        idcId=idc["id"],
        typeId=host_type["id"],
    )
    assert {key: host[key] for key in ("idcName", "regionId", "regionName", "typeName")} == {
        "idcName": "dc1",
        "regionId": region["id"],
        "regionName": "east",
        "typeName": "x86",
    }
    assert (host["alias"], host["operatingSystem"], host["architecture"]) == ("me", None, None)
    assert (await client.get(f"{HOSTS}/{host['id']}")).json()["data"] == host
    in_dc1 = await client.get(HOSTS, params={"idcId": idc["id"]})
    assert [h["id"] for h in in_dc1.json()["data"]["contents"]] == [host["id"]]
    in_dc2 = await client.get(HOSTS, params={"idcId": other_idc["id"], "status": "AVAILABLE"})
    assert in_dc2.json()["data"]["contents"] == []
    for url, entry_id in ((IDCS, idc["id"]), (HOST_TYPES, host_type["id"])):
        refused = await client.delete(f"{url}/{entry_id}")
        assert refused.status_code == 409
        assert "host(s) local" in refused.json()["error"]["message"]
    assert (await client.delete(f"{HOSTS}/{host['id']}")).status_code == 200
    assert (await client.delete(f"{IDCS}/{idc['id']}")).status_code == 200
    assert (await client.get(f"{IDCS}/{idc['id']}")).status_code == 404


async def test_viewers_read_the_catalog_and_managers_change_it(
    client_as: UserClientFactory,
) -> None:
    viewer = await client_as("HOST_VIEWER")
    manager = await client_as("HOST_MANAGER")
    assert (await viewer.get(REGIONS)).status_code == 200
    assert (await viewer.post(REGIONS, json={"name": "east"})).status_code == 403
    region = await create(manager, REGIONS, name="east")
    assert (await viewer.delete(f"{REGIONS}/{region['id']}")).status_code == 403
    assert (await manager.delete(f"{REGIONS}/{region['id']}")).status_code == 200
