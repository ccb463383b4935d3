"""A lease holder's process, told apart on its machine: this process, a child that ended
(and one not yet reaped), and a pid that another process has now."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

from obpilot.engine.processes import ProcessIdentity, has_ended, this_process


def test_this_process_is_running_under_its_identity() -> None:
    me = this_process()
    assert me is not None
    assert me.pid == os.getpid()
    boot, namespace = me.machine.split("/")
    assert len(boot) == 36
    assert namespace.isdigit()
    assert not has_ended(me)
    assert this_process() == me  # the same, asked again


def test_a_pid_with_another_start_time_is_another_process() -> None:
    me = this_process()
    assert me is not None
    assert has_ended(replace(me, started=me.started + 1))


def test_a_child_has_ended_once_it_exits_even_before_it_is_reaped() -> None:
    me = this_process()
    assert me is not None
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        with open(f"/proc/{child.pid}/stat") as stat:
            started = int(stat.read().rsplit(")", 1)[1].split()[19])
        identity = ProcessIdentity(me.machine, child.pid, started)
        assert not has_ended(identity)
        assert child.stdin is not None
        child.stdin.close()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie: exited, not reaped
        assert has_ended(identity)
    finally:
        child.wait()
    assert has_ended(identity)
