"""Packages built to exhaust obpilot's memory or disk are refused (review findings 7 and 8).

Before: the RPM header parser decoded every string entry of a header into its own string,
and entries may overlap, so one 8 MiB header of 16 entries took 144 MiB of memory; its 400
echoed a name of any length (8 MiB). Staging unpacked whatever a package held: a 1 MiB wheel
of zeros became 1 GiB under obpilot's home (the metadb's disk), an RPM's symlinks each became
a copy of what they name, and cpio names and link targets of any length were read into
memory. A wheel member whose bytes inflate past its declared size, or one in bzip2, took
hundreds of MiB of memory to read (even its METADATA, on upload), then failed with a 500."""

from __future__ import annotations

import gzip
import io
import shutil
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from obpilot.errors import PackageRejected
from obpilot.packages import staging
from obpilot.packages.contents import (
    CPIO_HEADER_SIZE,
    RPM_HEADER_MAGIC,
    RPM_LEAD_SIZE,
    RpmTag,
    read_package,
    read_rpm_header,
)
from obpilot.packages.models import SoftwarePackage
from obpilot.packages.staging import staged_dir, staged_files
from tests.support.rpm import INT32, STRING, Member, executable, rpm, symlink

MiB = 1024 * 1024
#: Less than one copy of the 8 MiB header: the parser holds none of it whole.
MEMORY_BOUND = 8 * MiB
#: What staging may write before it refuses a bomb: its allowance for a small package.
DISK_BOUND = 64 * MiB
#: A message that names what is wrong without echoing what the package holds.
MESSAGE_BOUND = 300

Entry = tuple[int, int, int]  # tag, type, offset in the store


def refused(call: Callable[[], object]) -> tuple[PackageRejected, int, int]:
    """The refusal `call` ends in, with the peak of the memory it allocated (tracemalloc)
    and the bytes this process wrote meanwhile (/proc/self/io `wchar`)."""
    written_before = bytes_written()
    tracemalloc.start()
    try:
        with pytest.raises(PackageRejected) as refusal:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refusal.value.status_code == 400
    return refusal.value, peak, bytes_written() - written_before


def bytes_written() -> int:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"])


# ---- RPM headers (finding 7) ---------------------------------------------------------------


def rpm_with_header(entries: list[Entry], store: bytes) -> bytes:
    """A lead, an empty signature header, and a header of `entries` over `store`; no
    payload (reading a package reads its header only)."""
    lead = rpm("seekdb", "1.0", "1.el8", [])[:RPM_LEAD_SIZE]
    return lead + header_section([], b"") + header_section(entries, store)


def header_section(entries: list[Entry], store: bytes) -> bytes:
    index = b"".join(struct.pack(">IIII", tag, kind, offset, 1) for tag, kind, offset in entries)
    counts = struct.pack(">II", len(entries), len(store))
    return RPM_HEADER_MAGIC + bytes(4) + counts + index + store


def strings(values: dict[int, bytes]) -> tuple[list[Entry], bytes]:
    """STRING entries, one after the other in their store."""
    entries: list[Entry] = []
    store = b""
    for tag, value in values.items():
        entries.append((tag, STRING, len(store)))
        store += value + b"\0"
    return entries, store


SEEKDB_TAGS = {
    RpmTag.NAME: b"seekdb",
    RpmTag.VERSION: b"1.0.0.0",
    RpmTag.RELEASE: b"1.el8",
    RpmTag.ARCH: b"x86_64",
}


def written(tmp_path: Path, data: bytes, name: str = "crafted.rpm") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_hand_built_header_reads_as_any_rpm(tmp_path: Path) -> None:
    facts = read_package(written(tmp_path, rpm_with_header(*strings(SEEKDB_TAGS))))
    assert (facts.name, facts.version, facts.architecture) == ("seekdb", "1.0.0.0", "x86_64")


