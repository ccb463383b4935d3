"""Prepare host: the task of a batch of new hosts (`POST /api/v2/compute/hosts/batchCreate`),
named as OCP names it. The request recorded the hosts as NEW; for each host, in parallel,
"Pre check for create host" logs in (an SSH host's first login records the host key it
offers, as adding one host does) and asks the host's agent for one `survey`, which must
show what obpilot's agent and servers need: Python 3.8+, /proc, coreutils' `timeout`,
enough available memory and free disk. Every finding is logged; a failed one fails the
subtask with its reasons and the host stays NEW, until a retry after the repair. The
pre-check records the system the host reported (`operatingSystem`, `architecture`), and
"Update host status" then makes the host AVAILABLE.

Both steps are idempotent: a retry looks again, records the same key (the first recorded
stays), the same system and the same status.

The system is recorded as the agent's link made it (printable: `hosts.agent_link`), and
no longer than its column holds: a host may report anything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import String

from obpilot.credentials.service import pinned_host_target
from obpilot.engine import Subtask, SubtaskError, Template, parallel
from obpilot.errors import ObpilotError
from obpilot.flows.common import FlowContext
from obpilot.hosts.access import HostTarget
from obpilot.hosts.protocol import SURVEY, SurveyAnswer, SurveyRequest
from obpilot.hosts.ssh import SshTarget
from obpilot.inventory import service as inventory
from obpilot.inventory.models import Host

#: The context list a Prepare host task fans out over.
HOST_IDS = "host_ids"
#: The oldest Python that obpilot's agent and drivers are checked against on a new host.
MIN_PYTHON = (3, 8)
#: Seconds the survey may take once the agent runs (it reads a few small files).
SURVEY_TIME_LIMIT = 30.0
GIB = 1024**3


@dataclass(frozen=True)
class Finding:
    """One check of a new host, as the pre-check logs it."""

    passed: bool
    text: str


@dataclass(frozen=True)
class Thresholds:
    min_memory_available: int
    min_free_disk: int


def login_home(target: HostTarget) -> str:
    """Where the login's files would go: this process's home on the local host, the usual
    home of the SSH user elsewhere. The survey measures a missing path on its nearest
    existing ancestor, so a guess still names the file system that would hold it."""
    if isinstance(target, SshTarget):
        user = target.credential.username
        return "/root" if user == "root" else f"/home/{user}"
    return str(Path.home())


def stored_system(text: str, column: str) -> str:
    """As much of what a host reports of its system as the host's `column` holds."""
    length = cast(String, Host.__table__.c[column].type).length
    return text[:length]


def _gib(amount: int) -> str:
    return f"{amount / GIB:.1f} GiB"


def findings(answer: SurveyAnswer, *, home: str, thresholds: Thresholds) -> list[Finding]:
    """Every check of the pre-check, passed or not, from one survey of `/` and `home`."""
    python = tuple(int(part) for part in answer["python"].split(".")[:2] if part.isdigit())
    wanted_python = ".".join(map(str, MIN_PYTHON))
    memory = answer["memory_available"]
    disks = {path: answer["paths"][path]["free_bytes"] for path in ("/", home)}
    roomiest = max(disks, key=lambda path: disks[path])
    return [
        Finding(
            python >= MIN_PYTHON,
            f"python3 {answer['python']} (needs {wanted_python} or later)",
        ),
        Finding(answer["proc"], "/proc is mounted" if answer["proc"] else "/proc is missing"),
        Finding(
            answer["timeout"] is not None,
            f"coreutils timeout: {answer['timeout'] or 'not found on the PATH'}",
        ),
        Finding(
            memory >= thresholds.min_memory_available,
            f"memory available: {_gib(memory)} of {_gib(answer['memory_total'])} "
            f"(needs {_gib(thresholds.min_memory_available)})",
        ),
        Finding(
            disks[roomiest] >= thresholds.min_free_disk,
            f"free disk: {_gib(disks[roomiest])} at {roomiest} "
            f"(needs {_gib(thresholds.min_free_disk)} on / or {home})",
        ),
    ]


class PreCheckForCreateHost(Subtask):
    name = "Pre check for create host"
    description = "Log in to the host and check Python, /proc, timeout, memory and disk"
    timeout = 300
    resumable = True  # it looks, and records only the first host key
    skippable = False  # an unchecked host must not become AVAILABLE

    async def execute(self, ctx: FlowContext) -> None:
        host_id = int(ctx.item)
        resources = ctx.resources
        try:
            host, target = await pinned_host_target(
                ctx.database,
                host_id=host_id,
                host_access=resources.host_access,
                secret_box=resources.secret_box,
            )
            executor = resources.host_access.executor(host_id, target)
            home = login_home(target)
            answer = await executor.agent.call(
                SURVEY,
                SurveyRequest(paths=["/", home], ports=[]),
                step="survey the host",
                time_limit=SURVEY_TIME_LIMIT,
            )
        except (ObpilotError, OSError, TimeoutError) as error:
            message = error.message if isinstance(error, ObpilotError) else str(error)
            raise SubtaskError(f"host {host_id}: cannot log in and survey it: {message}") from None
        async with ctx.database.transaction(write=True) as session:
            await inventory.record_host_system(
                session,
                host_id,
                operating_system=stored_system(answer["operating_system"], "operating_system"),
                architecture=stored_system(answer["architecture"], "architecture"),
            )
        settings = resources.settings
        checks = findings(
            answer,
            home=home,
            thresholds=Thresholds(settings.host_min_memory_available, settings.host_min_free_disk),
        )
        ctx.log(f"host {host.name}: {answer['operating_system']}, {answer['architecture']}")
        for finding in checks:
            ctx.log(f"host {host.name}: {'ok' if finding.passed else 'FAILED'}: {finding.text}")
        failed = [finding.text for finding in checks if not finding.passed]
        if failed:
            raise SubtaskError(
                f"host {host.name} is not ready: {'; '.join(failed)}; repair it and retry"
            )


class UpdateHostStatus(Subtask):
    name = "Update host status"
    description = "Make the checked host AVAILABLE"
    timeout = 30
    resumable = True

    async def execute(self, ctx: FlowContext) -> None:
        host_id = int(ctx.item)
        async with ctx.database.transaction(write=True) as session:
            await inventory.mark_host_available(session, host_id)
        ctx.log(f"host {host_id} is AVAILABLE")


PREPARE_HOST = Template(
    key="compute.host.prepare",
    name="Prepare host",
    stages=[
        parallel(PreCheckForCreateHost, over=HOST_IDS),
        parallel(UpdateHostStatus, over=HOST_IDS),
    ],
)
