"""The benchmarks (bench/*.py) in their smoke mode, for tests/bench: `run_smoke("stop")`
runs `bench/stop.py --smoke` from the repository's root, as a person would, and returns the
JSON document it printed; `missing` skips a test whose prerequisite is absent (fails it with
CI=true); `number` and `positive` check the figures a full run's README table is read from.

A smoke run stops its servers in its own `finally` blocks: on a timeout it gets SIGINT
first (asyncio.run cancels its main task), then SIGKILL for its process group."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.databases import seekdb_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
#: A smoke run takes well under a minute alone; this machine may be running much else.
SMOKE_TIMEOUT = 600.0
#: pytest's own limit (pyproject's is 300 s) for a test that runs a bench: above the run's.
TIMEOUT = pytest.mark.timeout(SMOKE_TIMEOUT + 120)


def missing(what: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing prerequisite is a failure)")
    pytest.skip(what)


def require_seekdb() -> None:
    """The seekdb binary of the pylibseekdb wheel, which the fleets run."""
    try:
        seekdb_binary()
    except RuntimeError as error:
        missing(str(error))


def run_smoke(name: str) -> dict[str, Any]:
    """`bench/<name>.py --smoke`'s JSON document; it must exit 0 and print that alone on
    stdout (its progress and logs go to stderr)."""
    script = f"bench/{name}.py"
    with subprocess.Popen(
        [sys.executable, script, "--smoke"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, for `_end`
    ) as bench:
        try:
            stdout, stderr = bench.communicate(timeout=SMOKE_TIMEOUT)
        except subprocess.TimeoutExpired:
            _, stderr = _end(bench)
            pytest.fail(f"{script} --smoke ran over {SMOKE_TIMEOUT:.0f} s:\n{_tail(stderr)}")
        except BaseException:
            _end(bench)
            raise
    assert bench.returncode == 0, f"{script} --smoke exited {bench.returncode}:\n{_tail(stderr)}"
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError as error:
        pytest.fail(f"{script} --smoke printed more than its JSON ({error}):\n{_tail(stdout)}")
    assert isinstance(document, dict), document
    return document


def _end(bench: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGINT, so that the bench stops what it started; SIGKILL for its group after 60 s."""
    bench.send_signal(signal.SIGINT)
    try:
        return bench.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # its group may be gone with it
            os.killpg(bench.pid, signal.SIGKILL)
        return bench.communicate()


def _tail(output: bytes, size: int = 6000) -> str:
    return output[-size:].decode(errors="replace")


def number(value: object) -> float:
    """A JSON number (not a boolean)."""
    assert isinstance(value, int | float), value
    assert not isinstance(value, bool), value
    return float(value)


def positive(value: object) -> float:
    measured = number(value)
    assert measured > 0, value
    return measured
