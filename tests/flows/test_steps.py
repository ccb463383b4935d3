"""Every subtask of stop, start and restart, run as the engine runs it (a context with
the task's values, outputs published to later steps) against a SQLite metadb and a fake
host: statuses recorded, host actions done or refused, rollbacks undoing only what their
task did. No real server process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from obpilot.db.engine import Database
from obpilot.engine import Context, Subtask, SubtaskError, SubtaskOperation
from obpilot.errors import HostUnreachable
from obpilot.flows import steps
from obpilot.flows.common import FlowContext, FlowResources
from obpilot.inventory import service
from obpilot.inventory.models import (
    Cluster,
    ClusterStatus,
    Server,
    ServerStatus,
    Zone,
    ZoneStatus,
)
from obpilot.inventory.schemas import ClusterSpec
from obpilot.secretbox import SecretBox
from obpilot.settings import Settings
from tests.support.fake_host import CleanStop, FakeHost, FakeHostAccess, FakeProcess, Launch
from tests.support.inventory import add_local_host

SEEKDB = "/opt/seekdb/bin/seekdb"


@dataclass
class Flow:
    """One cluster of two zones, a seekdb server in each, recorded in the metadb and
    running on a fake host; and the context of the task whose subtasks run."""

    database: Database
    host: FakeHost
    settings: Settings
    cluster_id: int
    server_ids: list[int]
    #: Each server's process on the host, in `server_ids` order.
    processes: list[FakeProcess]
    strings: dict[str, str]
    lines: list[str] = field(default_factory=list)

    def context(self, operation: SubtaskOperation = SubtaskOperation.EXECUTE) -> FlowContext:
        """A subtask's context; what it publishes is seen by the steps after it."""

        async def publish(key: str, value: str | list[str]) -> None:
            assert isinstance(value, str)
            self.strings[key] = value
            context.context = context.context.merged(Context({key: value}))

        context = FlowContext(
            task_id=1,
            subtask_id=1,
            name="under test",
            run_time=1,
            operation=operation,
            executor="test",
            context=Context(dict(self.strings)),
            parallel_key=None,
            database=self.database,
            resources=FlowResources(
                self.settings, FakeHostAccess(self.host), SecretBox(Fernet.generate_key())
            ),
            _log=self.lines.append,
            _publish=publish,
        )
        return context

    async def execute(self, step: type[Subtask]) -> None:
        await step().execute(self.context())

    async def rollback(self, step: type[Subtask]) -> None:
        await step().rollback(self.context(SubtaskOperation.ROLLBACK))

    @property
    def server_id(self) -> int:
        """The server the task is about."""
        return self.server_ids[0]

    @property
    def process(self) -> FakeProcess:
        return self.processes[0]

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    async def server(self) -> Server:
        async with self.database.transaction() as session:
            return await session.get_one(Server, self.server_id)

    async def zone(self, name: str = "zone1") -> Zone:
        async with self.database.transaction() as session:
            zone = await session.scalar(
                select(Zone).where(Zone.cluster_id == self.cluster_id, Zone.name == name)
            )
        assert zone is not None
        return zone

    async def cluster(self) -> Cluster:
        async with self.database.transaction() as session:
            return await session.get_one(Cluster, self.cluster_id)

    async def record(
        self,
        servers: list[str] | None = None,
        zones: list[str] | None = None,
        cluster: str | None = None,
    ) -> None:
        """Stored statuses: of the servers and zones in order, and of the cluster."""
        async with self.database.transaction(write=True) as session:
            for server_id, status in zip(self.server_ids, servers or [], strict=False):
                await session.execute(
                    update(Server).where(Server.id == server_id).values(status=status)
                )
            for index, status in enumerate(zones or [], start=1):
                await session.execute(
                    update(Zone)
                    .where(Zone.cluster_id == self.cluster_id, Zone.name == f"zone{index}")
                    .values(status=status)
                )
            if cluster is not None:
                await session.execute(
                    update(Cluster).where(Cluster.id == self.cluster_id).values(status=cluster)
                )

    def stop_on_host(self) -> None:
        """The task's server is not running on its host."""
        self.host.exit(self.process)


