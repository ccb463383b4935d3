"""Real `obpilot serve` processes sharing a metadb: a DAG runs on both; SIGKILL one
mid-subtask and the other reaps its lease (resuming or failing with "executor lost",
which a retry clears); SIGTERM drains; and a restarted server (the same instance name)
takes back its subtasks at once, alone on SQLite or beside a live one, whose subtasks it
leaves alone. Executions are recorded to a file: no subtask ever runs twice at once."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from obpilot.db import migrate
from obpilot.db.engine import Database
from obpilot.engine import Context, SubtaskInstance
from tests.conftest import IN_CI
from tests.engine.helpers import GATED
from tests.support.databases import fresh_database_url
from tests.support.engine_tasks import (
    CRASH,
    CRASH_RESUMABLE,
    SPREAD,
    log_of,
    read_records,
    submit_task,
    wait_for,
    wait_task,
)
from tests.support.server import ADMIN_PASSWORD, ServerProcess

ENGINE_ENV = {
    "OBPILOT_EXTRA_MODULES": "tests.support.engine_tasks",
    "OBPILOT_ENGINE_WORKERS": "2",
    "OBPILOT_ENGINE_LEASE_SECONDS": "3",
    "OBPILOT_ENGINE_HEARTBEAT_SECONDS": "0.5",
    "OBPILOT_ENGINE_POLL_SECONDS": "0.2",
    "OBPILOT_ENGINE_CANCEL_GRACE_SECONDS": "0.5",
    "OBPILOT_ENGINE_DRAIN_SECONDS": "4",
}
# Leases that outlive the test: only the boot id tells a restarted instance that its
# previous boot's subtasks are its own to take back.
LONG_LEASES = {
    **ENGINE_ENV,
    "OBPILOT_EXTRA_MODULES": "tests.support.engine_tasks,tests.engine.helpers",
    "OBPILOT_ENGINE_LEASE_SECONDS": "300",
}


@pytest.fixture(params=["postgresql", "mariadb"])
def shared_url(request: pytest.FixtureRequest) -> Iterator[str]:
    variable = {"postgresql": "OBPILOT_TEST_PG_URL", "mariadb": "OBPILOT_TEST_MYSQL_URL"}[
        request.param
    ]
    admin = os.environ.get(variable)
    if not admin:
        if IN_CI:
            pytest.fail(f"{variable} is not set")
        pytest.skip(f"{variable} is not set")
    url, drop = fresh_database_url(admin)
    migrate.upgrade(url)  # once, before two servers start on it
    yield url
    drop()


@pytest.fixture
async def metadb(shared_url: str) -> AsyncIterator[Database]:
    database = Database(shared_url)
    yield database
    await database.dispose()


class Servers:
    def __init__(self, tmp_path: Path, url: str | None) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.started: list[ServerProcess] = []

    def start(self, name: str, env: dict[str, str] = ENGINE_ENV) -> ServerProcess:
        server = ServerProcess(self.tmp_path / name, metadb_url=self.url, env=env)
        self.started.append(server)
        return server.start()

    def named(self, executor: str | None) -> ServerProcess:
        (server,) = [s for s in self.started if f"127.0.0.1:{s.port}" == executor]
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop(signal.SIGKILL)


@pytest.fixture
def servers(tmp_path: Path, shared_url: str) -> Iterator[Servers]:
    pool = Servers(tmp_path, shared_url)
    yield pool
    pool.stop_all()


def address(server: ServerProcess) -> str:
    return f"127.0.0.1:{server.port}"


def retry(server: ServerProcess, task_id: int, subtask_id: int) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/api/v2/tasks/instances/{task_id}/subtasks/{subtask_id}/retry",
        auth=("admin", ADMIN_PASSWORD),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def assert_never_twice_at_once(records: list[dict[str, Any]], killed: dict[int, float]) -> None:
    """Runs of one subtask never overlap: each run ended (or its process, a pid in
    `killed`, was killed) before the next run of that subtask started."""
    by_subtask: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_subtask.setdefault(int(record["subtask"]), []).append(record)
    for entries in by_subtask.values():
        starts = sorted((r for r in entries if r["event"] == "start"), key=lambda r: r["t"])
        for before, after in itertools.pairwise(starts):
            ends = [r["t"] for r in entries if r["event"] == "end" and r["run"] == before["run"]]
            finished = ends[0] if ends else killed[int(before["pid"])]
            assert finished <= after["t"], (before, after)


def drain_and_exit(server: ServerProcess) -> None:
    """SIGTERM; uvicorn shuts down gracefully, then re-raises the signal (exit -15)."""
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert "task engine stopped" in server.log()


async def test_one_dag_runs_on_both_instances(
    servers: Servers, metadb: Database, tmp_path: Path
) -> None:
    first, second = servers.start("a"), servers.start("b")
    record_file = tmp_path / "runs.jsonl"
    context = Context.of(
        {"record_file": record_file, "sleep_seconds": 1}, {"items": list(range(6))}
    )
    task_id = await submit_task(metadb, SPREAD, context)
    _, subtasks = await wait_task(metadb, task_id, "SUCCESSFUL", within=60)
    sleepers = [s for s in subtasks if s.name == "Sleep"]
    assert {s.executor for s in sleepers} == {address(first), address(second)}
    starts = [r["subtask"] for r in read_records(record_file) if r["event"] == "start"]
    assert sorted(starts) == sorted(s.id for s in subtasks)


async def test_sigkill_mid_subtask_then_reap_retry_and_resume(
    servers: Servers, metadb: Database, tmp_path: Path
) -> None:
    servers.start("a")
    servers.start("b")
    record_file = tmp_path / "runs.jsonl"
    slow_once = {"record_file": record_file, "first_run_sleep_seconds": 60, "sleep_seconds": 0.2}

    # A subtask that cannot resume: the survivor fails it, "executor lost"; retry clears.
    task_id = await submit_task(metadb, CRASH, Context.of(slow_once))
    _, subtasks = await wait_for(metadb, task_id, lambda _t, s: s[1].status == "RUNNING")
    victim = servers.named(subtasks[1].executor)
    victim.kill()
    killed = {victim.process.pid: time.time()}  # type: ignore[union-attr]
    survivor = next(s for s in servers.started if s is not victim)
    _, subtasks = await wait_task(metadb, task_id, "FAILED", within=30)
    lost = subtasks[1]
    assert lost.error_code == "TSK10015"
    assert f"executor {address(victim)} lost" in (lost.error_message or "")
    answer = retry(survivor, task_id, lost.id)
    assert (answer["status"], answer["runTime"]) == ("READY", 2)
    _, subtasks = await wait_task(metadb, task_id, "SUCCESSFUL", within=30)
    assert (subtasks[1].executor, subtasks[1].run_time) == (address(survivor), 2)
    assert_never_twice_at_once(read_records(record_file), killed)

    # A resumable one: the survivor makes it READY again and runs it.
    servers.start("c")  # a second pair: the survivor and a new instance
    resumable = await submit_task(metadb, CRASH_RESUMABLE, Context.of(slow_once))
    _, subtasks = await wait_for(metadb, resumable, lambda _t, s: s[1].status == "RUNNING")
    victim = servers.named(subtasks[1].executor)
    victim.kill()
    killed[victim.process.pid] = time.time()  # type: ignore[union-attr]
    _, subtasks = await wait_task(metadb, resumable, "SUCCESSFUL", within=30)
    assert subtasks[1].run_time == 2
    assert subtasks[1].executor != address(victim)
    lines = await log_of(metadb, subtasks[1].id)
    assert any(f"executor {address(victim)} lost" in line and "resume" in line for line in lines)
    assert_never_twice_at_once(read_records(record_file), killed)


async def test_sigterm_drains(servers: Servers, metadb: Database, tmp_path: Path) -> None:
    servers.start("a")
    servers.start("b")
    record_file = tmp_path / "runs.jsonl"

    # Short enough for the drain (4 s): it finishes where it runs, then the server exits.
    task_id = await submit_task(
        metadb, CRASH, Context.of({"record_file": record_file, "sleep_seconds": 1.5})
    )
    _, subtasks = await wait_for(metadb, task_id, lambda _t, s: s[1].status == "RUNNING")
    draining = servers.named(subtasks[1].executor)
    drain_and_exit(draining)
    _, subtasks = await wait_for(metadb, task_id, lambda _t, s: s[1].status == "SUCCESSFUL")
    assert subtasks[1].executor == address(draining)
    assert subtasks[1].run_time == 1
    await wait_task(metadb, task_id, "SUCCESSFUL", within=30)

    # Too long for the drain: handed back (resumable), and the other instance runs it.
    servers.start("c")
    handed = await submit_task(
        metadb,
        CRASH_RESUMABLE,
        Context.of(
            {"record_file": record_file, "first_run_sleep_seconds": 60, "sleep_seconds": 0.2}
        ),
    )
    _, subtasks = await wait_for(metadb, handed, lambda _t, s: s[1].status == "RUNNING")
    draining = servers.named(subtasks[1].executor)
    drain_and_exit(draining)
    _, subtasks = await wait_task(metadb, handed, "SUCCESSFUL", within=30)
    assert subtasks[1].run_time == 2
    assert subtasks[1].executor != address(draining)
    assert any("handed back" in line for line in await log_of(metadb, subtasks[1].id))


async def test_a_lone_sqlite_server_recovers_after_a_crash(tmp_path: Path) -> None:
    """At once: its leases run for another 300 s."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'home' / 'obpilot.db'}"
    server = ServerProcess(tmp_path / "home", metadb_url=url, env=LONG_LEASES)
    record_file = tmp_path / "runs.jsonl"
    slow_once = {"record_file": record_file, "first_run_sleep_seconds": 60, "sleep_seconds": 0.2}
    server.start()
    database = Database(url)
    try:
        plain = await submit_task(database, CRASH, Context.of(slow_once))
        resumable = await submit_task(database, CRASH_RESUMABLE, Context.of(slow_once))
        for task_id in (plain, resumable):
            await wait_for(database, task_id, lambda _t, s: s[1].status == "RUNNING")
        pid = server.process.pid  # type: ignore[union-attr]
        server.kill()
        killed = {pid: time.time()}
        server.start()  # same home, port and executor name

        _, subtasks = await wait_task(database, resumable, "SUCCESSFUL", within=30)
        assert subtasks[1].run_time == 2
        _, subtasks = await wait_task(database, plain, "FAILED", within=30)
        assert subtasks[1].error_code == "TSK10015"
        assert f"executor {address(server)} lost: it restarted" in (subtasks[1].error_message or "")
        retry(server, plain, subtasks[1].id)
        _, subtasks = await wait_task(database, plain, "SUCCESSFUL", within=30)
        assert subtasks[1].run_time == 2
        assert_never_twice_at_once(read_records(record_file), killed)
    finally:
        server.stop(signal.SIGKILL)
        await database.dispose()


