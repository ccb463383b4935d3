"""What a software package is, read from its own bytes, and where its files go in a
server's home. A package is a `pylibseekdb` wheel (a zip with its dist-info) or an RPM
(lead, signature header, header, then a compressed cpio payload, all read here in pure
Python). No database and no HTTP: a file in, facts or files out."""

from __future__ import annotations

import email.parser
import gzip
import importlib
import io
import itertools
import lzma
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import IO, BinaryIO, Protocol

from obpilot.errors import PackageRejected
from obpilot.inventory.models import ServerKind
from obpilot.packages.models import PackageKind, SoftwarePackage

#: OCP's type for the software a server runs; obpilot's packages are all of it.
OB_SERVER_INSTALL_PACKAGE = "OB_SERVER_INSTALL_PACKAGE"

WHEEL_NAME = "pylibseekdb"
WHEEL_BINARY = "pylibseekdb/seekdb"
WHEEL_LIBAIO = "pylibseekdb/libaio.so.1"  # the binary's RUNPATH is $ORIGIN: it goes beside it
RPM_KINDS = {
    "seekdb": PackageKind.SEEKDB_RPM,
    "oceanbase-ce": PackageKind.OCEANBASE_RPM,
    "oceanbase-ce-libs": PackageKind.OCEANBASE_LIBS_RPM,
}
ARCHITECTURES = ("x86_64", "aarch64")

ZIP_MAGIC = b"PK\x03\x04"
RPM_LEAD_MAGIC = b"\xed\xab\xee\xdb"
RPM_LEAD_SIZE = 96
RPM_HEADER_MAGIC = b"\x8e\xad\xe8\x01"
MiB = 1024 * 1024
#: rpm itself refuses headers past 256 MiB; real ones are far smaller.
MAX_RPM_HEADER_BYTES = 64 * MiB
#: rpm's own limit (hdrchkTags); real headers hold a few hundred entries.
MAX_RPM_HEADER_ENTRIES = 65535
#: A name, version, release or architecture is a few dozen bytes.
MAX_RPM_STRING_BYTES = 4096
MAX_WHEEL_METADATA_BYTES = MiB
#: What wheels are compressed with (PEP 427). zipfile inflates bzip2 and lzma members in
#: unbounded steps: a few hundred bytes of either can take GiBs of memory.
WHEEL_COMPRESSIONS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_RPM_STRING_TYPES = frozenset({6, 8, 9})  # STRING, STRING_ARRAY, I18NSTRING: the first string
#: What a message echoes of a value read from a package.
SHOWN_CHARS = 100

CPIO_HEADER_SIZE = 110
CPIO_MAGICS = (b"070701", b"070702")  # newc, newc with checksums
CPIO_TRAILER = "TRAILER!!!"
PATH_MAX = 4096  # Linux's, with the terminating NUL: no longer name nor link target exists
FILE_TYPE_MASK = 0o170000
REGULAR_FILE = 0o100000
SYMLINK = 0o120000
COPY_CHUNK = MiB

_RELEASE_OS = re.compile(r"\.(el[0-9]+)")
_WHEEL_PLATFORM = re.compile(
    r"^(?P<os>(?:many|musl)linux_[0-9]+_[0-9]+|manylinux[0-9]+|linux)_(?P<arch>.+)$"
)

#: Where a package's members go in a server's home: (member, home path) pairs; a pair
#: ending in "/" maps everything under that directory, keeping its layout.
LAYOUTS: dict[PackageKind, tuple[tuple[str, str], ...]] = {
    PackageKind.SEEKDB_WHEEL: ((WHEEL_BINARY, "bin/seekdb"), (WHEEL_LIBAIO, "bin/libaio.so.1")),
    PackageKind.SEEKDB_RPM: (
        ("usr/bin/seekdb", "bin/seekdb"),
        ("usr/lib64/seekdb/", "lib/"),
        ("usr/lib/seekdb/", "lib/"),
    ),
    PackageKind.OCEANBASE_RPM: (("home/admin/oceanbase/", ""),),
    PackageKind.OCEANBASE_LIBS_RPM: (("home/admin/oceanbase/lib/", "lib/"),),
}


class RpmTag(IntEnum):
    NAME = 1000
    VERSION = 1001
    RELEASE = 1002
    OS = 1021
    ARCH = 1022
    PAYLOADFORMAT = 1124
    PAYLOADCOMPRESSOR = 1125