def test_overlapping_strings_in_an_8_mib_header_stay_within_bounded_memory(
    tmp_path: Path,
) -> None:
    store = b"a" * (8 * MiB - 1) + b"\0"
    # The name, then 15 other tags, each a string from one byte further to the store's end.
    entries = [(RpmTag.NAME, STRING, 0), *((5000 + i, STRING, i) for i in range(1, 16))]
    path = written(tmp_path, rpm_with_header(entries, store))
    error, peak, _ = refused(lambda: read_package(path))
    assert "NAME" in error.message
    assert "4096 bytes" in error.message
    assert len(error.message) < MESSAGE_BOUND
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.1f} MiB for an 8 MiB header"


def test_the_most_entries_rpm_allows_stay_within_bounded_memory(tmp_path: Path) -> None:
    entries, store = strings(SEEKDB_TAGS)
    store += bytes(-len(store) % 4) + bytes(4)  # one INT32, which every other entry names
    others = [(2_000_000 + i, INT32, len(store) - 4) for i in range(65_535 - len(entries))]
    path = written(tmp_path, rpm_with_header([*entries, *others], store))
    tracemalloc.start()
    try:
        assert read_package(path).name == "seekdb"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.1f} MiB for {len(entries) + len(others)}"


def test_a_header_of_more_entries_than_rpm_allows_is_refused(tmp_path: Path) -> None:
    entries, store = strings(SEEKDB_TAGS)
    others = [(2_000_000 + i, INT32, 0) for i in range(70_000)]
    path = written(tmp_path, rpm_with_header([*entries, *others], store))
    error, _, _ = refused(lambda: read_package(path))
    assert "more than 65535 entries" in error.message


def test_a_tag_given_twice_is_refused(tmp_path: Path) -> None:
    entries, store = strings(SEEKDB_TAGS)
    entries.append((RpmTag.NAME, STRING, len(store)))
    path = written(tmp_path, rpm_with_header(entries, store + b"oceanbase-ce\0"))
    error, _, _ = refused(lambda: read_package(path))
    assert "NAME more than once" in error.message


def test_strings_that_share_bytes_are_refused(tmp_path: Path) -> None:
    entries, store = strings(SEEKDB_TAGS)
    entries.append((RpmTag.OS, STRING, 1))  # "eekdb": inside the name
    path = written(tmp_path, rpm_with_header(entries, store))
    error, _, _ = refused(lambda: read_package(path))
    assert "overlap" in error.message


def test_a_string_that_runs_past_the_header_is_refused(tmp_path: Path) -> None:
    entries, store = strings(SEEKDB_TAGS)
    path = written(tmp_path, rpm_with_header(entries, store[:-1]))  # the arch's NUL is cut
    error, _, _ = refused(lambda: read_package(path))
    assert "ARCH" in error.message


