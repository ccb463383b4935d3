"""A small RPM writer for tests: lead, signature header, header with the tags obpilot
reads, and a newc cpio payload compressed with gzip or xz. What rpm itself would also
write (dependencies, file lists, signatures) is left out: obpilot reads none of it."""

from __future__ import annotations

import gzip
import lzma
import struct
from dataclasses import dataclass

from obpilot.packages.contents import RPM_HEADER_MAGIC, RPM_LEAD_MAGIC, RpmTag

STRING = 6
INT32 = 4
RPMTAG_SIZE = 1009  # an INT32 tag, which the reader skips


@dataclass(frozen=True)
class Member:
    path: str  # as rpm writes it: `./home/admin/oceanbase/bin/observer`
    data: bytes = b""
    mode: int = 0o100644
    inode: int = 0  # 0: a fresh one
    links: int = 1


def executable(path: str, data: bytes) -> Member:
    return Member(path, data, mode=0o100755)


def symlink(path: str, target: str) -> Member:
    return Member(path, target.encode(), mode=0o120777)


def rpm(
    name: str,
    version: str,
    release: str,
    members: list[Member],
    *,
    arch: str = "x86_64",
    compressor: str = "gzip",
) -> bytes:
    cpio = _cpio(members)
    payload = lzma.compress(cpio) if compressor in ("xz", "lzma") else gzip.compress(cpio, mtime=0)
    tags: list[tuple[int, int, bytes]] = [
        (RpmTag.NAME, STRING, name.encode()),
        (RpmTag.VERSION, STRING, version.encode()),
        (RpmTag.RELEASE, STRING, release.encode()),
        (RPMTAG_SIZE, INT32, struct.pack(">I", len(cpio))),
        (RpmTag.OS, STRING, b"linux"),
        (RpmTag.ARCH, STRING, arch.encode()),
        (RpmTag.PAYLOADFORMAT, STRING, b"cpio"),
        (RpmTag.PAYLOADCOMPRESSOR, STRING, compressor.encode()),
    ]
    signature = _header([(1000, STRING, b"0" * 5)])  # RPMSIGTAG_SIZE stands in; 21 bytes
    padding = b"\0" * (-len(signature) % 8)
    return _lead(name) + signature + padding + _header(tags) + payload


def _lead(name: str) -> bytes:
    return (
        RPM_LEAD_MAGIC
        + struct.pack(">BBhh", 3, 0, 0, 1)
        + name.encode()[:65].ljust(66, b"\0")
        + struct.pack(">hh", 1, 5)
        + b"\0" * 16
    )


def _header(tags: list[tuple[int, int, bytes]]) -> bytes:
    index, store = b"", b""
    for tag, kind, value in tags:
        if kind == INT32:
            store += b"\0" * (-len(store) % 4)
        index += struct.pack(">IIII", tag, kind, len(store), 1)
        store += value + (b"\0" if kind == STRING else b"")
    return RPM_HEADER_MAGIC + b"\0" * 4 + struct.pack(">II", len(tags), len(store)) + index + store


def _cpio(members: list[Member]) -> bytes:
    out = b""
    entries = [*members, Member("TRAILER!!!", mode=0)]
    for number, member in enumerate(entries, start=1):
        name = member.path.encode() + b"\0"
        fields = [
            member.inode or number,
            member.mode,
            0,
            0,
            member.links,
            0,
            len(member.data),
            0,
            0,
            0,
            0,
            len(name),
            0,
        ]
        head = b"070701" + b"".join(b"%08x" % value for value in fields)
        out += head + name + b"\0" * (-(len(head) + len(name)) % 4)
        out += member.data + b"\0" * (-len(member.data) % 4)
    return out
