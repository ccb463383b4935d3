"""The lifecycle templates: OCP's step names in their order, what differs between seekdb
and observer clusters, what a keepData delete leaves out, and the cluster lock's release."""

from __future__ import annotations

import pytest

from obpilot.engine import Context, Template
from obpilot.flows import lifecycle, templates
from obpilot.inventory.models import ServerKind

ONE_SERVER = Context.of({}, {"server_ids": ["1"], "zone_names": ["zone1"]})


def names(template: Template, context: Context = ONE_SERVER) -> list[str]:
    """The steps in order, without the "Wait node" joins between parallel stages."""
    return [p.subtask.name for p in template.plan(context) if p.subtask.name != "Wait node"]


def test_a_seekdb_cluster_is_created_without_a_bootstrap() -> None:
    assert names(lifecycle.CREATE_CLUSTER[ServerKind.SEEKDB]) == [
        "Prepare install cluster",
        "Reserve host",
        "Pre check for install OB",
        "Make dir for ob",
        "Install package",
        "Start observer process with param",
        "Wait observer accessible",
        "Set sys password",
        "Update observer status",
        "Update zone status",
        "Update OB cluster status",
    ]


def test_an_observer_cluster_is_bootstrapped_once_and_gets_one_password() -> None:
    context = Context.of({}, {"server_ids": ["1", "2", "3"], "zone_names": ["z1", "z2", "z3"]})
    planned = names(lifecycle.CREATE_CLUSTER[ServerKind.OBSERVER], context)
    assert planned.count("Bootstrap ob") == 1
    assert planned.count("Set sys password") == 1
    assert planned.count("Start observer process with param") == 3
    assert planned.index("Bootstrap ob") > max(
        i for i, name in enumerate(planned) if name == "Start observer process with param"
    )
    assert planned.index("Bootstrap ob") < planned.index("Wait observer accessible")


def test_a_delete_moves_directories_aside_unless_it_keeps_the_data() -> None:
    assert names(lifecycle.DELETE_CLUSTER) == [
        "Prepare delete cluster",
        "Stop observer process",
        "Clean observer host",
        "Delete cluster info",
        "Unreserve host",
    ]
    assert "Clean observer host" not in names(lifecycle.DELETE_CLUSTER_KEEP_DATA)


def test_removing_servers_updates_only_the_zones_that_keep_some() -> None:
    emptied = Context.of({}, {"server_ids": ["4"], "zone_names": []})
    assert "Update zone status" not in names(lifecycle.DELETE_SERVERS, emptied)
    assert names(lifecycle.DELETE_ZONE)[-3:] == [
        "Delete zone meta info",
        "Unreserve host",
        "Update OB cluster status",
    ]


@pytest.mark.parametrize("template", lifecycle.TEMPLATES, ids=lambda template: template.key)
def test_every_lifecycle_task_releases_the_cluster_lock(template: Template) -> None:
    assert template.on_end is templates.release_cluster_lock


def test_a_deleted_cluster_info_cannot_be_rolled_back() -> None:
    (step,) = [
        s for s in lifecycle.DELETE_CLUSTER.stages if s.subtask.name == "Delete cluster info"
    ]
    assert step.subtask.rollbackable is False