@dataclass(frozen=True)
class PackageFacts:
    """What a file says it is."""

    kind: PackageKind
    name: str
    version: str
    build_number: str | None
    operating_system: str | None
    architecture: str
    extension: str
    type: str = OB_SERVER_INSTALL_PACKAGE


def server_kind(package: SoftwarePackage) -> ServerKind:
    """The server a package installs; a libs package installs none by itself."""
    if package.kind in (PackageKind.SEEKDB_WHEEL, PackageKind.SEEKDB_RPM):
        return ServerKind.SEEKDB
    if package.kind == PackageKind.OCEANBASE_RPM:
        return ServerKind.OBSERVER
    raise ValueError(f"{package.file_name} ({package.kind}) installs no server by itself")


def binary_relative_path(package: SoftwarePackage) -> str:
    """The server binary's path in a server's home."""
    return f"bin/{server_kind(package)}"


def layout_path(kind: PackageKind, member: str) -> str | None:
    """Where a package member goes in a server's home (None: the server does not need it).
    `member` is a normalised relative path (`member_path`)."""
    for source, target in LAYOUTS[kind]:
        if member == source:
            return target
        if source.endswith("/") and member.startswith(source) and len(member) > len(source):
            return target + member[len(source) :]
    return None


def member_path(raw: str) -> str:
    """A member's name as a relative path (`./usr/bin/seekdb` -> `usr/bin/seekdb`); a name
    that climbs out (`..`) is refused, so nothing is ever written outside its directory."""
    parts = [part for part in PurePosixPath(raw).parts if part not in ("/", ".")]
    if ".." in parts:
        raise PackageRejected(f"The package holds a file outside its root: {shown(raw)!r}")
    return "/".join(parts)


def shown(value: str) -> str:
    """A value read from a package, cut short for a message: it may be any length."""
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"


def mebibytes(size: int) -> str:
    """A size as messages give it: `64 MiB`, `138.8 MiB`."""
    return f"{size / MiB:.1f}".removesuffix(".0") + " MiB"


def read_package(path: Path) -> PackageFacts:
    """What the file is, or PackageRejected naming why it is none of obpilot's packages."""
    with path.open("rb") as file:
        magic = file.read(4)
    if magic == RPM_LEAD_MAGIC:
        return _read_rpm(path)
    if magic == ZIP_MAGIC:
        return _read_wheel(path)
    raise PackageRejected(
        "The file is neither a pylibseekdb wheel nor an RPM: it starts with neither a zip's "
        "nor an RPM's signature"
    )


# --- wheels -------------------------------------------------------------------------------


