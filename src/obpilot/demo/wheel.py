"""The pylibseekdb wheel the demo uploads as its software package: the one `make install`
downloads into .cache/wheels/."""

from __future__ import annotations

import hashlib
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


def find(directory: Path) -> Path:
    """The wheel of the installed pylibseekdb (any, when it is not installed) in
    `directory`, where `make install` downloads the locked version."""
    version = installed_version()
    wheel = _found(directory, version)
    if wheel is None:
        requirement = f"pylibseekdb {version}" if version else "pylibseekdb"
        raise DemoError(
            f"no {requirement} wheel in {directory}: `make install` downloads the one "
            "uv.lock names, checked against its hashes"
        )
    return wheel


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)  # the package's identity, as the API has it
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
