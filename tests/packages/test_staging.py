"""Staging a package's files for a server's home: the layouts, once, concurrently."""

from __future__ import annotations

import hashlib
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from obpilot.errors import PackageRejected
from obpilot.packages.contents import read_package
from obpilot.packages.models import SoftwarePackage
from obpilot.packages.staging import (
    StagedFile,
    binary_version,
    staged_dir,
    staged_files,
    unpack_allowance,
)
from tests.packages.conftest import oceanbase_libs_rpm, oceanbase_rpm, seekdb_rpm
from tests.support.rpm import executable, rpm


def package_of(path: Path) -> SoftwarePackage:
    """The row the upload would write for this file (only what staging reads)."""
    facts = read_package(path)
    sha1 = hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
    return SoftwarePackage(kind=facts.kind, file_name=path.name, sha1=sha1, path=str(path))


def stored(tmp_path: Path, data: bytes, name: str) -> SoftwarePackage:
    path = tmp_path / name
    path.write_bytes(data)
    return package_of(path)


def layout(files: list[StagedFile]) -> dict[str, tuple[bytes, int]]:
    for file in files:
        assert (
            hashlib.sha1(file.local_path.read_bytes(), usedforsecurity=False).hexdigest()
            == file.sha1
        )
        assert file.local_path.stat().st_mode & 0o777 == file.mode
    return {file.relative_path: (file.local_path.read_bytes(), file.mode) for file in files}


def test_the_real_wheel_stages_a_seekdb_that_runs_with_its_libaio(
    seekdb_wheel: Path, tmp_path: Path
) -> None:
    files = staged_files(tmp_path, package_of(seekdb_wheel))
    by_path = {file.relative_path: file for file in files}
    assert sorted(by_path) == ["bin/libaio.so.1", "bin/seekdb"]
    unpacked = sum(file.local_path.stat().st_size for file in files)  # 2.7 times the wheel
    assert unpacked * 4 < unpack_allowance(seekdb_wheel.stat().st_size)
    binary = by_path["bin/seekdb"]
    assert binary.mode == 0o755
    done = subprocess.run(
        [binary.local_path, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TELEMETRY_ENABLED": "false"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "seekdb" in done.stdout + done.stderr


def test_an_oceanbase_rpm_keeps_its_home_layout(tmp_path: Path) -> None:
    files = staged_files(tmp_path, stored(tmp_path, oceanbase_rpm(), "ob.rpm"))
    assert layout(files) == {
        "bin/observer": (b"\x7fELF observer", 0o755),
        "etc/oceanbase_upgrade_dep.yml": (b"deps: []\n", 0o644),
    }


def test_a_libs_rpm_stages_lib_with_its_links_as_files(tmp_path: Path) -> None:
    files = staged_files(tmp_path, stored(tmp_path, oceanbase_libs_rpm(), "libs.rpm"))
    assert layout(files) == {
        "lib/libaio.so.1": (b"\x7fELF libaio", 0o755),
        "lib/libaio.so.1.0.1": (b"\x7fELF libaio", 0o755),
        "lib/libmariadb.so": (b"\x7fELF mariadb", 0o755),
        "lib/libmariadb.so.3": (b"\x7fELF mariadb", 0o755),
    }


def test_a_seekdb_rpm_stages_bin_seekdb(tmp_path: Path) -> None:
    files = staged_files(tmp_path, stored(tmp_path, seekdb_rpm(), "seekdb.rpm"))
    assert layout(files) == {"bin/seekdb": (b"\x7fELF seekdb", 0o755)}


def test_staging_is_done_once_even_by_concurrent_callers(tmp_path: Path) -> None:
    package = stored(tmp_path, oceanbase_rpm(compressor="xz"), "ob.rpm")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: staged_files(tmp_path, package), range(8)))
    assert all(result == results[0] for result in results)
    staged = staged_dir(tmp_path, package.sha1)
    assert [p.name for p in staged.parent.iterdir()] == [package.sha1]  # no leftovers
    marker = staged / "files" / "bin" / "observer"
    before = marker.stat().st_mtime_ns
    assert staged_files(tmp_path, package) == results[0]
    assert marker.stat().st_mtime_ns == before  # not unpacked again


def test_a_package_without_its_binary_stages_nothing(tmp_path: Path) -> None:
    data = rpm("oceanbase-ce", "4.2.1.0", "1.el7", [executable("./home/admin/oceanbase/x", b"")])
    package = stored(tmp_path, data, "ob.rpm")
    with pytest.raises(PackageRejected, match="holds no bin/observer"):
        staged_files(tmp_path, package)
    assert list(staged_dir(tmp_path, package.sha1).parent.iterdir()) == []


def test_the_binarys_version_is_asked_once_and_kept(seekdb_wheel: Path, tmp_path: Path) -> None:
    package = package_of(seekdb_wheel)
    staged_files(tmp_path, package)
    full = binary_version(tmp_path, package)
    assert full is not None
    assert full.startswith("1.4.0.0")  # the wheel is 1.4.0.post1; the binary says 1.4.0.0
    kept = staged_dir(tmp_path, package.sha1) / "full-version"
    assert kept.read_text() == full
    kept.write_text("9.9.9.9-9")  # kept, not asked again
    assert binary_version(tmp_path, package) == "9.9.9.9-9"


def test_a_binary_that_cannot_run_here_has_no_version_here(tmp_path: Path) -> None:
    package = stored(tmp_path, oceanbase_rpm(), "oceanbase-ce.rpm")  # "\x7fELF observer"
    staged_files(tmp_path, package)
    assert binary_version(tmp_path, package) is None
    assert not (staged_dir(tmp_path, package.sha1) / "full-version").exists()
