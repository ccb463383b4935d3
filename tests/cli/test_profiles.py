"""The CLI's profile file: owner-only, and a broken one explained."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from obpilot.cli.errors import CliError
from obpilot.cli.profiles import Profile, ProfileStore


def test_saved_owner_only_even_over_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "cli.toml"
    path.parent.mkdir()
    path.write_text("")
    path.chmod(0o644)
    store = ProfileStore.load(path)
    store.profiles["p"] = Profile(
        url="http://h:1",
        user="u",
        access_key_id="AK",
        access_key_secret="SK",
        key_created_by_login=True,
    )
    store.current = "p"
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ProfileStore.load(path)
    assert again.get(None) == ("p", store.profiles["p"])


def test_a_broken_file_and_a_missing_profile_are_explained(tmp_path: Path) -> None:
    path = tmp_path / "cli.toml"
    with pytest.raises(CliError, match="not logged in"):
        ProfileStore.load(path).get(None)
    path.write_text("current = [")
    with pytest.raises(CliError, match="cannot read the CLI profiles"):
        ProfileStore.load(path)
    path.write_text('[profiles.a]\nurl = "http://h"\nuser = "u"\nextra = 1\n')
    with pytest.raises(CliError, match="cannot read the CLI profiles"):
        ProfileStore.load(path)
    path.write_text('[profiles.a]\nurl = "http://h"\nuser = "u"\n')
    with pytest.raises(CliError, match="no profile 'b'"):
        ProfileStore.load(path).get("b")
