"""CLI profiles: a server's URL and the credentials to use there, kept in
`~/.config/obpilot/cli.toml` (or the file `OBPILOT_CLI_CONFIG` names), readable by its
owner only, since it holds access key secrets.

    current = "default"
    [profiles.default]
    url = "http://127.0.0.1:8080"
    user = "admin"
    access_key_id = "AK..."
    access_key_secret = "..."
    key_created_by_login = true   # `obpilot logout` revokes it
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from obpilot.cli import output
from obpilot.cli.errors import CliError

CONFIG_ENV = "OBPILOT_CLI_CONFIG"
PROFILE_ENV = "OBPILOT_PROFILE"
DEFAULT_PROFILE = "default"
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def config_path() -> Path:
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "obpilot" / "cli.toml"


def check_profile_name(name: str) -> str:
    if not PROFILE_NAME.fullmatch(name):
        raise CliError(
            f"bad profile name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass
class Profile:
    url: str
    user: str
    access_key_id: str | None = None
    access_key_secret: str | None = None
    key_created_by_login: bool = False

    @property
    def auth_kind(self) -> str:
        return "AK/SK"


def _profile(values: dict[str, Any]) -> Profile:
    # An older obpilot could keep a password in clear (`login --keep-password`): it is never
    # used, and the next save leaves it out.
    values = {name: value for name, value in values.items() if name != "password"}
    return Profile(**values)


def _private(path: Path) -> None:
    """Makes the profile file readable by its owner only, saying so when it was not: its
    access key secrets must then be taken as seen by others."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        path.chmod(0o600)
        output.say(
            f"{path} was readable by others (mode {mode:04o}); it is 0600 now. Anyone who read "
            "it holds its access keys: `obpilot logout` revokes them, then log in again"
        )


@dataclass
class ProfileStore:
    path: Path
    current: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> ProfileStore:
        path = path or config_path()
        if not path.exists():
            return cls(path)
        _private(path)
        try:
            document = tomllib.loads(path.read_text())
            profiles = {
                name: _profile(values) for name, values in document.get("profiles", {}).items()
            }
        except (tomllib.TOMLDecodeError, TypeError, AttributeError) as error:
            raise CliError(f"cannot read the CLI profiles in {path}: {error}") from None
        current = document.get("current")
        return cls(path, current if isinstance(current, str) else None, profiles)

    def save(self) -> None:
        document: dict[str, Any] = {
            "profiles": {
                name: {k: v for k, v in asdict(profile).items() if v is not None}
                for name, profile in self.profiles.items()
            }
        }
        if self.current is not None:
            document = {"current": self.current, **document}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written to a new file created 0600 and renamed over, so that no secret is ever in
        # a file others may read, even for a moment.
        partial = self.path.with_name(self.path.name + ".partial")
        partial.unlink(missing_ok=True)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            tomli_w.dump(document, out)
        partial.replace(self.path)

    def selected_name(self, name: str | None) -> str:
        chosen = name or os.environ.get(PROFILE_ENV) or self.current
        if chosen is None:
            raise CliError(
                "not logged in: run `obpilot login --url URL --user NAME` first "
                f"(profiles are kept in {self.path})"
            )
        return chosen

    def get(self, name: str | None) -> tuple[str, Profile]:
        chosen = self.selected_name(name)
        profile = self.profiles.get(chosen)
        if profile is None:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise CliError(
                f"no profile {chosen!r} in {self.path} (profiles: {known}); "
                "`obpilot login --profile NAME ...` creates one"
            )
        return chosen, profile