async def test_a_restarted_instance_takes_back_its_own_subtasks_beside_a_live_one(
    servers: Servers, metadb: Database, tmp_path: Path
) -> None:
    """a and b run two subtasks each under 300 s leases; a is killed and started again
    (same address, so the same instance name): a's two run again at once, b's keep their
    first run, and no subtask runs twice at once."""
    first = servers.start("a", LONG_LEASES)
    servers.start("b", LONG_LEASES)
    record_file, gate = tmp_path / "runs.jsonl", tmp_path / "gate"
    context = Context.of({"record_file": record_file, "gate_file": gate}, {"items": range(4)})
    task_id = await submit_task(metadb, GATED, context)
    _, before = await wait_for(
        metadb, task_id, lambda _t, s: all(x.status == "RUNNING" for x in s), what="running"
    )
    assert {s.executor for s in before} == {address(server) for server in servers.started}
    pid = first.process.pid  # type: ignore[union-attr]
    first.kill()
    killed = {pid: time.time()}
    first.start()

    def taken_back(_task: object, subtasks: list[SubtaskInstance]) -> bool:
        mine = [s for s in subtasks if s.executor == address(first)]
        return len(mine) == 2 and all(s.run_time == 2 for s in mine)

    _, after = await wait_for(metadb, task_id, taken_back, within=30, what="taken back")
    for old, new in zip(before, after, strict=True):
        if old.executor != address(first):  # b's: the same run, under the same lease
            assert (new.status, new.run_time, new.lease_token) == ("RUNNING", 1, old.lease_token)
    gate.touch()
    _, done = await wait_task(metadb, task_id, "SUCCESSFUL", within=30)
    assert sorted(s.run_time for s in done) == [1, 1, 2, 2]
    assert_never_twice_at_once(read_records(record_file), killed)
