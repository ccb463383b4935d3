"""Task shapes: an operation's answer reproduces the seed's shape A (OCP's stop-cluster
sample) for one zone and one server, the full task has every documented field, and the
full task and subtask rendered straight to the wire are what their models declare."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import update

from obpilot import engine
from obpilot.db.engine import Database
from obpilot.engine import repository as repo
from obpilot.engine.models import SubtaskInstance
from obpilot.iam.permissions import PermissionSet
from obpilot.tasks import service
from obpilot.tasks.schemas import SubtaskOut, TaskOut
from tests.support.engine_tasks import SEED_STOP, seed_context, submit_task

EVERYTHING = service.TaskAccess(PermissionSet.parse(["**"]))

# The seed's answer (`POST /api/v2/ob/clusters/1/stop`), its `data` minus times.
SEED_DATA: dict[str, Any] = {
    "cluster": {"id": 21, "name": "ob_upgrade", "obClusterId": 22},
    "context": "Context(parallelIdx=-1, stringMap={cluster_name=ob_upgrade, cluster_id=21, "
    "former_cluster_status=RUNNING}, listMap={server_ids=[5], zone_names=[zone1]})",
    "creator": {"id": 100, "name": "admin"},
    "name": "Stop OB cluster",
    "status": "RUNNING",
}
SEED_TASKS: list[dict[str, Any]] = [
    {"id": 128795, "name": "Wait node", "upstreams": [128796], "downstreams": [128802]},
    {"id": 128796, "name": "Prepare stop observer", "upstreams": [128803], "downstreams": [128795]},
    {"id": 128797, "name": "Update OB cluster status", "upstreams": [128805], "downstreams": []},
    {"id": 128798, "name": "Prepare stop OB zone", "upstreams": [128801], "downstreams": [128803]},
    {"id": 128799, "name": "Wait node", "upstreams": [128804], "downstreams": [128805]},
    {"id": 128800, "name": "Wait node", "upstreams": [128802], "downstreams": [128804]},
    {"id": 128801, "name": "Prepare stop cluster", "upstreams": [], "downstreams": [128798]},
    {"id": 128802, "name": "Stop observer process", "upstreams": [128795], "downstreams": [128800]},
    {"id": 128803, "name": "Wait node", "upstreams": [128798], "downstreams": [128796]},
    {
        "id": 128804,
        "name": "Update observer status",
        "upstreams": [128800],
        "downstreams": [128799],
    },
    {"id": 128805, "name": "Update zone status", "upstreams": [128799], "downstreams": [128797]},
]
SEED_KEYS = {"cluster", "context", "creator", "id", "name", "startTime", "status", "tasks"}
SEED_TASK_KEYS = {"description", "downstreams", "id", "name", "operation", "status", "upstreams"}


def chain(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The DAG walked from its root; fails unless it is a single chain."""
    by_id = {task["id"]: task for task in tasks}
    (root,) = [task for task in tasks if not task["upstreams"]]
    walk = [root]
    while walk[-1]["downstreams"]:
        (following,) = walk[-1]["downstreams"]
        assert by_id[following]["upstreams"] == [walk[-1]["id"]]
        walk.append(by_id[following])
    assert len(walk) == len(tasks)
    return walk


async def test_the_answer_of_an_operation_reproduces_the_seed(database: Database) -> None:
    """Built from the DAG as it was written, as the operation's call answers."""
    async with database.transaction(write=True) as session:
        submitted = await engine.submit_task(
            session,
            SEED_STOP,
            seed_context(),
            creator_id=100,
            creator_name="admin",
            cluster_id=21,
            cluster_name="ob_upgrade",
            ob_cluster_id=22,
        )
    task_id = submitted.task.id
    data = service.brief_of(submitted.task, submitted.dag).model_dump(by_alias=True)
    async with database.transaction() as session:
        task = await repo.get_task(session, task_id)
        assert task is not None
        read_back = repo.DagView(
            await repo.subtask_views(session, task_id), await repo.list_edges(session, task_id)
        )
    assert service.brief_of(task, read_back).model_dump(by_alias=True) == data
    assert set(data) == SEED_KEYS
    assert {key: data[key] for key in SEED_DATA} == SEED_DATA
    assert data["id"] == task_id
    assert data["startTime"].endswith("+00:00")
    for subtask in data["tasks"]:
        assert set(subtask) == SEED_TASK_KEYS
        assert subtask["description"] == subtask["name"]
        assert subtask["operation"] == "EXECUTE"
    ours, seed = chain(data["tasks"]), chain(SEED_TASKS)
    assert [t["name"] for t in ours] == [t["name"] for t in seed]
    assert [t["status"] for t in ours] == ["READY"] + ["PENDING"] * 10
    assert sorted(t["id"] for t in data["tasks"]) == [t["id"] for t in data["tasks"]]


