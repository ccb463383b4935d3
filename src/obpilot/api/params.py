"""Path parameters shared by the routes. OCP ids are Java Longs: 1 .. 2^63-1."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**63 - 1

ClusterId = Annotated[int, Path(ge=1, le=MAX_ID, description="OCP cluster id (not obClusterId).")]
HostId = Annotated[int, Path(ge=1, le=MAX_ID, description="Host id.")]
ZoneName = Annotated[str, Path(min_length=1, max_length=128, description="Zone name.")]
ServerId = Annotated[int, Path(ge=1, le=MAX_ID, description="OB server id.")]