async def test_a_long_name_is_shortened_in_the_400(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    name = "x" * 4000
    response = await client.post(
        "/api/v2/software-packages",
        files={"file": ("long.rpm", rpm(name, "1.0", "1.el8", []), "application/octet-stream")},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "COM10001"
    assert len(error["message"]) < MESSAGE_BOUND
    assert f"The RPM is {'x' * 100}…," in error["message"]
    assert [p.name for p in (tmp_path / "packages").iterdir()] == []


# ---- staging (finding 8) -------------------------------------------------------------------


def package_at(path: Path, sha1: str = "0" * 40) -> SoftwarePackage:
    """The row an upload would write for `path` (only what staging reads)."""
    facts = read_package(path)
    return SoftwarePackage(kind=facts.kind, file_name=path.name, sha1=sha1, path=str(path))


def assert_nothing_staged(home: Path, package: SoftwarePackage) -> None:
    assert list(staged_dir(home, package.sha1).parent.iterdir()) == []


OBSERVER = "./home/admin/oceanbase/bin/observer"
WHEEL_NAME = "pylibseekdb-9.9-cp311-cp311-manylinux_2_28_x86_64.whl"
METADATA = "pylibseekdb-9.9.dist-info/METADATA"
SEEKDB = "pylibseekdb/seekdb"
WHEEL_MEMBERS = {
    METADATA: b"Metadata-Version: 2.1\nName: pylibseekdb\nVersion: 9.9\n",
    "pylibseekdb-9.9.dist-info/WHEEL": b"Tag: cp311-cp311-manylinux_2_28_x86_64\n",
    "pylibseekdb/libaio.so.1": b"\x7fELF libaio",
    SEEKDB: b"\x7fELF seekdb",
}


def wheel_of_zeros(
    path: Path,
    zeros: str,
    unpacked: int,
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    declared: int | None = None,
) -> Path:
    """A pylibseekdb wheel whose member `zeros` is `unpacked` bytes of zeros, written in
    chunks so that neither this test's memory nor its disk holds them; `declared`: the size
    the zip's directory gives it instead."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in WHEEL_MEMBERS.items():
            if name != zeros:
                archive.writestr(name, data)
        info = zipfile.ZipInfo(zeros)
        info.compress_type = compression
        chunk = bytes(MiB)
        with archive.open(info, "w") as member:
            for _ in range(unpacked // MiB):
                member.write(chunk)
        if declared is not None:
            info.file_size = declared
    return path


def test_a_zip_bomb_wheel_is_refused_within_memory_and_disk_bounds(tmp_path: Path) -> None:
    path = wheel_of_zeros(tmp_path / WHEEL_NAME, SEEKDB, 1024 * MiB)
    assert path.stat().st_size < 2 * MiB
    package = package_at(path)
    error, peak, disk = refused(lambda: staged_files(tmp_path, package))
    assert "unpacks to more than 64 MiB" in error.message
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.1f} MiB"
    assert disk < DISK_BOUND, f"wrote {disk / MiB:.1f} MiB"
    assert_nothing_staged(tmp_path, package)


def test_a_wheel_member_larger_than_it_declares_is_refused_within_bounds(
    tmp_path: Path,
) -> None:
    path = wheel_of_zeros(tmp_path / WHEEL_NAME, SEEKDB, 256 * MiB, declared=MiB)
    package = package_at(path)
    error, peak, disk = refused(lambda: staged_files(tmp_path, package))
    assert "pylibseekdb/seekdb cannot be unpacked" in error.message
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.1f} MiB"
    assert disk < 2 * MiB, f"wrote {disk / MiB:.1f} MiB"
    assert_nothing_staged(tmp_path, package)


def test_wheel_metadata_larger_than_it_declares_is_refused_on_upload(tmp_path: Path) -> None:
    path = wheel_of_zeros(tmp_path / WHEEL_NAME, METADATA, 256 * MiB, declared=100)
    error, peak, _ = refused(lambda: read_package(path))
    assert "METADATA cannot be unpacked" in error.message
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.1f} MiB"


def test_a_wheel_member_in_bzip2_is_refused_on_upload(tmp_path: Path) -> None:
    # zipfile inflates bzip2 in unbounded steps: reading these 64 MiB of zeros in 64 KiB
    # chunks takes 140 MiB of memory.
    path = wheel_of_zeros(tmp_path / WHEEL_NAME, SEEKDB, 64 * MiB, compression=zipfile.ZIP_BZIP2)
    assert path.stat().st_size < 4096
    error, _, _ = refused(lambda: read_package(path))
    assert "pylibseekdb/seekdb is compressed with zip method 12" in error.message


def test_symlinks_that_each_copy_a_file_are_refused_within_the_disk_bound(
    tmp_path: Path,
) -> None:
    library = "./home/admin/oceanbase/lib/libbig.so"
    links = [symlink(f"./home/admin/oceanbase/lib/libbig.so.{i}", "libbig.so") for i in range(80)]
    data = rpm("oceanbase-ce-libs", "4.2.1.0", "1.el7", [executable(library, bytes(MiB)), *links])
    package = package_at(written(tmp_path, data, "libs.rpm"))
    error, _, disk = refused(lambda: staged_files(tmp_path, package))
    assert "unpacks to more than 64 MiB" in error.message
    assert disk < DISK_BOUND + MiB, f"wrote {disk / MiB:.1f} MiB"
    assert_nothing_staged(tmp_path, package)


def with_declared_size(data: bytes, member: str, size: int) -> bytes:
    """The gzip-compressed RPM `data` with the cpio header of `member` declaring `size`
    bytes of data, which the payload does not hold."""
    offset = read_rpm_header(io.BytesIO(data)).payload_offset
    cpio = bytearray(gzip.decompress(data[offset:]))
    head = cpio.index(member.encode() + b"\0") - CPIO_HEADER_SIZE
    cpio[head + 54 : head + 62] = b"%08x" % size  # c_filesize, the seventh field
    return data[:offset] + gzip.compress(bytes(cpio), mtime=0)


@pytest.mark.parametrize(
    "member",
    ["./home/admin/oceanbase/etc/big.sql", "./usr/share/doc/skipped.txt"],
    ids=["staged", "skipped"],
)
def test_a_cpio_member_declaring_4_gib_is_refused_before_it_is_read(
    tmp_path: Path, member: str
) -> None:
    members = [executable(OBSERVER, b"\x7fELF observer"), Member(member)]
    data = with_declared_size(rpm("oceanbase-ce", "4.2.1.0", "1.el7", members), member, 2**32 - 1)
    package = package_at(written(tmp_path, data, "ob.rpm"))
    error, _, disk = refused(lambda: staged_files(tmp_path, package))
    assert "unpacks to more than 64 MiB" in error.message
    assert disk < MiB
    assert_nothing_staged(tmp_path, package)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (Member("./usr/share/doc/" + "x" * 16 * MiB), "a file name longer than PATH_MAX"),
        (
            symlink("./home/admin/oceanbase/bin/link", "x" * 16 * MiB),
            "target is longer than PATH_MAX",
        ),
    ],
    ids=["name", "link target"],
)
def test_an_oversized_cpio_name_or_link_target_is_refused_unread(
    tmp_path: Path, member: Member, reason: str
) -> None:
    members = [executable(OBSERVER, b"\x7fELF observer"), member]
    package = package_at(written(tmp_path, rpm("oceanbase-ce", "4.2.1.0", "1.el7", members)))
    error, peak, _ = refused(lambda: staged_files(tmp_path, package))
    assert reason in error.message
    assert len(error.message) < MESSAGE_BOUND
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.1f} MiB"
    assert_nothing_staged(tmp_path, package)


def test_more_files_than_a_server_s_home_holds_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert staging.MAX_STAGED_FILES == 10_000
    monkeypatch.setattr(staging, "MAX_STAGED_FILES", 100)  # 10,000 files take seconds to write
    empty = [Member(f"./home/admin/oceanbase/etc/{i}.sql") for i in range(101)]
    data = rpm("oceanbase-ce", "4.2.1.0", "1.el7", [executable(OBSERVER, b"\x7fELF"), *empty])
    package = package_at(written(tmp_path, data, "ob.rpm"))
    error, _, _ = refused(lambda: staged_files(tmp_path, package))
    assert "more than 100 files" in error.message
    assert_nothing_staged(tmp_path, package)


def test_a_package_that_would_not_fit_the_disk_is_refused_before_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = [executable(OBSERVER, b"\x7fELF observer")]
    package = package_at(written(tmp_path, rpm("oceanbase-ce", "4.2.1.0", "1.el7", members)))
    disk_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: disk_usage(path)._replace(free=MiB))
    error, _, disk = refused(lambda: staged_files(tmp_path, package))
    assert "1 MiB free" in error.message
    assert disk < MiB
    assert_nothing_staged(tmp_path, package)