def open_wheel(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise PackageRejected(f"The file starts as a zip but cannot be read: {error}") from None


@contextmanager
def open_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
    """A wheel member, to read in bounded steps (`read(size)`): zipfile stops it at its
    declared size, and refuses it then if its bytes are not the ones its CRC names."""
    _check_compression(info)
    try:
        with archive.open(info) as member:
            yield member
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise PackageRejected(
            f"The wheel's {shown(info.filename)} cannot be unpacked: {error}"
        ) from None


def _check_compression(info: zipfile.ZipInfo) -> None:
    if info.compress_type not in WHEEL_COMPRESSIONS:
        raise PackageRejected(
            f"The wheel's {shown(info.filename)} is compressed with zip method "
            f"{info.compress_type}; wheels are stored or deflated"
        )


def _small_member(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_WHEEL_METADATA_BYTES:
        raise PackageRejected(
            f"The wheel's {shown(name)} is larger than {MAX_WHEEL_METADATA_BYTES} bytes"
        )
    with open_member(archive, info) as member:
        return member.read(MAX_WHEEL_METADATA_BYTES)  # read() inflates all of it in one step


def _read_wheel(path: Path) -> PackageFacts:
    with open_wheel(path) as archive:
        for info in archive.infolist():  # refused on upload, rather than when installing
            _check_compression(info)
        names = set(archive.namelist())
        metadata_files = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(metadata_files) != 1:
            raise PackageRejected(
                "The zip is not a Python wheel: it has no single *.dist-info/METADATA"
            )
        dist_info = metadata_files[0].split("/")[0]
        parser = email.parser.BytesHeaderParser()
        metadata = parser.parsebytes(_small_member(archive, metadata_files[0]))
        name, version = metadata.get("Name") or "", metadata.get("Version") or ""
        if re.sub(r"[-_.]+", "-", name).lower() != WHEEL_NAME:
            raise PackageRejected(
                f"The wheel is {shown(name) or '(unnamed)'}, not {WHEEL_NAME}: obpilot installs "
                f"seekdb from {WHEEL_NAME} wheels"
            )
        missing = [member for member in (WHEEL_BINARY, WHEEL_LIBAIO) if member not in names]
        if missing:
            raise PackageRejected(f"The {WHEEL_NAME} wheel lacks {', '.join(missing)}")
        if f"{dist_info}/WHEEL" not in names:
            raise PackageRejected(f"The wheel lacks {shown(dist_info)}/WHEEL")
        tags = parser.parsebytes(_small_member(archive, f"{dist_info}/WHEEL")).get_all("Tag")
    operating_system, architecture = _wheel_platform(tags or [])
    return PackageFacts(
        kind=PackageKind.SEEKDB_WHEEL,
        name=WHEEL_NAME,
        version=version,
        build_number=None,
        operating_system=operating_system,
        architecture=architecture,
        extension="whl",
    )


def _wheel_platform(tags: list[str]) -> tuple[str, str]:
    """(operating system, architecture) from the wheel's tags: `cp311-cp311-
    manylinux_2_27_x86_64.manylinux_2_28_x86_64` -> (`manylinux_2_27`, `x86_64`); of
    several manylinux tags the oldest glibc is what the wheel needs."""
    platforms = [
        match
        for tag in tags
        for platform in tag.strip().rsplit("-", 1)[-1].split(".")
        if (match := _WHEEL_PLATFORM.match(platform))
    ]
    architectures = {match["arch"] for match in platforms}
    if len(architectures) != 1 or not architectures <= set(ARCHITECTURES):
        raise PackageRejected(
            f"The wheel's platform tags ({shown(', '.join(tags)) or 'none'}) name no single "
            f"Linux architecture of {', '.join(ARCHITECTURES)}"
        )
    systems = sorted(
        (match["os"] for match in platforms),
        key=lambda os: [int(n) for n in re.findall(r"[0-9]+", os)],
    )
    return systems[0], architectures.pop()


# --- RPMs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RpmHeader:
    tags: dict[int, str]
    payload_offset: int

    def get(self, tag: RpmTag) -> str | None:
        return self.tags.get(tag)

    def require(self, tag: RpmTag) -> str:
        value = self.tags.get(tag)
        if not value:
            raise PackageRejected(f"The RPM's header has no {tag.name}")
        return value


def read_rpm_header(file: BinaryIO) -> RpmHeader:
    """The header's string tags that obpilot reads (`RpmTag`), and where the payload starts."""
    lead = file.read(RPM_LEAD_SIZE)
    if len(lead) < RPM_LEAD_SIZE or lead[:4] != RPM_LEAD_MAGIC:
        raise PackageRejected("The file is not an RPM: its lead is missing or short")
    _read_header_section(file, "signature header", frozenset())
    file.seek(-file.tell() % 8, 1)  # the signature header is padded to 8 bytes
    tags = _read_header_section(file, "header", frozenset(RpmTag))
    return RpmHeader(tags=tags, payload_offset=file.tell())


def _read_header_section(file: BinaryIO, what: str, wanted: frozenset[int]) -> dict[int, str]:
    """The `wanted` string tags of one header section, leaving `file` after the section.
    Only their strings are read: a crafted header's other entries cost nothing."""
    intro = file.read(16)
    if len(intro) < 16:
        raise PackageRejected(f"The RPM's {what} is truncated")
    if intro[:4] != RPM_HEADER_MAGIC:
        raise PackageRejected(f"The RPM's {what} is damaged: no header magic")
    count, size = struct.unpack(">II", intro[8:16])
    if count > MAX_RPM_HEADER_ENTRIES:
        raise PackageRejected(f"The RPM's {what} has more than {MAX_RPM_HEADER_ENTRIES} entries")
    if count * 16 + size > MAX_RPM_HEADER_BYTES:
        raise PackageRejected(f"The RPM's {what} claims more than {MAX_RPM_HEADER_BYTES} bytes")
    index = file.read(count * 16)
    store = file.tell()
    if len(index) < count * 16 or file.seek(0, io.SEEK_END) < store + size:
        raise PackageRejected(f"The RPM's {what} is truncated")
    tags = _read_strings(file, what, store, size, _string_offsets(index, what, wanted))
    file.seek(store + size)
    return tags


def _string_offsets(index: bytes, what: str, wanted: frozenset[int]) -> dict[int, int]:
    """Where each wanted string tag starts in the store. rpm writes each tag once: a tag
    given twice would leave which value counts to the reader."""
    seen: set[int] = set()
    offsets: dict[int, int] = {}
    for tag, kind, offset, _ in struct.iter_unpack(">IIII", index):
        if tag in seen:
            shown_tag = RpmTag(tag).name if tag in wanted else f"tag {tag}"
            raise PackageRejected(
                f"The RPM's {what} is damaged: it gives {shown_tag} more than once"
            )
        seen.add(tag)
        if tag in wanted and kind in _RPM_STRING_TYPES:
            offsets[tag] = offset
    return offsets


def _read_strings(
    file: BinaryIO, what: str, store: int, size: int, offsets: dict[int, int]
) -> dict[int, str]:
    """The strings at `offsets` in the store (which starts at `store` in `file`), each of at
    most MAX_RPM_STRING_BYTES and none sharing bytes with another, as rpm writes them."""
    tags: dict[int, str] = {}
    extents: list[tuple[int, int, str]] = []  # start, end, tag name
    for tag, offset in offsets.items():
        name = RpmTag(tag).name
        if offset >= size:
            raise PackageRejected(f"The RPM's {what} is damaged: its {name} points outside it")
        file.seek(store + offset)
        raw = file.read(min(MAX_RPM_STRING_BYTES + 1, size - offset))
        length = raw.find(b"\0")
        if length < 0:
            raise PackageRejected(
                f"The RPM's {what} is damaged: its {name} is no string of at most "
                f"{MAX_RPM_STRING_BYTES} bytes ending inside it"
            )
        tags[tag] = raw[:length].decode("utf-8", "replace")
        extents.append((offset, offset + length + 1, name))
    for (_, end, first), (start, _, second) in itertools.pairwise(sorted(extents)):
        if start < end:
            raise PackageRejected(f"The RPM's {what} is damaged: its {first} and {second} overlap")
    return tags


def _read_rpm(path: Path) -> PackageFacts:
    with path.open("rb") as file:
        header = read_rpm_header(file)
    name = header.require(RpmTag.NAME)
    kind = RPM_KINDS.get(name)
    if kind is None:
        raise PackageRejected(
            f"The RPM is {shown(name)}, which obpilot does not install; it installs "
            f"{', '.join(RPM_KINDS)} and the {WHEEL_NAME} wheel"
        )
    architecture = header.require(RpmTag.ARCH)
    if architecture not in ARCHITECTURES:
        raise PackageRejected(
            f"The RPM is built for {shown(architecture)}; obpilot installs "
            f"{', '.join(ARCHITECTURES)}"
        )
    payload_format = header.get(RpmTag.PAYLOADFORMAT) or "cpio"
    if payload_format != "cpio":
        raise PackageRejected(f"The RPM's payload is {shown(payload_format)}, not cpio")
    _check_compressor(payload_compressor(header))
    release = header.require(RpmTag.RELEASE)
    os_match = _RELEASE_OS.search(release)
    return PackageFacts(
        kind=kind,
        name=name,
        version=header.require(RpmTag.VERSION),
        build_number=release,
        operating_system=os_match.group(1) if os_match else None,
        architecture=architecture,
        extension="rpm",
    )


def payload_compressor(header: RpmHeader) -> str:
    return header.get(RpmTag.PAYLOADCOMPRESSOR) or "gzip"  # rpm's default when unnamed


def _zstandard() -> ModuleType | None:
    """The optional `zstandard` package (el9 RPMs compress with zstd; 3.11 has no zstd)."""
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


def _check_compressor(compressor: str) -> None:
    if compressor in ("gzip", "xz", "lzma") or (compressor == "zstd" and _zstandard()):
        return
    readable = "gzip, xz and lzma" + (", zstd" if _zstandard() else "")
    hint = "; zstd needs the Python package zstandard" if compressor == "zstd" else ""
    raise PackageRejected(
        f"The RPM's payload is compressed with {shown(compressor)}, which obpilot cannot unpack "
        f"(it reads {readable}){hint}"
    )


class ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@contextmanager
def rpm_payload(file: BinaryIO) -> Iterator[ByteStream]:
    """The RPM's uncompressed cpio payload, as a stream."""
    header = read_rpm_header(file)
    compressor = payload_compressor(header)
    _check_compressor(compressor)
    if compressor == "gzip":
        with gzip.GzipFile(fileobj=file, mode="rb") as gzipped:
            yield gzipped
    elif compressor in ("xz", "lzma"):
        with lzma.LZMAFile(file) as xz:
            yield xz
    else:
        zstandard = _zstandard()
        assert zstandard is not None  # _check_compressor
        with zstandard.ZstdDecompressor().stream_reader(file) as zstd:
            yield zstd


# --- cpio (newc) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CpioEntry:
    path: str  # normalised (`member_path`)
    mode: int
    size: int
    inode: int
    links: int

    @property
    def is_file(self) -> bool:
        return self.mode & FILE_TYPE_MASK == REGULAR_FILE

    @property
    def is_symlink(self) -> bool:
        return self.mode & FILE_TYPE_MASK == SYMLINK


class CpioReader:
    """Walks a newc cpio stream entry by entry; an entry's data is read (`copy_to`,
    `read_link_target`) before moving on, or skipped. An entry that would take the stream
    past `max_bytes` is refused before it is read, so a payload's bytes, even those
    skipped, cost at most that much work."""

    def __init__(self, stream: ByteStream, max_bytes: int) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._consumed = 0  # of the stream, so far
        self._left = 0  # unread data of the current entry
        self._padding = 0  # after it, to the next 4-byte boundary

    def __iter__(self) -> Iterator[CpioEntry]:
        while True:
            self._skip(self._left + self._padding)
            head = self._exact(CPIO_HEADER_SIZE)
            if head[:6] not in CPIO_MAGICS:
                raise PackageRejected("The RPM's payload is not a newc cpio archive")
            try:
                fields = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
            except ValueError:
                raise PackageRejected("The RPM's payload has a damaged cpio header") from None
            inode, mode, _, _, links, _, size, _, _, _, _, name_size, _ = fields
            if name_size > PATH_MAX:
                raise PackageRejected(
                    "The RPM's payload holds a file name longer than PATH_MAX allows "
                    f"({PATH_MAX} bytes with its NUL)"
                )
            if self._consumed + name_size + size > self._max_bytes:
                raise PackageRejected(
                    f"The RPM's payload unpacks to more than {mebibytes(self._max_bytes)}, the "
                    "most obpilot unpacks from this package"
                )
            raw_name = self._exact(name_size).rstrip(b"\0").decode("utf-8", "surrogateescape")
            self._skip(-(CPIO_HEADER_SIZE + name_size) % 4)
            if raw_name == CPIO_TRAILER:
                return
            self._left, self._padding = size, -size % 4
            yield CpioEntry(member_path(raw_name), mode, size, inode, links)

    def copy_to(self, write: Callable[[bytes], object]) -> None:
        while self._left:
            chunk = self._exact(min(self._left, COPY_CHUNK))
            write(chunk)
            self._left -= len(chunk)

    def read_link_target(self) -> str:
        if self._left >= PATH_MAX:  # the target and its NUL fit in PATH_MAX
            raise PackageRejected(
                "The RPM's payload holds a symlink whose target is longer than PATH_MAX "
                f"allows ({PATH_MAX} bytes with its NUL)"
            )
        data = self._exact(self._left)
        self._left = 0
        return data.decode("utf-8", "surrogateescape")

    def _exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) < size:
            raise PackageRejected("The RPM's payload is truncated")
        self._consumed += size
        return data

    def _skip(self, size: int) -> None:
        while size:
            size -= len(self._exact(min(size, COPY_CHUNK)))


#: How a server binary reports its version: `seekdb (OceanBase seekdb 1.4.0.0)` or
#: `observer (OceanBase_CE 4.2.1.0)`, then `REVISION: 100000102023092807-...`.
_VERSION_LINE = re.compile(r"\((?:OceanBase[ _][A-Za-z]+ )?([0-9][0-9.]*)\)")
_REVISION_LINE = re.compile(r"^REVISION:\s*([0-9]+)", re.MULTILINE)


def full_version_of(output: str) -> str | None:
    """`1.4.0.0-1` from a binary's `--version` / `-V` output (its version, then the build
    number of its revision, as OCP writes a full version)."""
    version = _VERSION_LINE.search(output)
    if version is None:
        return None
    revision = _REVISION_LINE.search(output)
    return f"{version.group(1)}-{revision.group(1)}" if revision else version.group(1)


def version_matches(wanted: str, full: str) -> bool:
    """`fullVersion` as a client gives it: the full version, or just its version part."""
    return wanted in (full, full.split("-")[0])
