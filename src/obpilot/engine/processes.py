"""Which process holds a lease, told apart from every other on its machine.

A pid names a process only among processes that share a kernel boot and a pid namespace
(two containers on one kernel see different processes under one pid), and a pid is reused
once its process ends; its start time, counted from boot, never is. So a holder is its
machine (the boot id and the pid namespace), its pid and that process's start time, and
any instance on the same machine can tell from /proc, at once, that a holder has ended."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessIdentity:
    machine: str  # "<kernel boot id>/<pid namespace inode>": where pids mean one thing
    pid: int
    started: int  # start time in clock ticks since boot (/proc/<pid>/stat, field 22)


def _start_ticks(pid: int) -> int | None:
    """The start time of running process `pid`; None when there is none (or a zombie)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, started = fields[0], fields[19]
    return None if state in ("Z", "X") else int(started)


def this_process() -> ProcessIdentity | None:
    """This process's identity; None where there is no /proc to tell it by."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(PROC / "self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None
    started = _start_ticks(os.getpid())
    if started is None:
        return None
    return ProcessIdentity(f"{boot}/{namespace[5:-1]}", os.getpid(), started)


def has_ended(identity: ProcessIdentity) -> bool:
    """Whether the process `identity` names (on this machine) has ended: its pid is gone,
    a zombie, or another process's now."""
    return _start_ticks(identity.pid) != identity.started
