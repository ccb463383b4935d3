"""Finding 10: installed files kept the archive's mode bits (`libaio.so.1` landed 0777
beside a root-run binary, writable by anyone on the host). Staged, and so installed, files
get fixed modes: 0755 where the package marks them executable, 0644 otherwise."""

from __future__ import annotations

import hashlib
from pathlib import Path

from obpilot.packages.contents import read_package
from obpilot.packages.models import SoftwarePackage
from obpilot.packages.staging import staged_files
from tests.support.rpm import Member, executable, rpm


def test_writable_or_odd_modes_in_a_package_are_installed_fixed(tmp_path: Path) -> None:
    path = tmp_path / "libs.rpm"
    path.write_bytes(
        rpm(
            "oceanbase-ce-libs",
            "4.2.1.0",
            "1.el7",
            [
                Member("./home/admin/oceanbase/lib/libaio.so.1", b"\x7fELF", mode=0o100777),
                Member("./home/admin/oceanbase/lib/notes.txt", b"notes", mode=0o100666),
                Member("./home/admin/oceanbase/lib/setuid.so", b"\x7fELF", mode=0o104755),
                Member("./home/admin/oceanbase/lib/secret.so", b"\x7fELF", mode=0o100000),
                executable("./home/admin/oceanbase/lib/libmariadb.so.3", b"\x7fELF"),
            ],
        )
    )
    sha1 = hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
    package = SoftwarePackage(
        kind=read_package(path).kind, file_name=path.name, sha1=sha1, path=str(path)
    )
    modes = {file.relative_path: file.mode for file in staged_files(tmp_path / "home", package)}
    assert modes == {
        "lib/libaio.so.1": 0o755,
        "lib/notes.txt": 0o644,
        "lib/setuid.so": 0o755,
        "lib/secret.so": 0o644,
        "lib/libmariadb.so.3": 0o755,
    }
    for file in staged_files(tmp_path / "home", package):
        assert file.local_path.stat().st_mode & 0o7777 == file.mode
