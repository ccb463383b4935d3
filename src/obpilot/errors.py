"""The one error hierarchy. Each error carries its HTTP status and OCP 4.x error code;
`obpilot.api.handlers` renders every one of them as the OCP error envelope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One finding about one field of a request (OCP's `subErrors` entry), so that a form
    can show it next to the field: `field` is its path in the body
    (`zones[0].servers[1].sqlPort`)."""

    field: str
    message: str
    rejected_value: object = None


class ObpilotError(Exception):
    status_code: int = 500
    code: str = "COM10999"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        problems: Sequence[FieldProblem] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = tuple(problems)
        if code is not None:
            self.code = code


class BadRequest(ObpilotError):
    """A parameter is missing, malformed or out of range."""

    status_code = 400
    code = "COM10001"


class NotFound(ObpilotError):
    status_code = 404
    code = "COM10002"


class ClusterNotFound(NotFound):
    code = "OBE11001"

    def __init__(self, cluster_id: int) -> None:
        super().__init__(f"OB cluster not found, id: {cluster_id}")


class ZoneNotFound(NotFound):
    code = "OBE18002"

    def __init__(self, cluster_id: int, zone_name: str) -> None:
        super().__init__(f"OB zone not found: {zone_name} in cluster {cluster_id}")


class ServerNotFound(NotFound):
    code = "OBE19001"

    def __init__(self, server_id: int) -> None:
        super().__init__(f"OB server not found, id: {server_id}")


class HostNotFound(NotFound):
    code = "CMP07005"

    def __init__(self, host_id: int) -> None:
        super().__init__(f"Host <{host_id}> does not exist")


class Conflict(ObpilotError):
    status_code = 409
    code = "COM10005"


class DuplicateName(Conflict):
    code = "COM10006"


class HostAlreadyExists(Conflict):
    code = "CMP07001"

    def __init__(self, address: str, ssh_port: int) -> None:
        super().__init__(f"Host <{address}:{ssh_port}> already exists")


class HostInUse(Conflict):
    code = "CMP07000"


class HostFindings(Conflict):
    """A host cannot take the servers asked of it (a port in use, a directory in the
    way, too little memory or disk)."""

    code = "CMP07010"


class MethodNotAllowed(ObpilotError):
    status_code = 405
    code = "COM10008"


class UnsupportedMediaType(ObpilotError):
    status_code = 415
    code = "COM10003"


class PayloadTooLarge(ObpilotError):
    """The request body is larger than the configured limit (OCP documents no code for
    it, so obpilot names its own)."""

    status_code = 413
    code = "COM10413"


class NotServed(ObpilotError):
    """An OCP resource that obpilot does not manage (tenants, obproxy, arbitration)."""

    status_code = 501
    code = "COM10501"


class Unexpected(ObpilotError):
    status_code = 500
    code = "COM10999"


class TooManyRequests(ObpilotError):
    """A per-user or per-instance cap is reached (OCP throttles with 429 too; it documents
    no code for it, so obpilot names its own)."""

    status_code = 429
    code = "COM10429"


class NotAuthenticated(ObpilotError):
    """No usable credentials (or a bad signature / session): 401 with a Basic challenge."""

    status_code = 401
    code = "IAM10000"
    headers = {"WWW-Authenticate": 'Basic realm="obpilot"'}


class AccountDisabled(NotAuthenticated):
    code = "IAM10001"


class AccountLocked(NotAuthenticated):
    code = "IAM10003"


class BadCredentials(NotAuthenticated):
    code = "IAM10004"


class Forbidden(ObpilotError):
    status_code = 403
    code = "IAM11000"


class CrossSiteWrite(Forbidden):
    """A write on the API that a browser sent from another site, such as a forged form."""


class ClusterUpdateForbidden(Forbidden):
    code = "OBE11065"


class UserNotFound(NotFound):
    def __init__(self, user_id: int | str) -> None:
        super().__init__(f"User {user_id} does not exist")


class RoleNotFound(NotFound):
    def __init__(self, role: int | str) -> None:
        super().__init__(f"Role {role} does not exist")


class AccessKeyNotFound(NotFound):
    def __init__(self, access_key_id: str) -> None:
        super().__init__(f"Access key {access_key_id} does not exist")


class CredentialNotFound(NotFound):
    code = "COM10002"

    def __init__(self, credential_id: int) -> None:
        super().__init__(f"Credential <{credential_id}> does not exist")


class CredentialInUse(Conflict):
    code = "COM10005"


