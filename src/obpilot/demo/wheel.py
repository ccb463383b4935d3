"""The pylibseekdb wheel the demo uploads as its software package: the one `make install`
downloads into .cache/wheels/, or downloaded the same way when it is missing."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from obpilot.demo.client import DemoError

Say = Callable[[str], None]


def installed_version() -> str | None:
    try:
        return metadata.version("pylibseekdb")
    except metadata.PackageNotFoundError:
        return None


def _found(directory: Path, version: str | None) -> Path | None:
    wheels = sorted(directory.glob("pylibseekdb-*.whl"))
    if version is not None:
        wheels = [w for w in wheels if w.name.startswith(f"pylibseekdb-{version}-")]
    return wheels[-1] if wheels else None


async def find_or_download(directory: Path, say: Say) -> Path:
    """The wheel of the installed pylibseekdb (any, when it is not installed) in
    `directory`; pip downloads it there from the package index first when it is missing."""
    version = installed_version()
    wheel = _found(directory, version)
    if wheel is not None:
        return wheel
    requirement = f"pylibseekdb=={version}" if version else "pylibseekdb"
    say(f"no {requirement} wheel in {directory}: downloading it with pip (as `make install` does)")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
        *("--only-binary", ":all:", "-d", str(directory), requirement),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    wheel = _found(directory, version)
    if process.returncode != 0 or wheel is None:
        raise DemoError(
            f"pip could not download {requirement} into {directory}:\n"
            + output.decode(errors="replace").strip()
        )
    return wheel


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)  # the package's identity, as the API has it
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
