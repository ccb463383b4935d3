"""bench/engine.py in smoke mode: submit, submit-to-SUCCESSFUL and the large task's GET
next to their floors, and recovery after a SIGKILL, on SQLite and (with
OBPILOT_TEST_PG_URL, as `make test` sets it) PostgreSQL with its multi-instance figures, in
the JSON a full run reports."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.bench import TIMEOUT, missing, number, positive, run_smoke

pytestmark = TIMEOUT


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return run_smoke("engine")


def test_sqlite(result: dict[str, Any]) -> None:
    _one_metadb(result["sqlite"])
    assert result["cpu_count"] == os.cpu_count()
    number(result["load_average_1m"])


def test_postgresql(result: dict[str, Any]) -> None:
    if not os.environ.get("OBPILOT_TEST_PG_URL"):
        assert result["postgresql"] == "skipped: OBPILOT_TEST_PG_URL is not set"
        missing("postgresql (OBPILOT_TEST_PG_URL is not set; run `make services-start`)")
    figures = result["postgresql"]
    _one_metadb(figures)
    throughput = figures["noop_throughput"]
    for instances in ("1_instance", "2_instances"):
        _on_instances(throughput[instances], subtasks=20 + 2)  # the fan-out, first and last
    spread = figures["io_fan_out_200ms"]
    for instances in ("1_instance", "2_instances"):
        _on_instances(spread[instances], subtasks=16 + 2)
    ratio = spread["2_instances"]["seconds"] / spread["1_instance"]["seconds"]
    assert number(spread["ratio"]) == pytest.approx(ratio, abs=0.006)
    _target(spread, "ratio", 0.6)


def _summary(figure: dict[str, Any]) -> None:
    assert figure["runs"] == 1, figure
    assert positive(figure["min_ms"]) <= positive(figure["p50_ms"]) <= positive(figure["p90_ms"])


def _target(figures: dict[str, Any], ratio: str, target: float) -> None:
    assert figures["target_ratio"] == target
    assert figures["target_met"] == (positive(figures[ratio]) <= target)


def _one_metadb(figures: dict[str, Any]) -> None:
    submitted = figures["submit"]
    _summary(submitted["seed_11_subtasks"])
    big = submitted["stop_100_zones_x_10_servers"]
    assert big["subtasks"] == 3206
    _summary(big)

    ran = figures["submit_to_successful_seed_11"]
    _summary(ran["engine"])
    _summary(ran["floor_claim_and_finish_updates"])
    _target(ran, "ratio_p50", 2.0)

    for name in ("get_task_3206_subtasks", "floor_select_and_json_dumps", "baseline_get_info"):
        _summary(figures[name])
    _target(figures, "ratio_p50", 2.0)

    # Restarted under the same name, and on another port (another name): both resume
    # without the lease's wait.
    for name in ("recovery", "recovery_another_name"):
        recovery = figures[name]
        positive(recovery["lease_seconds"])
        positive(recovery["kill_to_answering_seconds"])
        again = number(recovery["answering_to_running_again_seconds"])
        assert 0 <= again < recovery["lease_seconds"], (name, recovery)
        assert recovery["target_seconds"] == 2.0
        assert recovery["target_met"] == (again < 2.0)


def _on_instances(figure: dict[str, Any], *, subtasks: int) -> None:
    assert (figure["subtasks"], figure["status"]) == (subtasks, "SUCCESSFUL"), figure
    positive(figure["seconds"])
    positive(figure["subtasks_per_second"])
    assert figure["executors"] >= 1
