"""bench/lifecycle.py in smoke mode: create, delete and purge of a one-server cluster
through the API and by hand, in the JSON a full run's README table is read from."""

from __future__ import annotations

import pytest

from tests.support.bench import REPO_ROOT, TIMEOUT, missing, number, positive, run_smoke

pytestmark = TIMEOUT

WHEELS = REPO_ROOT / ".cache" / "wheels"  # where `make install` puts the pylibseekdb wheel


def test_create_and_delete_against_the_baseline() -> None:
    if not sorted(WHEELS.glob("pylibseekdb-*.whl")):
        missing(f"no pylibseekdb wheel in {WHEELS} (make install)")
    result = run_smoke("lifecycle")
    assert (result["metadb"], result["runs"]) == ("sqlite", 1)
    positive(result["cpus"])
    positive(result["first_create_1_server_s"])
    assert result["first_create_subtasks_s"], result
    assert list(result["servers"]) == ["1"]
    report = result["servers"]["1"]
    # Each run creates twice on each side: one cluster deleted plainly, one purged.
    for operation, samples in (("create", 2), ("delete", 1), ("delete_purge", 1)):
        row = report[operation]
        assert len(row["baseline_s"]) == len(row["obpilot_s"]) == samples, row
        for figure in ("baseline_p50_s", "baseline_max_s", "obpilot_p50_s", "obpilot_max_s"):
            positive(row[figure])
        overhead = row["obpilot_p50_s"] - row["baseline_p50_s"]
        assert number(row["overhead_p50_s"]) == pytest.approx(overhead, abs=0.002)
        number(row["overhead_p50_pct"])
        assert positive(row["allowed_overhead_s"]) >= 0.5
        assert isinstance(row["within_target"], bool)
        positive(row["obpilot_call_p50_ms"])
        assert row["obpilot_subtasks_p50_s"], row
        assert all(number(took) >= 0 for took in row["obpilot_subtasks_p50_s"].values())
    for operation in ("delete", "delete_purge"):
        assert "Stop observer process" in report[operation]["obpilot_subtasks_p50_s"]
        assert [positive(s) for s in report[operation]["baseline_seekdb_exit_s"]]
    assert report["within_target"] == all(
        report[operation]["within_target"] for operation in ("create", "delete", "delete_purge")
    )
