"""Request dependencies for reaching hosts: the instance's secret box and host pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from obpilot.hosts.access import HostAccess
from obpilot.secretbox import SecretBox


def get_secret_box(request: Request) -> SecretBox:
    state = request.app.state
    box: SecretBox | None = getattr(state, "secret_box", None)
    if box is None:  # normally made at start-up; made here for apps started without it
        settings = state.settings
        key = settings.secret_key.get_secret_value() if settings.secret_key else None
        box = SecretBox.from_settings(home=settings.home, key=key)
        state.secret_box = box
    return box


def get_host_access(request: Request) -> HostAccess:
    access: HostAccess = request.app.state.host_access
    return access


SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]
HostAccessDep = Annotated[HostAccess, Depends(get_host_access)]
