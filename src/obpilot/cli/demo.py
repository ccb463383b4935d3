"""`obpilot demo [--zones N --servers-per-zone M --host H --port P] [--down]`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pydantic import SecretStr

from obpilot.demo import runner
from obpilot.demo.client import DemoError
from obpilot.demo.state import DemoFiles
from obpilot.logging import configure_logging
from obpilot.settings import Settings


def _say(text: str) -> None:
    print(text, flush=True)


def demo(
    zones: Annotated[int, typer.Option(min=1, max=9, help="Zones of the demo cluster.")] = 3,
    servers_per_zone: Annotated[
        int, typer.Option(min=1, max=5, help="seekdb servers in each zone.")
    ] = 1,
    host: Annotated[str | None, typer.Option(help="Bind address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port [default: 8080]")] = None,
    wheels: Annotated[
        Path,
        typer.Option(help="Where the pylibseekdb wheel is (`make install` downloads it there)."),
    ] = Path(".cache/wheels"),
    down: Annotated[
        bool,
        typer.Option("--down", help="Delete the demo cluster, stop the demo, remove its files."),
    ] = False,
) -> None:
    """A cluster of real seekdb servers on this machine, created through the API (this
    machine as a LOCAL host, the pylibseekdb wheel as its package) and served (each seekdb
    takes about 190 MB of memory and 200 MB of disk). Run it again to reuse what exists;
    --down deletes it through the API and removes the demo."""
    overrides = {key: value for key, value in (("host", host), ("port", port)) if value}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    # The demo's own progress is printed; the log shows only what went wrong unless asked.
    level = settings.log_level if "OBPILOT_LOG_LEVEL" in os.environ else "WARNING"
    configure_logging(fmt=settings.log_format, level=level)
    try:
        if down:
            asyncio.run(runner.down(settings, say=_say))
            return
        settings.home.mkdir(parents=True, exist_ok=True)
        if settings.admin_password is not None:
            password = settings.admin_password.get_secret_value()
            source = "from OBPILOT_ADMIN_PASSWORD"
        else:
            files = DemoFiles(settings.home)
            password = files.admin_password()
            source = f"kept in {files.password_file}"
            settings = settings.model_copy(update={"admin_password": SecretStr(password)})
        _quiet_after_signal()
        asyncio.run(
            runner.up(
                settings,
                password=password,
                password_source=source,
                zones=zones,
                servers_per_zone=servers_per_zone,
                wheels=wheels.resolve(),
                say=_say,
            )
        )
    except DemoError as error:
        print(f"obpilot demo: {error}", file=sys.stderr, flush=True)
        raise typer.Exit(1) from None


def _quiet_after_signal() -> None:
    """uvicorn stops on SIGINT/SIGTERM and then raises the signal again for the handler
    that was there before it: this one lets the demo say goodbye instead of a traceback."""

    def note(signum: int, frame: FrameType | None) -> None:
        return None

    signal.signal(signal.SIGINT, note)
    signal.signal(signal.SIGTERM, note)
