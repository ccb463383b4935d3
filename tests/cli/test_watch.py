"""A task's DAG folded into stages, updated by its stream's events, and the report of a
failed task."""

from __future__ import annotations

import json

from httpx_sse import ServerSentEvent

from obpilot.cli.progress import failure_report
from obpilot.cli.watch import TaskProgress


def _subtask(id: int, name: str, upstreams: list[int], idx: int = -1) -> dict[str, object]:
    return {"id": id, "name": name, "status": "PENDING", "parallelIdx": idx, "upstreams": upstreams}


TASK = {
    "id": 7,
    "name": "Stop OB cluster",
    "status": "RUNNING",
    "prohibitRollback": False,
    "subtasks": [
        _subtask(1, "Prepare stop cluster", []),
        _subtask(2, "Stop observer process", [1], 0),
        _subtask(3, "Stop observer process", [1], 1),
        _subtask(4, "Wait node", [2, 3]),
        _subtask(5, "Update OB cluster status", [4]),
    ],
}


def _event(kind: str, data: dict[str, object]) -> ServerSentEvent:
    return ServerSentEvent(event=kind, data=json.dumps(data))


def test_stages_fold_fan_outs_and_hide_wait_nodes() -> None:
    progress = TaskProgress.of(TASK)
    assert [s.label for s in progress.stages()] == [
        "Prepare stop cluster",
        "Stop observer process x2",
        "Update OB cluster status",
    ]
    assert progress.stage_numbers() == {1: 1, 2: 2, 3: 2, 5: 3}

    progress.apply(_event("subtask", {"id": 1, "status": "SUCCESSFUL"}))
    progress.apply(_event("subtask", {"id": 2, "status": "RUNNING"}))
    progress.apply(_event("log", {"subtaskId": 2, "line": "2026-11-30T13:00:00.000+00:00 SIGUSR1"}))
    progress.apply(_event("subtask", {"id": 3, "status": "SUCCESSFUL"}))
    stage = progress.stages()[1]
    assert (stage.state, stage.summary()) == ("RUNNING", "1/2 done, 1 running")
    assert progress.waiting_for() == "Stop observer process #0: SIGUSR1"

    progress.apply(_event("subtask", {"id": 2, "status": "FAILED", "errorMessage": "port busy"}))
    progress.apply(_event("end", {"id": 7, "status": "FAILED"}))
    assert progress.ended
    assert progress.stages()[1].state == "FAILED"
    report = failure_report(
        progress, {2: "\n".join(f"line {i}" for i in range(30))}, "abc123", lambda c: f"obpilot {c}"
    )
    assert "Failed subtask 2 Stop observer process #0: port busy" in report
    assert "line 9\n" not in report
    assert "line 10" in report
    assert "line 29" in report
    assert "traceId: abc123" in report
    assert "obpilot task retry 7" in report
    assert "obpilot task rollback 7" in report
