"""The Prepare host subtasks, run as the engine runs them (one branch of the fan-out over
the task's hosts, outputs handed to the next step) against a SQLite metadb and a fake host
that answers `survey` from scripted values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from obpilot.db.engine import Database
from obpilot.engine import Context, Subtask, SubtaskError, SubtaskOperation
from obpilot.errors import HostUnreachable
from obpilot.flows.common import FlowContext, FlowResources
from obpilot.flows.prepare_host import (
    HOST_IDS,
    PREPARE_HOST,
    PreCheckForCreateHost,
    Thresholds,
    UpdateHostStatus,
    findings,
)
from obpilot.hosts.protocol import SurveyAnswer, SurveyedPath
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Host, HostKind, HostStatus
from obpilot.inventory.schemas import HostCreate
from obpilot.secretbox import SecretBox
from obpilot.settings import Settings
from tests.support.fake_host import GIB, FakeHost, FakeHostAccess


@dataclass
class Preparing:
    """One NEW local host in the metadb, on a fake host, and its branch of the task."""

    database: Database
    host: FakeHost
    settings: Settings
    host_id: int
    strings: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def context(self) -> FlowContext:
        async def publish(key: str, value: str | list[str]) -> None:
            assert isinstance(value, str)
            self.strings[key] = value

        return FlowContext(
            task_id=1,
            subtask_id=1,
            name="under test",
            run_time=1,
            operation=SubtaskOperation.EXECUTE,
            executor="test",
            context=Context(dict(self.strings), {HOST_IDS: [str(self.host_id)]}, parallel_idx=0),
            parallel_key=HOST_IDS,
            database=self.database,
            resources=FlowResources(
                self.settings, FakeHostAccess(self.host), SecretBox(Fernet.generate_key())
            ),
            _log=self.lines.append,
            _publish=publish,
        )

    async def execute(self, step: type[Subtask]) -> None:
        await step().execute(self.context())

    async def stored(self) -> Host:
        async with self.database.transaction() as session:
            return await session.get_one(Host, self.host_id)


@pytest.fixture
async def preparing(database: Database, tmp_path: Path) -> Preparing:
    async with database.transaction(write=True) as session:
        host = await inventory.create_host(
            session,
            spec=HostCreate(inner_ip_address="127.0.0.1", kind=HostKind.LOCAL),
            host_key=None,
            status=HostStatus.NEW,
        )
    return Preparing(database, FakeHost(), Settings(home=tmp_path), host.id)


async def test_a_ready_host_passes_and_becomes_available_with_its_system(
    preparing: Preparing,
) -> None:
    await preparing.execute(PreCheckForCreateHost)
    assert preparing.host.probes == ["survey"]
    assert sum(": ok: " in line for line in preparing.lines) == 5
    stored = await preparing.stored()
    assert stored.status == HostStatus.NEW  # until its status is updated
    assert stored.operating_system == preparing.host.system.operating_system
    await preparing.execute(UpdateHostStatus)
    await preparing.execute(UpdateHostStatus)  # idempotent
    host = await preparing.stored()
    assert host.status == HostStatus.AVAILABLE
    assert host.operating_system == preparing.host.system.operating_system
    assert host.architecture == "x86_64"


async def test_a_failing_host_stays_new_with_every_reason_then_passes_after_the_repair(
    preparing: Preparing,
) -> None:
    system = preparing.host.system
    system.python, system.timeout, system.memory_available = "3.6.8", None, GIB // 2
    with pytest.raises(SubtaskError) as failed:
        await preparing.execute(PreCheckForCreateHost)
    reason = str(failed.value)
    assert "python3 3.6.8 (needs 3.8 or later)" in reason
    assert "coreutils timeout: not found on the PATH" in reason
    assert "memory available: 0.5 GiB" in reason
    assert "free disk" not in reason  # only what failed is the reason...
    assert any("ok: free disk" in line for line in preparing.lines)  # ...all are logged
    assert (await preparing.stored()).status == HostStatus.NEW

    system.python, system.timeout, system.memory_available = "3.11.2", "/usr/bin/timeout", GIB
    await preparing.execute(PreCheckForCreateHost)  # the engine's retry
    await preparing.execute(UpdateHostStatus)
    assert (await preparing.stored()).status == HostStatus.AVAILABLE


async def test_an_unreachable_host_fails_the_pre_check(preparing: Preparing) -> None:
    preparing.host.outage = HostUnreachable(host="h", step="connect", detail="no route")
    with pytest.raises(SubtaskError, match=r"cannot log in and survey it: .*no route"):
        await preparing.execute(PreCheckForCreateHost)


def _survey(free: dict[str, int]) -> SurveyAnswer:
    def path(free_bytes: int) -> SurveyedPath:
        return {
            "exists": True,
            "is_dir": True,
            "entries": [],
            "writable": True,
            "free_bytes": free_bytes,
            "device": 1,
        }

    return {
        "python": "3.8.0",
        "proc": False,
        "timeout": "/usr/bin/timeout",
        "operating_system": "Linux",
        "architecture": "aarch64",
        "cpu_count": 1,
        "memory_total": 2 * GIB,
        "memory_available": GIB,
        "paths": {name: path(amount) for name, amount in free.items()},
        "ports": {},
    }


def test_the_disk_check_counts_the_roomier_of_root_and_the_home() -> None:
    thresholds = Thresholds(min_memory_available=GIB, min_free_disk=2 * GIB)
    checks = findings(
        _survey({"/": GIB, "/home/ops": 3 * GIB}), home="/home/ops", thresholds=thresholds
    )
    assert [finding.passed for finding in checks] == [True, False, True, True, True]
    assert checks[1].text == "/proc is missing"
    assert checks[4].text == "free disk: 3.0 GiB at /home/ops (needs 2.0 GiB on / or /home/ops)"
    tight = findings(_survey({"/": GIB}), home="/", thresholds=thresholds)
    assert not tight[4].passed


def test_the_template_checks_every_host_before_any_becomes_available() -> None:
    planned = PREPARE_HOST.plan(Context({}, {HOST_IDS: ["1", "2"]}))
    names = [step.subtask.name for step in planned]
    assert names == [
        "Pre check for create host",
        "Pre check for create host",
        "Wait node",
        "Update host status",
        "Update host status",
    ]
