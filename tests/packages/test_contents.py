"""Reading a file for what it is: wheels and RPMs, and everything else refused by name."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from obpilot.errors import PackageRejected
from obpilot.packages.contents import (
    full_version_of,
    mebibytes,
    member_path,
    read_package,
    shown,
    version_matches,
)
from obpilot.packages.models import PackageKind
from tests.packages.conftest import OB_RELEASE, oceanbase_libs_rpm, oceanbase_rpm, seekdb_rpm
from tests.support.rpm import rpm


def written(tmp_path: Path, data: bytes, name: str = "file") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def wheel(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_the_real_wheel_is_read_from_its_metadata(seekdb_wheel: Path) -> None:
    facts = read_package(seekdb_wheel)
    assert facts.kind == PackageKind.SEEKDB_WHEEL
    assert facts.name == "pylibseekdb"
    assert seekdb_wheel.name.startswith(f"pylibseekdb-{facts.version}-")
    assert facts.architecture == "x86_64"
    assert facts.operating_system is not None
    assert facts.operating_system.startswith("manylinux")
    assert (facts.extension, facts.type) == ("whl", "OB_SERVER_INSTALL_PACKAGE")


def test_a_wheel_s_platform_is_its_oldest_manylinux_and_its_architecture(tmp_path: Path) -> None:
    dist = "pylibseekdb-9.9.dist-info"
    files = {
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: pylibseekdb\nVersion: 9.9\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\n"
        "Tag: cp312-cp312-manylinux_2_28_aarch64.manylinux_2_17_aarch64\n",
        "pylibseekdb/seekdb": "binary",
        "pylibseekdb/libaio.so.1": "lib",
    }
    facts = read_package(written(tmp_path, wheel(files)))
    assert (facts.version, facts.operating_system, facts.architecture) == (
        "9.9",
        "manylinux_2_17",
        "aarch64",
    )
    del files["pylibseekdb/libaio.so.1"]
    with pytest.raises(PackageRejected, match=r"lacks pylibseekdb/libaio\.so\.1"):
        read_package(written(tmp_path, wheel(files)))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"just some text\n", "neither a pylibseekdb wheel nor an RPM"),
        (b"", "neither a pylibseekdb wheel nor an RPM"),
        (wheel({"README": "hello"}), r"not a Python wheel"),
        (
            wheel({"other-1.0.dist-info/METADATA": "Name: other\nVersion: 1.0\n"}),
            "The wheel is other, not pylibseekdb",
        ),
        (b"PK\x03\x04 broken", "cannot be read"),
        (rpm("nginx", "1.0", "1.el8", []), "The RPM is nginx, which obpilot does not install"),
        (rpm("seekdb", "1.0", "1.el8", [], arch="noarch"), "built for noarch"),
        (rpm("seekdb", "1.0", "1.el8", [], compressor="bzip2"), "compressed with bzip2"),
        (seekdb_rpm()[:150], "truncated"),
    ],
)
def test_anything_else_is_refused_naming_why(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(PackageRejected, match=reason):
        read_package(written(tmp_path, data))


def test_a_zstd_payload_needs_the_zstandard_package(tmp_path: Path) -> None:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(PackageRejected, match=r"compressed with zstd.*zstandard"):
            read_package(written(tmp_path, rpm("seekdb", "1.0", "1.el9", [], compressor="zstd")))
    else:
        pytest.skip("zstandard is installed: zstd payloads are readable")


RPM_FACTS = [
    (oceanbase_rpm(), PackageKind.OCEANBASE_RPM, "oceanbase-ce", "4.2.1.0", OB_RELEASE, "el7"),
    (
        oceanbase_libs_rpm(),
        PackageKind.OCEANBASE_LIBS_RPM,
        "oceanbase-ce-libs",
        "4.2.1.0",
        OB_RELEASE,
        "el7",
    ),
    (seekdb_rpm(), PackageKind.SEEKDB_RPM, "seekdb", "1.0.0.0", "100000012025112711.el8", "el8"),
]


@pytest.mark.parametrize(("data", "kind", "name", "version", "build", "system"), RPM_FACTS)
def test_an_rpm_is_read_from_its_header(
    tmp_path: Path, data: bytes, kind: PackageKind, name: str, version: str, build: str, system: str
) -> None:
    facts = read_package(written(tmp_path, data))
    assert (facts.kind, facts.name, facts.version, facts.build_number) == (
        kind,
        name,
        version,
        build,
    )
    assert (facts.operating_system, facts.extension) == (system, "rpm")
    assert facts.architecture == ("aarch64" if name == "seekdb" else "x86_64")


def test_a_member_path_never_climbs_out() -> None:
    assert member_path("./usr/bin/seekdb") == "usr/bin/seekdb"
    assert member_path("/home/admin/oceanbase/lib/x.so") == "home/admin/oceanbase/lib/x.so"
    with pytest.raises(PackageRejected, match="outside its root"):
        member_path("./home/admin/oceanbase/../../../etc/passwd")


def test_messages_show_values_short_and_sizes_in_mib() -> None:
    assert shown("oceanbase-ce") == "oceanbase-ce"
    assert shown("x" * 4000) == "x" * 100 + "…"
    assert mebibytes(64 * 1024 * 1024) == "64 MiB"
    assert mebibytes(138_794_616) == "132.4 MiB"


def test_versions_as_the_binaries_print_them() -> None:
    seekdb = (
        "seekdb (OceanBase seekdb 1.4.0.0)\n\n"
        "REVISION: 1-d0cbdf0e9931f46f68fd4ff4aec955c8c3b8efd2\nBUILD_BRANCH: HEAD\n"
    )
    observer = "observer (OceanBase_CE 4.2.1.0)\n\nREVISION: 100000102023092807-abc\n"
    assert full_version_of(seekdb) == "1.4.0.0-1"
    assert full_version_of(observer) == "4.2.1.0-100000102023092807"
    assert full_version_of("observer (OceanBase_CE 4.2.1.0)\nREVISION: fake") == "4.2.1.0"
    assert full_version_of("command not found") is None
    assert version_matches("4.2.1.0", "4.2.1.0-100000102023092807")
    assert version_matches("4.2.1.0-100000102023092807", "4.2.1.0-100000102023092807")
    assert not version_matches("4.2.2.0", "4.2.1.0-100000102023092807")
