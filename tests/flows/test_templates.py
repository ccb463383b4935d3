"""The operation templates: their chains of steps, the named hand-offs between steps that
each template declares and checks, and the release of the cluster lock at their end."""

from __future__ import annotations

import pytest

from obpilot.db.engine import Database
from obpilot.engine import Catalog, Context, Subtask, Template, parallel, single
from obpilot.flows import TEMPLATES, steps, templates
from obpilot.flows.steps import STARTED_BY_TASK, STOPPED_BY_TASK, VERIFIED_STATUS
from obpilot.flows.takeover import TAKE_OVER_CLUSTER
from obpilot.inventory.models import Cluster
from tests.support.engine_tasks import SEED_STOP_NAMES
from tests.support.inventory import add_cluster, add_local_host, add_task

OPERATIONS = [
    templates.STOP_CLUSTER,
    templates.START_CLUSTER,
    templates.RESTART_CLUSTER_AT_ONCE,
    templates.rolling_restart(3),
    templates.STOP_ZONE,
    templates.START_ZONE,
    templates.RESTART_ZONE,
    templates.STOP_SERVER,
    templates.START_SERVER,
    templates.RESTART_SERVER,
    TAKE_OVER_CLUSTER,
]


class NotAFlowStep(Subtask):
    name = "Not a flow step"


def names(template: Template, context: Context) -> list[str]:
    return [planned.subtask.name for planned in template.plan(context)]


def test_stop_cluster_is_the_seeds_dag_for_one_zone_and_one_server() -> None:
    context = Context.of({}, {"server_ids": ["1"], "zone_names": ["zone1"]})
    assert names(templates.STOP_CLUSTER, context) == SEED_STOP_NAMES


@pytest.mark.parametrize("template", OPERATIONS, ids=lambda template: template.key)
def test_every_operation_releases_the_cluster_lock(template: Template) -> None:
    assert template.on_end is templates.release_cluster_lock


def test_the_verified_status_goes_from_the_host_action_to_update_observer_status() -> None:
    for action in (steps.StopObserverProcess, steps.StartObserverProcess):
        assert VERIFIED_STATUS in action.publishes
    assert steps.UpdateObserverStatus.takes == {VERIFIED_STATUS}
    assert VERIFIED_STATUS.key(7) == "verified_server_7"


def test_a_step_taking_what_no_earlier_stage_publishes_is_refused() -> None:
    stages = [
        single(steps.PrepareStopObserver),
        single(steps.UpdateStoppedObserverStatus),
        single(steps.StopObserverProcess),
    ]
    with pytest.raises(ValueError, match="'Update observer status' takes 'verified'"):
        templates.check_hand_offs("test", stages, [STOPPED_BY_TASK, VERIFIED_STATUS])


def test_a_hand_off_must_be_declared_and_taken() -> None:
    stages = [single(steps.PrepareStartObserver), single(steps.StartObserverProcess)]
    with pytest.raises(ValueError, match="takes 'started', which no earlier stage"):
        templates.check_hand_offs("test", stages, [])
    with pytest.raises(ValueError, match=r"no stage takes \['verified'\]"):
        templates.check_hand_offs("test", stages, [STARTED_BY_TASK, VERIFIED_STATUS])
    with pytest.raises(TypeError, match="not a FlowStep"):
        templates.check_hand_offs("test", [parallel(NotAFlowStep, over="x")], [])


async def test_only_a_successful_task_frees_its_cluster(database: Database) -> None:
    async with database.transaction(write=True) as session:
        cluster = await add_cluster(session, await add_local_host(session), zones=1)
        task = await add_task(session, cluster)
        cluster.operation_task_id = task.id
        await session.flush()
        task.status = "FAILED"
        await templates.release_cluster_lock(session, task)
        assert (await session.get_one(Cluster, cluster.id)).operation_task_id == task.id
        task.status = "SUCCESSFUL"
        await templates.release_cluster_lock(session, task)
        await session.refresh(cluster)
        assert cluster.operation_task_id is None


def test_every_template_registers_and_a_rolling_restart_is_found_for_any_zone_count() -> None:
    catalog = Catalog()
    catalog.register(*TEMPLATES)
    for template in (*OPERATIONS, templates.rolling_restart(12)):
        found = catalog.template(template.key)
        assert found is not None
        assert found.on_end is templates.release_cluster_lock
        for stage in found.stages:
            assert catalog.subtask_class(stage.subtask.class_name) is stage.subtask
