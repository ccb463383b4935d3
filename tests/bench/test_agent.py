"""bench/agent.py in smoke mode: a look at a host through the agent and through a fresh
interpreter (locally and over SSH), and a server's death to UNAVAILABLE, in the JSON a full
run reports."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.bench import TIMEOUT, missing, number, positive, require_seekdb, run_smoke
from tests.support.sshd import SSHD

pytestmark = TIMEOUT


def test_looks_and_a_death() -> None:
    require_seekdb()
    if not os.path.exists(SSHD):
        missing(f"{SSHD} is missing (run scripts/install-system-deps.sh)")
    result = run_smoke("agent")
    for where in ("look_local", "look_ssh"):
        _look(result[where])
    death = result["death_to_unavailable"]
    assert death["deaths"] == 1
    assert len(death["seconds"]) == 1
    assert positive(death["median_s"]) == positive(death["seconds"][0])
    assert death["target_s"] == 1.0
    assert death["target_met"] == (max(death["seconds"]) <= 1.0)


def _look(figures: dict[str, Any]) -> None:
    for side in ("agent", "spawn_per_look"):
        look = figures[side]
        assert 0 < positive(look["wall_ms_median"]) <= number(look["wall_ms_p99"]), figures
        assert number(look["cpu_ms_per_look"]) >= 0  # the clock's ticks: 0 over a few looks
    speedup = figures["spawn_per_look"]["wall_ms_median"] / figures["agent"]["wall_ms_median"]
    assert number(figures["wall_speedup"]) == pytest.approx(speedup, abs=0.051)
    assert number(figures["cpu_saving"]) >= 0