@pytest.fixture
async def flow(database: Database, tmp_path: Path) -> Flow:
    host = FakeHost()
    host.install(SEEKDB, "seekdb 1.0.0")
    servers = [
        {
            "hostId": 0,
            "kind": "seekdb",
            "sqlPort": 2881 + index,
            "homePath": f"/data/ob1/seekdb{index}",
            "binaryPath": SEEKDB,
            "status": "RUNNING",
        }
        for index in (1, 2)
    ]
    async with database.transaction(write=True) as session:
        stored_host = await add_local_host(session)
        for server in servers:
            server["hostId"] = stored_host.id
        spec = ClusterSpec.model_validate(
            {
                "name": "ob1",
                "obClusterId": 1,
                "status": "RUNNING",
                "zones": [
                    {"name": f"zone{index}", "status": "RUNNING", "servers": [server]}
                    for index, server in enumerate(servers, start=1)
                ],
            }
        )
        cluster = await service.register_cluster(session, spec=spec)
        stored = list(
            await session.scalars(
                select(Server).where(Server.cluster_id == cluster.id).order_by(Server.sql_port)
            )
        )
    processes = [
        host.run_server(
            server.home_path,
            SEEKDB,
            pid_file=f"{server.home_path}/run/seekdb.pid",
            ports=[server.sql_port],
        )
        for server in stored
    ]
    settings = Settings(
        home=tmp_path,
        process_start_timeout=5,
        process_stop_grace=1,
        process_kill_timeout=0.3,
    )
    return Flow(
        database=database,
        host=host,
        settings=settings,
        cluster_id=cluster.id,
        server_ids=[server.id for server in stored],
        processes=processes,
        strings={
            "cluster_id": str(cluster.id),
            "cluster_name": "ob1",
            "former_cluster_status": "RUNNING",
            "zone_name": "zone1",
            "server_id": str(stored[0].id),
        },
    )


# ------------------------------------------------------------------ cluster


@pytest.mark.parametrize(
    ("step", "status"),
    [
        (steps.PrepareStopCluster, ClusterStatus.STOPPING),
        (steps.PrepareStartCluster, ClusterStatus.STARTING),
        (steps.PrepareRestartCluster, ClusterStatus.RESTARTING),
    ],
)
async def test_prepare_cluster_marks_it_and_rolling_back_restores_it(
    flow: Flow, step: type[Subtask], status: ClusterStatus
) -> None:
    await flow.execute(step)
    assert (await flow.cluster()).status == status
    await flow.rollback(step)
    assert (await flow.cluster()).status == ClusterStatus.RUNNING
    assert flow.said("cluster status restored to RUNNING")


@pytest.mark.parametrize(
    ("zones", "derived"),
    [
        (["STOPPED", "STOPPED"], ClusterStatus.STOPPED),
        (["UNAVAILABLE", "RUNNING"], ClusterStatus.RUNNING),
        (["UNAVAILABLE", "STOPPED"], ClusterStatus.UNAVAILABLE),
    ],
)
async def test_update_cluster_status_derives_it_from_its_zones(
    flow: Flow, zones: list[str], derived: ClusterStatus
) -> None:
    await flow.record(zones=zones, cluster="STOPPING")
    await flow.execute(steps.UpdateClusterStatus)
    assert (await flow.cluster()).status == derived


@pytest.mark.parametrize(
    ("step", "reached", "missed"),
    [
        (steps.UpdateStoppedClusterStatus, ["STOPPED", "STOPPED"], ["STOPPED", "RUNNING"]),
        (steps.UpdateRunningClusterStatus, ["RUNNING", "RUNNING"], ["STOPPED", "STOPPED"]),
    ],
)
async def test_update_cluster_status_fails_a_cluster_that_missed_its_goal(
    flow: Flow, step: type[steps.UpdateClusterStatus], reached: list[str], missed: list[str]
) -> None:
    await flow.record(zones=reached)
    await flow.execute(step)
    assert (await flow.cluster()).status == step.expected
    await flow.record(zones=missed)
    with pytest.raises(SubtaskError, match=f"after the operation, expected {step.expected}"):
        await flow.execute(step)
    assert (await flow.cluster()).status != step.expected  # recorded as it is


# ------------------------------------------------------------------ zone


