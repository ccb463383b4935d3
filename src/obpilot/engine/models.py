"""Task engine tables, in the spirit of OCP's: task_instance, subtask_instance, the
dependency edges, subtask outputs, and subtask_log (one row per line, per run)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from obpilot.db.base import Base, BigId, TimestampMixin, UtcDateTime, utcnow


class TaskInstance(TimestampMixin, Base):
    __tablename__ = "task_instance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256))
    template: Mapped[str | None] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    operation: Mapped[str] = mapped_column(String(16))
    cluster_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    cluster_name: Mapped[str | None] = mapped_column(String(128))
    ob_cluster_id: Mapped[int | None] = mapped_column(BigInteger)
    tenant_id: Mapped[int | None] = mapped_column(BigInteger)
    host_id: Mapped[int | None] = mapped_column(BigInteger)
    creator_id: Mapped[int | None] = mapped_column(BigInteger)
    creator_name: Mapped[str | None] = mapped_column(String(64))
    executor: Mapped[str | None] = mapped_column(String(128))
    context: Mapped[str] = mapped_column(Text)
    # Whether any subtask published outputs (spares the lookup for the many tasks without).
    has_outputs: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped by every change of status or operation: the fencing token of transitions.
    version: Mapped[int] = mapped_column(Integer, default=0)
    start_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finish_time: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SubtaskInstance(TimestampMixin, Base):
    __tablename__ = "subtask_instance"
    __table_args__ = (Index("ix_subtask_instance_task_id_status", "task_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("task_instance.id", ondelete="CASCADE"))
    series_id: Mapped[int] = mapped_column(Integer)
    stage: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(String(512))
    class_name: Mapped[str] = mapped_column(String(256))
    node_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    operation: Mapped[str] = mapped_column(String(16))
    run_time: Mapped[int] = mapped_column(Integer, default=1)
    timeout: Mapped[int] = mapped_column(Integer)
    executor: Mapped[str | None] = mapped_column(String(128))
    # The current claim: only the holder of this token may renew or finish the run.
    lease_token: Mapped[str | None] = mapped_column(String(32), index=True)
    lease_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The holder's machine and process (its boot id): after a restart, an instance (the
    # same `executor` on the same machine, a new boot id) knows the leases of its previous
    # boots and takes those subtasks back at once (`transitions.previous_boot`).
    lease_host: Mapped[str | None] = mapped_column(String(255))
    lease_boot: Mapped[str | None] = mapped_column(String(32))
    # The holder's process as its machine knows it (`engine.processes`): any instance on
    # that machine that finds the process ended takes the subtask back at once, whatever
    # its own name (`transitions.holder_ended`).
    lease_machine: Mapped[str | None] = mapped_column(String(80))
    lease_pid: Mapped[int | None] = mapped_column(Integer)
    lease_pid_started: Mapped[int | None] = mapped_column(BigInteger)
    parallel_idx: Mapped[int] = mapped_column(Integer, default=-1)
    parallel_key: Mapped[str | None] = mapped_column(String(128))
    prohibit_rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    resumable: Mapped[bool] = mapped_column(Boolean, default=False)
    # Upstreams not yet SUCCESSFUL; the subtask becomes READY when it reaches 0.
    upstreams_left: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    start_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finish_time: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SubtaskDependency(Base):
    __tablename__ = "subtask_dependency"

    parent_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subtask_instance.id", ondelete="CASCADE"), primary_key=True
    )
    child_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subtask_instance.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    task_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("task_instance.id", ondelete="CASCADE"), index=True
    )


# subtask_output and subtask_log have no foreign keys on purpose: on MySQL-family metadbs a
# foreign-key check share-locks the parent row, and these frequent inserts would then
# contend (and deadlock) with transitions, which lock the task row first.


class SubtaskOutput(Base):
    """What a subtask published for later subtasks (`ctx.publish`)."""

    __tablename__ = "subtask_output"
    __table_args__ = (
        Index("ix_subtask_output_subtask_id_output_key", "subtask_id", "output_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(BigId, index=True)
    subtask_id: Mapped[int] = mapped_column(BigId)
    stage: Mapped[int] = mapped_column(Integer)
    parallel_idx: Mapped[int] = mapped_column(Integer)
    output_key: Mapped[str] = mapped_column(String(128))
    is_list: Mapped[bool] = mapped_column(Boolean)
    output_value: Mapped[str] = mapped_column(Text)  # the string, or a JSON list of strings


class SubtaskLog(Base):
    __tablename__ = "subtask_log"
    __table_args__ = (
        Index("ix_subtask_log_task_id_id", "task_id", "id"),
        Index("ix_subtask_log_subtask_id_run_time", "subtask_id", "run_time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(BigId)
    subtask_id: Mapped[int] = mapped_column(BigId)
    run_time: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    content: Mapped[str] = mapped_column(Text)
