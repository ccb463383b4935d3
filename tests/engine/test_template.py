"""Templates become DAGs: fan-outs, Wait nodes between consecutive parallel stages, and the
seed's stop DAG for one zone and one server."""

from __future__ import annotations

from graphlib import TopologicalSorter

import pytest

from obpilot.engine import Context, Template, WaitNode, parallel, single
from obpilot.engine.template import PlannedSubtask
from tests.support.engine_tasks import SEED_STOP, SEED_STOP_NAMES, Noop, Sleep, seed_context


def names(plan: list[PlannedSubtask]) -> list[str]:
    return [node.subtask.name for node in plan]


def test_seed_stop_dag_for_one_zone_and_one_server_is_a_chain_of_eleven() -> None:
    plan = SEED_STOP.plan(seed_context())
    assert names(plan) == SEED_STOP_NAMES
    assert [node.upstreams for node in plan] == [()] + [(n,) for n in range(10)]
    assert [node.series_id for node in plan] == list(range(11))
    assert [node.parallel_idx for node in plan] == [-1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1]


def test_fan_outs_and_joins_for_two_zones_of_three_servers() -> None:
    plan = SEED_STOP.plan(seed_context(zones=2, servers_per_zone=3))
    counts = [names(plan).count(n) for n in ("Prepare stop OB zone", "Stop observer process")]
    assert counts == [2, 6]
    assert names(plan).count("Wait node") == 4
    by_id = {node.series_id: node for node in plan}
    for node in plan:
        if node.subtask is WaitNode:
            parents = {by_id[p].subtask.name for p in node.upstreams}
            assert len(parents) == 1
            assert len(node.upstreams) in (2, 6)
    zones = [n for n in plan if n.subtask.name == "Prepare stop OB zone"]
    assert [z.parallel_idx for z in zones] == [0, 1]
    assert all(z.upstreams == (0,) for z in zones)  # single -> parallel: direct
    last = plan[-1]
    assert last.subtask.name == "Update OB cluster status"
    assert len(last.upstreams) == 2  # parallel -> single: direct
    graph = {node.series_id: set(node.upstreams) for node in plan}
    order = list(TopologicalSorter(graph).static_order())
    assert len(order) == len(plan)


def test_stop_dag_of_100_zones_of_10_servers() -> None:
    plan = SEED_STOP.plan(seed_context(zones=100, servers_per_zone=10))
    assert len(plan) == 1 + 100 + 1 + 1000 + 1 + 1000 + 1 + 1000 + 1 + 100 + 1


def test_a_parallel_stage_over_an_empty_list_is_left_out() -> None:
    template = Template(
        key="test.empty-fan-out",
        name="Empty",
        stages=[parallel(Noop, over="a"), parallel(Sleep, over="none"), parallel(Noop, over="b")],
    )
    plan = template.plan(Context.of(lists={"a": [1, 2], "none": [], "b": [3]}))
    assert names(plan) == ["No-op", "No-op", "Wait node", "No-op"]
    assert plan[3].upstreams == (2,)


def test_single_stages_connect_directly() -> None:
    template = Template(key="test.singles", name="S", stages=[single(Noop), single(Sleep)])
    plan = template.plan(Context())
    assert names(plan) == ["No-op", "Sleep"]
    assert plan[1].upstreams == (0,)


def test_a_fan_out_over_a_missing_list_is_refused() -> None:
    template = Template(key="test.missing", name="M", stages=[parallel(Noop, over="servers")])
    with pytest.raises(ValueError, match="servers"):
        template.plan(Context())


def test_a_template_needs_stages() -> None:
    with pytest.raises(ValueError, match="no stages"):
        Template(key="test.none", name="N", stages=[])
