"""The packages' test material: the real pylibseekdb wheel (`make install` downloads it)
and synthetic RPMs of each kind obpilot installs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.rpm import Member, executable, rpm, symlink
from tests.support.wheels import locked_wheel

OB_VERSION = "4.2.1.0"
OB_RELEASE = "100000102023092807.el7"


@pytest.fixture(scope="session")
def seekdb_wheel() -> Path:
    """The pylibseekdb wheel of the installed (locked) version, as PyPI serves it."""
    return locked_wheel()


def oceanbase_rpm(*, version: str = OB_VERSION, compressor: str = "gzip") -> bytes:
    return rpm(
        "oceanbase-ce",
        version,
        OB_RELEASE,
        [
            Member("./home/admin/oceanbase", mode=0o040755),
            executable("./home/admin/oceanbase/bin/observer", b"\x7fELF observer"),
            Member("./home/admin/oceanbase/etc/oceanbase_upgrade_dep.yml", b"deps: []\n"),
            Member("./etc/systemd/system/oceanbase.service", b"[Unit]\n"),  # not for a home
        ],
        compressor=compressor,
    )


def oceanbase_libs_rpm(*, version: str = OB_VERSION, compressor: str = "xz") -> bytes:
    return rpm(
        "oceanbase-ce-libs",
        version,
        OB_RELEASE,
        [
            executable("./home/admin/oceanbase/lib/libaio.so.1.0.1", b"\x7fELF libaio"),
            symlink("./home/admin/oceanbase/lib/libaio.so.1", "libaio.so.1.0.1"),
            # newc keeps a hard link's data with its last name only
            Member("./home/admin/oceanbase/lib/libmariadb.so", mode=0o100755, inode=90, links=2),
            Member(
                "./home/admin/oceanbase/lib/libmariadb.so.3",
                b"\x7fELF mariadb",
                mode=0o100755,
                inode=90,
                links=2,
            ),
        ],
        compressor=compressor,
    )


def seekdb_rpm() -> bytes:
    return rpm(
        "seekdb",
        "1.0.0.0",
        "100000012025112711.el8",
        [
            executable("./usr/bin/seekdb", b"\x7fELF seekdb"),
            Member("./etc/seekdb/seekdb.cnf", b"port=2881\n"),
        ],
        arch="aarch64",
    )