TASK_FIELDS = {
    "id",
    "name",
    "clusterId",
    "tenantId",
    "hostId",
    "type",
    "status",
    "creator",
    "operation",
    "executor",
    "context",
    "createTime",
    "startTime",
    "finishTime",
    "prohibitRollback",
    "subtasks",
    "taskDefinitionId",
    "cluster",
    "tenant",
}
SUBTASK_FIELDS = {
    "id",
    "name",
    "seriesId",
    "description",
    "className",
    "timeout",
    "status",
    "operation",
    "executor",
    "runTime",
    "context",
    "createTime",
    "startTime",
    "finishTime",
    "nodeType",
    "parallelIdx",
    "upstreams",
    "downstreams",
    "prohibitRollback",
}


async def test_the_full_task_has_every_documented_field(database: Database) -> None:
    task_id = await submit_task(
        database, SEED_STOP, seed_context(zones=2), cluster_id=21, cluster_name="ob_upgrade"
    )
    async with database.transaction() as session:
        data = await service.get_task(session, task_id=task_id, access=EVERYTHING)
    assert set(data) >= TASK_FIELDS
    assert data["taskDefinitionId"] == -1
    assert data["context"]["stringMap"]["cluster_name"] == "ob_upgrade"
    assert data["context"]["parallelIdx"] == -1
    assert data["creator"] == {"id": 1, "name": "admin"}
    assert len(data["subtasks"]) == 16  # two zones of one server
    for subtask in data["subtasks"]:
        assert set(subtask) >= SUBTASK_FIELDS
    zones = [s for s in data["subtasks"] if s["name"] == "Prepare stop OB zone"]
    assert [z["parallelIdx"] for z in zones] == [0, 1]
    assert [z["seriesId"] for z in zones] == [1, 2]
    assert zones[0]["context"]["parallel"] is True
    assert zones[0]["runTime"] == 1
    assert zones[0]["nodeType"] == "PYTHON_TASK"
    assert zones[0]["className"] == "tests.support.engine_tasks.PrepareStopZone"
    assert zones[0]["timeout"] == 30


async def test_the_wire_renderings_are_the_declared_models_byte_for_byte(
    database: Database,
) -> None:
    """The routes encode these dicts as they are and declare `TaskOut` / `SubtaskOut`: the
    models must take them unchanged, with the same keys in the same order."""
    task_id = await submit_task(
        database, SEED_STOP, seed_context(zones=2), cluster_id=21, cluster_name="ob_upgrade"
    )
    started = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    async with database.transaction(write=True) as session:
        first = (await repo.subtask_views(session, task_id))[0]
        for key, value in (("pid", "4242"), ("ports", ["2881", "2882"])):
            await repo.put_output(
                session,
                task_id=task_id,
                subtask_id=first.id,
                stage=0,
                parallel_idx=-1,
                key=key,
                value=value,
            )
        await session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.id == first.id)
            .values(
                status="FAILED",
                executor="obpilot-1",
                start_time=started,
                finish_time=started,
                error_code="TSK10012",
                error_message="port 2881 still open",
            )
        )
    async with database.transaction() as session:
        task = await service.get_task(session, task_id=task_id, access=EVERYTHING)
        subtask = await service.get_subtask(
            session, task_id=task_id, subtask_id=first.id, access=EVERYTHING
        )
    assert to_json(TaskOut.model_validate(task), by_alias=True) == to_json(task)
    assert to_json(SubtaskOut.model_validate(subtask), by_alias=True) == to_json(subtask)
    assert task["subtasks"][0] == subtask
    assert subtask["context"]["stringMap"] == {"pid": "4242"}
    assert subtask["context"]["listMap"] == {"ports": ["2881", "2882"]}
    assert subtask["startTime"] == "2026-01-02T03:04:05.678+00:00"
    assert subtask["errorCode"] == "TSK10012"
    # Only this subtask has run: the task prohibits a rollback exactly when it does.
    assert task["prohibitRollback"] is subtask["prohibitRollback"]
