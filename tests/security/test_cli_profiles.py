"""Finding 19: `login --keep-password` wrote the password into the profile in clear, and a
profile file others could read was used without a word. A profile keeps access keys only;
a readable file is made private, with a message; a password an older obpilot kept is never
used and is dropped at the next save."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obpilot.cli.client import auth_for
from obpilot.cli.errors import CliError
from obpilot.cli.main import build_app
from obpilot.cli.profiles import ProfileStore


def test_login_cannot_keep_a_password(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        build_app(),
        ["login", "--url", "http://127.0.0.1:1", "--user", "u", "--keep-password"],
        input="secret-1\n",
        env={"OBPILOT_CLI_CONFIG": str(tmp_path / "cli.toml")},
    )
    assert result.exit_code == 2
    assert "--keep-password" in result.output
    assert not (tmp_path / "cli.toml").exists()


def test_a_profile_file_others_can_read_is_made_private_with_a_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cli.toml"
    path.write_text('[profiles.a]\nurl = "http://h:1"\nuser = "u"\naccess_key_id = "AK"\n')
    path.chmod(0o644)
    ProfileStore.load(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    said = capsys.readouterr().err
    assert "was readable by others (mode 0644)" in said
    assert "obpilot logout" in said


def test_a_password_kept_in_clear_is_never_used_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "cli.toml"
    path.write_text(
        'current = "old"\n[profiles.old]\nurl = "http://h:1"\nuser = "u"\npassword = "clear-1"\n'
    )
    path.chmod(0o600)
    store = ProfileStore.load(path)
    _, profile = store.get(None)
    with pytest.raises(CliError, match="no access key"):
        auth_for(profile)
    store.save()
    assert "clear-1" not in path.read_text()
