"""Finding 11: a parameter name or value ending in a newline passed the checks (`re.match`
with `$` allows one before the end), so `memory_budget\\n=64G` skipped the memory rules and
`datafile_size=0\\n` the size rules. Every name and value must match whole."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from obpilot.db.engine import Database
from obpilot.errors import InvalidServerParameter
from obpilot.hosts.drivers import observer, seekdb
from obpilot.inventory.models import Cluster
from tests.security.test_secret_parameters import take_over_request
from tests.support.inventory import add_local_host

TRAILING_NEWLINES = [
    {"memory_budget\n": "64G"},
    {"datafile_size": "0\n"},
    {"memory_budget": "1G\n"},
    {"log_disk_size\n": "1M"},
]


@pytest.mark.parametrize("parameters", TRAILING_NEWLINES)
def test_seekdb_refuses_a_trailing_newline(parameters: dict[str, str]) -> None:
    with pytest.raises(InvalidServerParameter):
        seekdb.check_parameters(parameters)


@pytest.mark.parametrize("parameters", [{"cpu_count\n": "4"}, {"cpu_count": "4\n"}])
def test_observer_refuses_a_trailing_newline(parameters: dict[str, str]) -> None:
    with pytest.raises(InvalidServerParameter):
        observer.check_parameters(parameters)


@pytest.mark.parametrize("parameters", TRAILING_NEWLINES)
async def test_take_over_refuses_it_and_writes_nothing(
    client: httpx.AsyncClient, database: Database, parameters: dict[str, str]
) -> None:
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
    response = await client.post(
        "/api/v2/ob/clusters/takeOver", json=take_over_request(host.id, parameters)
    )
    assert response.status_code == 400, response.text
    async with database.transaction() as session:
        assert (await session.scalars(select(Cluster))).all() == []
