"""Finding 9: on SQLite, ids were reused. A grant on `CLUSTER:2` outlived cluster 2, then
read and stopped the next cluster created with id 2, whose task list also showed the tasks
of the earlier clusters that had had its id. Now no metadb gives an id twice (SQLite's tables
are AUTOINCREMENT), and forgetting a cluster drops the grants that name it."""

from __future__ import annotations

import httpx

from obpilot.db.engine import Database
from obpilot.engine import TaskStatus
from obpilot.iam import service as iam
from obpilot.iam.permissions import PermissionSet
from obpilot.iam.schemas import RoleCreate
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Cluster, Host
from obpilot.paging import PageRequest
from obpilot.tasks import service as tasks
from tests.support.iam import SETUP, USER_PASSWORD, add_user
from tests.support.inventory import add_cluster, add_local_host, add_task

CLUSTERS = "/api/v2/ob/clusters"
PAGE = PageRequest(page=1, size=100, sort=())


async def _kept_and_old(database: Database) -> tuple[Host, Cluster, Cluster]:
    """A host, and two clusters on it: the second, `old`, holds the highest id."""
    async with database.transaction(write=True) as session:
        host = await add_local_host(session)
        kept = await add_cluster(session, host, name="kept", zones=1)
        old = await add_cluster(session, host, name="old", zones=1, first_port=31000)
    return host, kept, old


async def _new(database: Database, host: Host) -> Cluster:
    async with database.transaction(write=True) as session:
        return await add_cluster(session, host, name="new", zones=1, first_port=32000)


async def test_a_forgotten_clusters_id_is_never_given_again(any_database: Database) -> None:
    host, _, old = await _kept_and_old(any_database)
    async with any_database.transaction(write=True) as session:
        await inventory.forget_cluster(session, old.id)  # what every removal path ends with
    assert (await _new(any_database, host)).id > old.id


async def test_forgetting_a_cluster_drops_the_grants_that_name_it(
    any_client: httpx.AsyncClient, any_database: Database
) -> None:
    host, kept, old = await _kept_and_old(any_database)
    others = {
        f"CLUSTER:{kept.id}:READ",
        f"CLUSTER:{old.id}0:READ",  # another cluster's id, which starts with the same digits
        f"CLUSTER:*:TENANT:{old.id}:READ",  # a tenant with that id, in any cluster
        "TASK:*:READ",
    }
    naming_old = {f"CLUSTER:{old.id}:READ", f"CLUSTER:{old.id}:UPDATE"}
    naming_old.add(f"CLUSTER:{old.id}:TENANT:*:READ")
    async with any_database.transaction(write=True) as session:
        role = await iam.create_role(
            session,
            spec=RoleCreate(name="OLD_OPERATOR", permissions=sorted(others | naming_old)),
            actor=SETUP,
        )
    await add_user(any_database, "operator", ["OLD_OPERATOR"])
    operator = ("operator", USER_PASSWORD)
    assert (await any_client.get(f"{CLUSTERS}/{old.id}", auth=operator)).status_code == 200

    forgotten = await any_client.delete(f"{CLUSTERS}/{old.id}", params={"keepProcesses": "true"})
    assert forgotten.status_code == 200, forgotten.text

    async with any_database.transaction() as session:
        assert set((await iam.get_role(session, role_id=role.id)).expressions) == others
    new = await _new(any_database, host)
    for response in (
        await any_client.get(f"{CLUSTERS}/{new.id}", auth=operator),
        await any_client.post(f"{CLUSTERS}/{new.id}/stop", auth=operator),
    ):
        assert response.status_code == 403, response.text


async def test_the_tasks_of_a_forgotten_cluster_are_not_listed_for_the_next(
    any_database: Database,
) -> None:
    host, _, old = await _kept_and_old(any_database)
    async with any_database.transaction(write=True) as session:
        old_tasks = [(await add_task(session, old, TaskStatus.SUCCESSFUL)).id for _ in range(3)]
        await inventory.forget_cluster(session, old.id)
    new = await _new(any_database, host)
    async with any_database.transaction(write=True) as session:
        new_task = (await add_task(session, new, TaskStatus.SUCCESSFUL)).id

    async def listed(permissions: list[str], cluster_id: int | None = None) -> list[int]:
        access = tasks.TaskAccess(PermissionSet.parse(permissions))
        async with any_database.transaction() as session:
            items, _ = await tasks.list_tasks(
                session, page=PAGE, access=access, cluster_id=cluster_id
            )
        return sorted(item.id for item in items)

    assert await listed(["TASK:*:READ", "CLUSTER:*:READ"], cluster_id=new.id) == [new_task]
    assert await listed(["TASK:*:READ", f"CLUSTER:{new.id}:READ"]) == [new_task]
    # The task center keeps the forgotten cluster's history for those who read every cluster.
    assert await listed(["TASK:*:READ", "CLUSTER:*:READ"], cluster_id=old.id) == old_tasks
