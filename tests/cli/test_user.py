"""`obpilot user create|passwd|grant|list` as real commands on a SQLite metadb."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from obpilot.iam.passwords import verify_password


def obpilot(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "OBPILOT_HOME": str(home)}
    environment.pop("OBPILOT_METADB_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "obpilot", "user", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def stored_hash(home: Path, username: str) -> str:
    engine = create_engine(f"sqlite:///{home / 'obpilot.db'}")
    try:
        with engine.connect() as connection:
            return str(
                connection.execute(
                    text("SELECT password_hash FROM iam_user WHERE username = :u"), {"u": username}
                ).scalar_one()
            )
    finally:
        engine.dispose()


def lock(home: Path, username: str) -> None:
    engine = create_engine(f"sqlite:///{home / 'obpilot.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE iam_user SET locked_until = '2999-01-01 00:00:00' WHERE username = :u"
                ),
                {"u": username},
            )
    finally:
        engine.dispose()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_create_grant_passwd_list(home: Path) -> None:
    created = obpilot(
        home,
        "create",
        "ops",
        "--role",
        "CLUSTER_VIEWER",
        "--password-stdin",
        stdin="Ops-Passw0rd\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created user ops" in created.stdout
    assert "Ops-Passw0rd" not in created.stdout + created.stderr
    assert verify_password(stored_hash(home, "ops"), "Ops-Passw0rd")

    granted = obpilot(home, "grant", "ops", "TASK_MANAGER", "HOST_VIEWER")
    assert granted.stdout.strip() == "ops: CLUSTER_VIEWER, HOST_VIEWER, TASK_MANAGER"
    revoked = obpilot(home, "grant", "ops", "HOST_VIEWER", "--revoke")
    assert revoked.stdout.strip() == "ops: CLUSTER_VIEWER, TASK_MANAGER"

    lock(home, "ops")
    assert obpilot(home, "list").stdout.split()[-2] == "locked"
    changed = obpilot(home, "passwd", "ops", "--password-stdin", stdin="New-Passw0rd\n")
    assert changed.returncode == 0, changed.stderr
    assert verify_password(stored_hash(home, "ops"), "New-Passw0rd")

    listed = obpilot(home, "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert rows == [["1", "ops", "enabled", "CLUSTER_VIEWER,TASK_MANAGER"]]


def test_refusals_are_clear_and_change_nothing(home: Path) -> None:
    weak = obpilot(home, "create", "ops", "--password-stdin", stdin="weak\n")
    assert weak.returncode == 1
    assert "8 to 128 characters" in weak.stderr
    assert "weak" not in weak.stderr
    bad_name = obpilot(home, "create", "1ops", "--password-stdin", stdin="Ops-Passw0rd\n")
    assert bad_name.returncode == 1
    assert "username" in bad_name.stderr
    unknown_role = obpilot(
        home, "create", "ops", "-r", "NOPE", "--password-stdin", stdin="Ops-Passw0rd\n"
    )
    assert "Unknown role(s): NOPE" in unknown_role.stderr
    missing = obpilot(home, "grant", "ghost", "ADMIN")
    assert missing.returncode == 1
    assert "User ghost does not exist" in missing.stderr
    assert obpilot(home, "list").stdout.splitlines()[1:] == []