class HostError(ObpilotError):
    """A host could not be reached, or a command on it failed. The message always says
    which host, which step and why."""

    status_code = 500
    code = "CMP07002"
    reason = "failed"

    def __init__(self, *, host: str, step: str, detail: str) -> None:
        super().__init__(f"Host {host}: {step}: {self.reason}: {detail}")
        self.host = host
        self.step = step
        self.detail = detail


class HostUnreachable(HostError):
    status_code = 400
    reason = "unreachable"


class HostAuthenticationFailed(HostError):
    status_code = 400
    reason = "authentication failed"


class HostKeyChanged(HostError):
    """The host offered an SSH host key other than the one recorded when it was added."""

    status_code = 400
    reason = "host key changed"


class HostCommandTimeout(HostError):
    reason = "timed out"


class HostFileCopyFailed(HostError):
    reason = "copying a file failed"


class HostCommandFailed(HostError):
    reason = "command failed"

    def __init__(
        self, *, host: str, step: str, exit_status: int | None, stderr: str, detail: str = ""
    ) -> None:
        status = "killed by a signal" if exit_status is None else f"exit status {exit_status}"
        super().__init__(
            host=host,
            step=step,
            detail=f"{status}; stderr: {stderr.strip()[-2000:] or '(empty)'}"
            + (f"; {detail}" if detail else ""),
        )
        self.exit_status = exit_status
        self.stderr = stderr


class InvalidServerParameter(BadRequest):
    """A server parameter the process would reject (or silently misuse) at start."""


class ServerProcessError(ObpilotError):
    """A server process could not be started or stopped; `cause` names why."""

    status_code = 409
    code = "OBE19003"

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class TaskNotFound(NotFound):
    code = "TSK10001"

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} does not exist")


class SubtaskNotFound(NotFound):
    code = "TSK10001"

    def __init__(self, task_id: int, subtask_id: int) -> None:
        super().__init__(f"Subtask {subtask_id} of task {task_id} does not exist")


class TaskStateInvalid(BadRequest):
    """The operation is not allowed in the task's or subtask's current state."""

    code = "TSK10007"


class TaskRollbackProhibited(BadRequest):
    code = "TSK10009"


class SubtaskSkipProhibited(BadRequest):
    code = "TSK10010"


class ClusterStateConflict(Conflict):
    """The cluster's status does not allow the operation."""

    code = "OBE11007"

    def __init__(self, name: str, status: str, operation: str) -> None:
        super().__init__(
            f"OB cluster {name} in state [{status}] does not support this operation: {operation}"
        )


class ClusterBusy(Conflict):
    """An earlier operation on the cluster has not finished."""

    code = "OBE11020"

    def __init__(self, name: str, task_id: int, task_name: str, task_status: str) -> None:
        super().__init__(
            f"The previous O&M task on OB cluster {name} has not finished: task {task_id} "
            f"({task_name}) is {task_status}; retry, skip or roll it back first"
        )
        self.task_id = task_id


class ZoneStateConflict(Conflict):
    code = "OBE18004"

    def __init__(self, zone: str, status: str, operation: str) -> None:
        super().__init__(f"OB zone {zone} in state [{status}] does not support: {operation}")


class ServerStateConflict(Conflict):
    code = "OBE19003"

    def __init__(self, server: str, status: str, operation: str) -> None:
        super().__init__(f"OB server {server} in state [{status}] does not support: {operation}")


class DuplicateServer(Conflict):
    """Two servers on one host with the same port or home (in one request, or against a
    server obpilot already manages)."""


class LastServerStop(Conflict):
    code = "OBE19020"

    def __init__(self, server: str, cluster: str) -> None:
        super().__init__(
            f"Cannot stop {server}: it is the last running server of OB cluster {cluster}; "
            "stop the cluster instead"
        )


class PackageNotFound(NotFound):
    """No software package by that id, or none that can install what was asked."""


class PackageRejected(BadRequest):
    """A file that is not a software package obpilot can install; the message names why."""


class DuplicatePackage(Conflict):
    """The same file (by sha1) or the same file name is already registered."""


class PackageInUse(Conflict):
    """Servers are installed from the package."""


class CatalogEntryNotFound(NotFound):
    """No region, IDC or host type by that id."""

    def __init__(self, kind: str, entry_id: int) -> None:
        super().__init__(f"{kind} <{entry_id}> does not exist")


class CatalogEntryInUse(Conflict):
    """A region that still has IDCs, an IDC or a host type that hosts still name."""