@pytest.mark.parametrize(
    ("step", "status"),
    [
        (steps.PrepareStopZone, ZoneStatus.STOPPING),
        (steps.PrepareStartZone, ZoneStatus.STARTING),
        (steps.PrepareRestartZone, ZoneStatus.RESTARTING),
    ],
)
async def test_prepare_zone_marks_it_and_rolling_back_derives_it_from_its_servers(
    flow: Flow, step: type[Subtask], status: ZoneStatus
) -> None:
    await flow.execute(step)
    assert (await flow.zone()).status == status
    assert (await flow.zone("zone2")).status == ZoneStatus.RUNNING
    await flow.record(servers=["STOPPED"])
    await flow.rollback(step)
    assert (await flow.zone()).status == ZoneStatus.STOPPED


@pytest.mark.parametrize(
    ("servers", "derived"),
    [
        (["STOPPED"], ZoneStatus.STOPPED),
        (["RUNNING"], ZoneStatus.RUNNING),
        (["UNAVAILABLE"], ZoneStatus.UNAVAILABLE),
    ],
)
async def test_update_zone_status_derives_it_from_its_servers(
    flow: Flow, servers: list[str], derived: ZoneStatus
) -> None:
    await flow.record(servers=servers, zones=["STOPPING"])
    await flow.execute(steps.UpdateZoneStatus)
    assert (await flow.zone()).status == derived


@pytest.mark.parametrize(
    ("step", "reached", "missed"),
    [
        (steps.UpdateStoppedZoneStatus, "STOPPED", "RUNNING"),
        (steps.UpdateRunningZoneStatus, "RUNNING", "UNAVAILABLE"),
    ],
)
async def test_update_zone_status_fails_a_zone_that_missed_its_goal(
    flow: Flow, step: type[steps.UpdateZoneStatus], reached: str, missed: str
) -> None:
    await flow.record(servers=[reached])
    await flow.execute(step)
    assert (await flow.zone()).status == step.expected
    await flow.record(servers=[missed])
    with pytest.raises(SubtaskError, match=f"zone1 is {missed} after the operation"):
        await flow.execute(step)


async def test_a_zone_no_longer_registered_fails_its_steps(flow: Flow) -> None:
    flow.strings["zone_name"] = "zone9"
    with pytest.raises(SubtaskError, match="zone zone9 is no longer registered"):
        await flow.execute(steps.UpdateZoneStatus)


# ------------------------------------------------------------------ prepare observer


@pytest.mark.parametrize(
    ("step", "status", "running", "changes"),
    [
        (steps.PrepareStopObserver, "STOPPING", True, "stopped_server_{}"),
        (steps.PrepareStopObserver, "STOPPING", False, None),
        (steps.PrepareStartObserver, "STARTING", False, "started_server_{}"),
        (steps.PrepareStartObserver, "STARTING", True, None),
        (steps.PrepareRestartObserver, "RESTARTING", True, "stopped_server_{}"),
        (steps.PrepareRestartObserver, "RESTARTING", False, None),
    ],
)
async def test_prepare_observer_marks_the_server_and_says_if_the_task_changes_it(
    flow: Flow, step: type[Subtask], status: str, running: bool, changes: str | None
) -> None:
    if not running:
        flow.stop_on_host()
    await flow.execute(step)
    assert (await flow.server()).status == status
    published = {key for key in flow.strings if key.endswith(f"_server_{flow.server_id}")}
    marks = {changes.format(flow.server_id)} if changes else set()
    # A stop's prepare hands on the process it identified, so the stop need not look again.
    handed_on = steps.IDENTIFIED_PROCESS in step.publishes and running
    identified = {steps.IDENTIFIED_PROCESS.key(flow.server_id)} if handed_on else set()
    assert published == marks | identified
    if handed_on:
        process = flow.process
        assert flow.strings[steps.IDENTIFIED_PROCESS.key(flow.server_id)] == (
            f"{process.pid}:{process.start_ticks}"
        )
    assert flow.host.signals == []


async def test_prepare_observer_refuses_a_server_whose_home_another_program_holds(
    flow: Flow,
) -> None:
    flow.stop_on_host()
    flow.host.spawn("/usr/bin/python3", lock=flow.process.lock)
    with pytest.raises(SubtaskError, match="CONFLICT"):
        await flow.execute(steps.PrepareStopObserver)
    assert (await flow.server()).status == ServerStatus.RUNNING


