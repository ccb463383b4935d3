"""The real pylibseekdb wheel that tests upload as a software package: the locked version's,
which `make install` downloads into .cache/wheels/ (a missing one fails in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from obpilot.demo import wheel
from obpilot.demo.client import DemoError
from tests.conftest import IN_CI

WHEELS = Path(__file__).resolve().parents[2] / ".cache" / "wheels"


def locked_wheel() -> Path:
    try:
        return wheel.find(WHEELS)
    except DemoError as error:
        if IN_CI:
            pytest.fail(f"{error}; CI downloads it")
        pytest.skip(str(error))
