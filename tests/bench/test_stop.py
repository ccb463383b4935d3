"""bench/stop.py in smoke mode: stop and start of one seekdb cluster through the API and
by hand, and the stop call's latency, in the JSON a full run reports."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.bench import TIMEOUT, number, positive, require_seekdb, run_smoke

pytestmark = TIMEOUT


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    require_seekdb()
    return run_smoke("stop")


def test_stop_and_start_against_the_baseline(result: dict[str, Any]) -> None:
    assert result["metadb"] == "sqlite"
    assert list(result["servers"]) == ["1"]
    for operation in ("stop", "start"):
        verdict = result["servers"]["1"][operation]
        for side in ("baseline", "obpilot"):
            samples = verdict[f"{side}_s"]
            assert len(samples) == 1, verdict
            assert positive(verdict[f"{side}_median_s"]) == positive(samples[0])
        overhead = verdict["obpilot_median_s"] - verdict["baseline_median_s"]
        assert number(verdict["overhead_s"]) == pytest.approx(overhead, abs=0.002)
        number(verdict["overhead_pct"])
        assert positive(verdict["allowed_overhead_s"]) >= 0.3
        assert isinstance(verdict["target_met"], bool)


def test_the_stop_calls_latency(result: dict[str, Any]) -> None:
    alone, loaded = result["stop_call"], result["stop_call_back_to_back"]
    for figures in (alone, loaded):
        assert figures["calls"] == 5
        assert 0 < positive(figures["p50_ms"]) <= number(figures["p99_ms"])
        assert number(figures["p99_ms"]) <= number(figures["max_ms"])
    assert alone["target_p99_ms"] == 50
    assert alone["target_met"] == (alone["p99_ms"] < 50)
    positive(alone["ocp_sample_ms"])
    assert loaded["clients"] == 8
