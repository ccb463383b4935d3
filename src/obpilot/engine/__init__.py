"""obpilot's durable task engine: OCP-style tasks (a DAG of subtasks) stored in the metadb
and run by a worker pool in every obpilot process. No FastAPI here.

Defining an operation (the whole interface for flows/ and hosts/):

    from obpilot.engine import Catalog, Context, Subtask, SubtaskContext, SubtaskError
    from obpilot.engine import Engine, Template, parallel, single, submit

    class StopObserverProcess(Subtask):
        name = "Stop observer process"          # also the description unless set
        timeout = 600                            # s; exceeded -> FAILED, TSK10012
        retryable = skippable = rollbackable = True
        resumable = True                         # may run again after a crash mid-way

        async def execute(self, ctx: SubtaskContext[FlowResources]) -> None:
            server_id = ctx.item                 # listMap["server_ids"][parallelIdx]
            ctx.log(f"stopping server {server_id}")   # lands in subtask_log at once
            ctx.check_cancelled()                # cooperative cancel checkpoint
            await ctx.publish("stopped_pid", 4242)    # readable by later stages
            raise SubtaskError("port 2881 still open")  # -> FAILED with this message

        async def rollback(self, ctx: SubtaskContext[FlowResources]) -> None: ...  # optional

    STOP = Template(key="ob.cluster.stop", name="Stop OB cluster", stages=[
        single(PrepareStopCluster),
        parallel(PrepareStopZone, over="zone_names"),
        parallel(StopObserverProcess, over="server_ids"),   # Wait node inserted between
        single(UpdateClusterStatus),
    ], on_end=release_cluster_lock)               # optional hook, same transaction
    TEMPLATES = [STOP]                            # what a module hands the catalog

    catalog = Catalog()                           # at start-up, once, in the app
    catalog.register(*TEMPLATES)                  # the templates and their subtask classes
    engine = Engine(database, config, catalog=catalog, resources=FlowResources(...))

    task = await submit(session, STOP, Context.of(
        {"cluster_name": "ob1", "cluster_id": 21, "former_cluster_status": "RUNNING"},
        {"server_ids": [5], "zone_names": ["zone1"]}),
        creator_id=user.id, creator_name=user.username,
        cluster_id=21, cluster_name="ob1", ob_cluster_id=22,
        executor=engine.executor)                # this instance's name, shown as `executor`

`submit` writes into the caller's transaction (commit it together with the cluster lock);
the local workers are woken when it commits. The engine knows templates (by key) and
subtask classes (by `class_name`, default `module.QualName`, stored as `className`)
through its `Catalog`, filled by one explicit call at start-up; every instance sharing the
metadb must register the same ones (the app registers `flows.TEMPLATES`, then the
`TEMPLATES` of each module in OBPILOT_EXTRA_MODULES). A `TemplateFamily` stands for
templates built per count (a rolling restart per number of zones). Handlers see what the
app hands them as `ctx.resources`, typed by their context (`SubtaskContext[R]`); they run
outside any metadb transaction; `ctx.database` is there for short transactions of their
own.

Operations (OCP's rules, in the caller's transaction): `retry_task`, `rollback_task`,
`retry_subtask`, `skip_subtask` (given the catalog: a subtask class's flags, the end hook
of a task they settle), `cancel_subtask`. Reading: `obpilot.tasks.service`
renders tasks in OCP's shapes (`brief_of` for an operation's answer, shape A).

Inside: `transitions` decides every status change (pure); `service` (operations) and
`progress` (claims, ends of runs, successors, lost leases, settling) apply those decisions
through `repository`; `dispatch` (the `Engine`), `run`, `leases` and `logwriter` are the
worker pool of one process; `catalog` is what it knows."""

from obpilot.engine.catalog import Catalog
from obpilot.engine.config import EngineConfig
from obpilot.engine.context import Context
from obpilot.engine.dispatch import Engine
from obpilot.engine.models import SubtaskInstance, TaskInstance
from obpilot.engine.notifier import notify_after_commit
from obpilot.engine.service import (
    Submitted,
    cancel_subtask,
    retry_subtask,
    retry_task,
    rollback_task,
    skip_subtask,
    submit,
    submit_task,
)
from obpilot.engine.states import (
    FailureCode,
    SubtaskOperation,
    SubtaskStatus,
    TaskOperation,
    TaskStatus,
    TaskType,
)
from obpilot.engine.subtask import (
    Subtask,
    SubtaskCancelled,
    SubtaskContext,
    SubtaskError,
    WaitNode,
)
from obpilot.engine.template import Stage, Template, TemplateFamily, parallel, single

__all__ = [
    "Catalog",
    "Context",
    "Engine",
    "EngineConfig",
    "FailureCode",
    "Stage",
    "Submitted",
    "Subtask",
    "SubtaskCancelled",
    "SubtaskContext",
    "SubtaskError",
    "SubtaskInstance",
    "SubtaskOperation",
    "SubtaskStatus",
    "TaskInstance",
    "TaskOperation",
    "TaskStatus",
    "TaskType",
    "Template",
    "TemplateFamily",
    "WaitNode",
    "cancel_subtask",
    "notify_after_commit",
    "parallel",
    "retry_subtask",
    "retry_task",
    "rollback_task",
    "single",
    "skip_subtask",
    "submit",
    "submit_task",
]