async def test_prepare_observer_fails_when_the_host_cannot_be_read(flow: Flow) -> None:
    flow.host.outage = HostUnreachable(host="db1", step="status", detail="no route to host")
    with pytest.raises(SubtaskError, match=r"cannot read the server's state: .*no route to host"):
        await flow.execute(steps.PrepareStopObserver)
    assert (await flow.server()).status == ServerStatus.RUNNING


@pytest.mark.parametrize(("running", "recorded"), [(True, "RUNNING"), (False, "STOPPED")])
async def test_rolling_back_prepare_observer_records_what_runs(
    flow: Flow, running: bool, recorded: str
) -> None:
    await flow.execute(steps.PrepareStopObserver)
    if not running:
        flow.stop_on_host()
    await flow.rollback(steps.PrepareStopObserver)
    assert (await flow.server()).status == recorded


# ------------------------------------------------------------------ stop observer


@pytest.mark.parametrize("step", [steps.StopObserverProcess, steps.RestartStopObserverProcess])
async def test_stop_observer_process_stops_cleanly_and_passes_on_the_verification(
    flow: Flow, step: type[Subtask]
) -> None:
    await flow.execute(step)
    assert flow.host.signals == [(flow.process.pid, "USR1")]
    assert flow.strings[f"verified_server_{flow.server_id}"] == "STOPPED"


async def test_the_stop_signals_the_process_its_prepare_identified_without_a_look(
    flow: Flow,
) -> None:
    await flow.execute(steps.PrepareStopObserver)
    assert flow.host.probes == ["inspect"]
    await flow.execute(steps.StopObserverProcess)
    assert flow.host.probes == ["inspect", "signal"]  # one look for the whole operation
    assert flow.host.signals == [(flow.process.pid, "USR1")]


async def test_a_process_replaced_since_its_prepare_is_looked_at_again(flow: Flow) -> None:
    await flow.execute(steps.PrepareStopObserver)
    stranger = flow.host.reuse_pid(flow.process, "/usr/bin/sleep")  # its pid, another program
    await flow.execute(steps.StopObserverProcess)
    assert flow.host.probes == ["inspect", "signal", "inspect"]
    assert flow.host.signals == []  # the stranger was never signalled
    assert flow.host.processes[stranger.pid] is stranger
    assert flow.strings[f"verified_server_{flow.server_id}"] == "STOPPED"


async def test_stop_observer_process_forces_and_freezes_when_asked(flow: Flow) -> None:
    flow.strings["freeze_before_stop"] = "true"
    await flow.execute(steps.StopObserverProcess)
    assert flow.processes[0].statements == ["ALTER SYSTEM MINOR FREEZE"]
    flow.strings["force"] = "TRUE"
    flow.strings["server_id"] = str(flow.server_ids[1])
    await flow.execute(steps.StopObserverProcess)
    assert flow.host.signals[-1] == (flow.processes[1].pid, "KILL")
    assert flow.processes[1].statements == []


async def test_a_failed_stop_records_the_servers_real_status(flow: Flow) -> None:
    flow.process.clean_stop = CleanStop.TRAPPED
    flow.process.survives_kill = True
    with pytest.raises(SubtaskError, match=r"stop failed: .*still runs"):
        await flow.execute(steps.StopObserverProcess)
    assert (await flow.server()).status == ServerStatus.RUNNING
    assert f"verified_server_{flow.server_id}" not in flow.strings


async def test_a_host_lost_during_a_stop_leaves_the_server_unavailable(flow: Flow) -> None:
    flow.host.outage = HostUnreachable(host="db1", step="stop", detail="connection reset")
    with pytest.raises(SubtaskError, match="stop failed"):
        await flow.execute(steps.StopObserverProcess)
    assert (await flow.server()).status == ServerStatus.UNAVAILABLE
    assert flow.said("cannot read the status of")


async def test_rolling_back_a_stop_starts_only_a_server_the_task_stopped(flow: Flow) -> None:
    flow.stop_on_host()
    await flow.rollback(steps.StopObserverProcess)
    assert flow.said("this task did not stop the server: nothing to start again")
    assert flow.host.launches == []

    flow.strings[f"stopped_server_{flow.server_id}"] = "true"
    await flow.rollback(steps.StopObserverProcess)
    server = await flow.server()
    assert (server.status, server.stop_time) == (ServerStatus.RUNNING, None)
    assert server.start_time is not None
    assert len(flow.host.launches) == 1


