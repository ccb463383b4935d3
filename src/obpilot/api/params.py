"""Path parameters shared by the routes. OCP ids are Java Longs: 1 .. 2^63-1.

An id in a path is read strictly: plain decimal digits, no sign, no leading zero, no
space, no underscore, no fraction. Lenient parsing would let `1.0`, `+1`, `%201`, `1_0`
or `0001` name cluster 1 while a permission check on the text saw another object; with
one strict reading, the permission check and the route act on the same integer."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from pydantic import BeforeValidator

from obpilot.errors import BadRequest

MAX_ID = 2**63 - 1
_ID = re.compile(r"[1-9][0-9]{0,18}")


def parse_id(raw: object, *, name: str = "id") -> int:
    """The integer an id path segment names, or BadRequest for anything else."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_ID:
        return raw
    text = raw if isinstance(raw, str) else ""
    if _ID.fullmatch(text) and int(text) <= MAX_ID:
        return int(text)
    shown = repr(raw)[:40]
    raise BadRequest(f"{name}: {shown} is not an id (a whole number from 1 to {MAX_ID})")


def _id_validator(name: str) -> BeforeValidator:
    def check(raw: object) -> int:
        try:
            return parse_id(raw, name=name)
        except BadRequest as error:
            raise ValueError(error.message) from None

    return BeforeValidator(check)


_RANGE = {"minimum": 1, "maximum": MAX_ID}

ClusterId = Annotated[
    int,
    _id_validator("id"),
    Path(description="OCP cluster id (not obClusterId).", json_schema_extra=_RANGE),
]
HostId = Annotated[
    int, _id_validator("hostId"), Path(description="Host id.", json_schema_extra=_RANGE)
]
ServerId = Annotated[
    int, _id_validator("serverId"), Path(description="OB server id.", json_schema_extra=_RANGE)
]
CredentialId = Annotated[
    int, _id_validator("credentialId"), Path(description="Credential id.", json_schema_extra=_RANGE)
]
TaskId = Annotated[
    int,
    _id_validator("taskInstanceId"),
    Path(description="Task instance id.", json_schema_extra=_RANGE),
]
SubtaskId = Annotated[
    int,
    _id_validator("subtaskInstanceId"),
    Path(description="Subtask instance id.", json_schema_extra=_RANGE),
]
UserId = Annotated[int, _id_validator("id"), Path(description="User id.", json_schema_extra=_RANGE)]
RoleId = Annotated[int, _id_validator("id"), Path(description="Role id.", json_schema_extra=_RANGE)]
ZoneName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Zone name (letters, digits, `_`, `-`, `.`).",
    ),
]
AccessKeyIdParam = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="AccessKeyId.")
]
PackageId = Annotated[
    int, _id_validator("id"), Path(description="Software package id.", json_schema_extra=_RANGE)
]
RegionId = Annotated[
    int, _id_validator("regionId"), Path(description="Region id.", json_schema_extra=_RANGE)
]
IdcId = Annotated[
    int, _id_validator("idcId"), Path(description="IDC id.", json_schema_extra=_RANGE)
]
HostTypeId = Annotated[
    int, _id_validator("hostTypeId"), Path(description="Host type id.", json_schema_extra=_RANGE)
]