# ------------------------------------------------------------------ start observer


@pytest.mark.parametrize("step", [steps.StartObserverProcess, steps.RestartStartObserverProcess])
async def test_start_observer_process_starts_and_records_it_running(
    flow: Flow, step: type[Subtask]
) -> None:
    flow.stop_on_host()
    await flow.record(servers=["STARTING"])
    await flow.execute(step)
    server = await flow.server()
    assert (server.status, server.stop_time) == (ServerStatus.RUNNING, None)
    assert server.start_time is not None
    assert [launch["cwd"] for launch in flow.host.launches] == [server.home_path]
    assert flow.strings[f"verified_server_{flow.server_id}"] == "RUNNING"


async def test_a_failed_start_records_the_servers_real_status(flow: Flow) -> None:
    flow.stop_on_host()
    await flow.record(servers=["STARTING"])
    flow.host.launch_next(Launch(exit_status=1))
    with pytest.raises(SubtaskError, match=r"start failed: .*seekdb exited at once"):
        await flow.execute(steps.StartObserverProcess)
    assert (await flow.server()).status == ServerStatus.STOPPED


async def test_rolling_back_a_start_stops_only_a_server_the_task_started(flow: Flow) -> None:
    await flow.rollback(steps.StartObserverProcess)
    assert flow.said("this task did not start the server: nothing to stop again")
    assert flow.host.signals == []

    flow.strings[f"started_server_{flow.server_id}"] = "true"
    await flow.rollback(steps.StartObserverProcess)
    server = await flow.server()
    assert server.status == ServerStatus.STOPPED
    assert server.stop_time is not None
    assert flow.host.signals == [(flow.process.pid, "USR1")]


async def test_a_failed_stop_while_rolling_back_a_start_records_the_real_status(
    flow: Flow,
) -> None:
    flow.strings[f"started_server_{flow.server_id}"] = "true"
    flow.process.clean_stop = CleanStop.TRAPPED
    flow.process.survives_kill = True
    await flow.record(servers=["STARTING"])
    with pytest.raises(SubtaskError, match="stop failed"):
        await flow.rollback(steps.StartObserverProcess)
    assert (await flow.server()).status == ServerStatus.RUNNING


async def test_rolling_back_a_restart_leaves_the_server_running(flow: Flow) -> None:
    flow.strings[f"started_server_{flow.server_id}"] = "true"
    await flow.rollback(steps.RestartStartObserverProcess)
    assert flow.said("a restarted server stays running")
    assert flow.host.signals == []


# ------------------------------------------------------------------ update observer status


@pytest.mark.parametrize(
    "step", [steps.UpdateStoppedObserverStatus, steps.UpdateRunningObserverStatus]
)
async def test_update_observer_status_takes_the_verification_of_the_step_before(
    flow: Flow, step: type[steps.UpdateObserverStatus]
) -> None:
    await flow.record(servers=["OPERATING"])
    flow.strings[f"verified_server_{flow.server_id}"] = step.expected
    await flow.execute(step)
    server = await flow.server()
    assert server.status == step.expected
    assert (server.stop_time is not None) == (step.expected == ServerStatus.STOPPED)
    assert flow.strings[f"verified_server_{flow.server_id}"] == ""  # used once
    assert flow.host.probes == []


async def test_update_observer_status_looks_at_the_host_without_a_verification(
    flow: Flow,
) -> None:
    await flow.record(servers=["STARTING"])
    await flow.execute(steps.UpdateRunningObserverStatus)
    assert (await flow.server()).status == ServerStatus.RUNNING

    flow.stop_on_host()
    await flow.record(servers=["STOPPING"])
    await flow.execute(steps.UpdateStoppedObserverStatus)
    server = await flow.server()
    assert server.status == ServerStatus.STOPPED
    assert server.stop_time is not None
    assert flow.host.probes == ["inspect", "inspect"]


async def test_update_observer_status_fails_a_server_that_missed_its_goal(flow: Flow) -> None:
    with pytest.raises(SubtaskError, match="is RUNNING, expected STOPPED"):
        await flow.execute(steps.UpdateStoppedObserverStatus)
    assert (await flow.server()).status == ServerStatus.RUNNING
