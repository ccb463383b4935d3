"""A package's files as a server's home needs them, unpacked once on obpilot's machine.

`<home>/packages/staged/<sha1>/` holds `files/` (laid out as in a server's home: bin/seekdb,
bin/libaio.so.1, lib/...) and `manifest.json` (each file's path, sha1 and mode). It is
built in a temporary directory beside it and renamed into place, so concurrent callers
each build it at most once and none sees half of it; a package that would unpack to more
than its allowance, or than the disk holds, is refused and leaves nothing. Synchronous
file work: call it in a thread."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from obpilot.errors import PackageRejected
from obpilot.inventory.models import ServerKind
from obpilot.packages.contents import (
    ByteStream,
    CpioEntry,
    CpioReader,
    MiB,
    binary_relative_path,
    full_version_of,
    layout_path,
    mebibytes,
    member_path,
    open_member,
    open_wheel,
    rpm_payload,
    server_kind,
)
from obpilot.packages.models import PackageKind, SoftwarePackage

FILES = "files"
MANIFEST = "manifest.json"
VERSION_FILE = "full-version"
VERSION_TIME_LIMIT = 60
BINARY_MODE = 0o755
DEFAULT_MODE = 0o644

#: What a package may unpack to (the files it stages; for an RPM, its whole payload too):
#: UNPACK_RATIO times its own size, at least UNPACK_FLOOR, at most MAX_UNPACKED_BYTES.
#: Binaries compress 2 to 5 times (the real pylibseekdb wheel's seekdb 2.7 times: 50 MiB
#: to 132 MiB), so 16 leaves room for packages heavier in text, while a bomb (zeros deflate
#: 1000 times, xz far more) gets no more than 16 times its upload. The floor lets a small
#: package hold a few compressible files; the cap bounds what even the largest upload
#: (OBPILOT_MAX_PACKAGE_BYTES, 2 GiB by default) may take.
UNPACK_RATIO = 16
UNPACK_FLOOR = 64 * MiB
MAX_UNPACKED_BYTES = 4096 * MiB
#: A server's home holds a few hundred files.
MAX_STAGED_FILES = 10_000
#: Staging leaves at least this much free on the disk of obpilot's home, which holds the
#: SQLite metadb and the logs.
FREE_SPACE_RESERVE = 512 * MiB


@dataclass(frozen=True)
class StagedFile:
    relative_path: str  # in a server's home: `bin/seekdb`
    local_path: Path  # the file on obpilot's machine
    sha1: str
    mode: int


def packages_dir(home: Path) -> Path:
    return home / "packages"


def staged_dir(home: Path, sha1: str) -> Path:
    return packages_dir(home) / "staged" / sha1


def staged_files(home: Path, package: SoftwarePackage) -> list[StagedFile]:
    """The files a server's home needs from `package` (`home`: obpilot's home)."""
    target = staged_dir(home, package.sha1)
    if not (target / MANIFEST).is_file():
        _stage(package, target)
    manifest = json.loads((target / MANIFEST).read_text())
    return [
        StagedFile(
            relative_path=item["relativePath"],
            local_path=target / FILES / item["relativePath"],
            sha1=item["sha1"],
            mode=item["mode"],
        )
        for item in manifest
    ]


def binary_version(
    home: Path, package: SoftwarePackage, libs: SoftwarePackage | None = None
) -> str | None:
    """The full version the package's server binary reports (`--version`, `-V`), asked once
    on this machine and kept beside its staged files: every server's copy is the same bytes
    (its SHA-1 is checked on its host). None when the binary cannot run here (another
    architecture, say); the host is asked then. `libs`: the staged libraries it needs."""
    target = staged_dir(home, package.sha1)
    kept = target / VERSION_FILE
    if kept.is_file():
        return kept.read_text().strip() or None
    binary = target / FILES / binary_relative_path(package)
    flag = "--version" if server_kind(package) == ServerKind.SEEKDB else "-V"
    environment = {**os.environ, "TELEMETRY_ENABLED": "false"}
    if libs is not None:
        environment["LD_LIBRARY_PATH"] = str(staged_dir(home, libs.sha1) / FILES / "lib")
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:  # whatever it writes
        try:
            result = subprocess.run(  # noqa: S603 - the package's own binary, staged by us
                [str(binary), flag],
                capture_output=True,
                timeout=VERSION_TIME_LIMIT,
                env=environment,
                cwd=scratch,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    output = (result.stdout + result.stderr).decode(errors="replace")
    full = full_version_of(output) if result.returncode == 0 else None
    if full is not None:
        partial = kept.with_name(f".{VERSION_FILE}.{os.getpid()}")
        partial.write_text(full)
        partial.replace(kept)
    return full


def unpack_allowance(package_size: int) -> int:
    """The most a package of `package_size` bytes may unpack to (UNPACK_RATIO)."""
    return min(MAX_UNPACKED_BYTES, max(UNPACK_FLOOR, UNPACK_RATIO * package_size))


def _stage(package: SoftwarePackage, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{package.sha1}-", dir=target.parent))
    try:
        path = Path(package.path)
        unpacker = _Unpacker(package, building / FILES, unpack_allowance(path.stat().st_size))
        if package.kind == PackageKind.SEEKDB_WHEEL:
            unpacker.from_wheel(path)
        else:
            with path.open("rb") as file:
                unpacker.from_rpm(file)
        manifest = unpacker.manifest()
        binary = _binary_path(package)
        if binary is not None and binary not in {item["relativePath"] for item in manifest}:
            raise PackageRejected(f"{package.file_name} holds no {binary}")
        (building / MANIFEST).write_text(json.dumps(manifest, indent=1))
        try:
            building.rename(target)
        except OSError:
            if not (target / MANIFEST).is_file():
                raise
            # Another caller staged it first: theirs is the same files.
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _binary_path(package: SoftwarePackage) -> str | None:
    if package.kind == PackageKind.OCEANBASE_LIBS_RPM:
        return None
    return binary_relative_path(package)


class _Unpacker:
    """Writes a package's members where `layout_path` puts them, hashing as it writes; each
    file is counted (`_claim`) before it is written."""

    def __init__(self, package: SoftwarePackage, root: Path, allowance: int) -> None:
        self.kind = PackageKind(package.kind)
        self.binary = _binary_path(package)
        self.file_name = package.file_name
        self.root = root
        self.allowance = allowance
        self.unpacked = 0  # bytes claimed so far
        self.files: dict[str, tuple[str, int]] = {}  # relative path -> (sha1, mode)

    def from_wheel(self, path: Path) -> None:
        with open_wheel(path) as archive:
            for info in archive.infolist():
                relative = layout_path(self.kind, member_path(info.filename))
                if relative is not None and not info.is_dir():
                    mode = (info.external_attr >> 16) & 0o777
                    with open_member(archive, info) as member:  # stops at its file_size
                        self._write(relative, member, info.file_size, mode)

    def from_rpm(self, file: BinaryIO) -> None:
        links: dict[str, str] = {}  # symlink's relative path -> its target's member path
        # newc stores a hard-linked file's data with its last name only.
        hard_links: dict[int, list[tuple[str, int]]] = {}
        with rpm_payload(file) as payload:
            reader = CpioReader(payload, self.allowance)
            for entry in reader:
                relative = layout_path(self.kind, entry.path)
                if relative is None:
                    continue
                if entry.is_symlink:
                    links[relative] = _link_member(entry, reader.read_link_target())
                elif entry.is_file and entry.links > 1 and entry.size == 0:
                    hard_links.setdefault(entry.inode, []).append((relative, entry.mode))
                elif entry.is_file:
                    self._write(relative, reader, entry.size, entry.mode & 0o777)
                    for other, mode in hard_links.pop(entry.inode, []):
                        self._copy(relative, other, mode & 0o777)
        for names in hard_links.values():  # hard links to an empty file
            for relative, mode in names:
                self._write(relative, None, 0, mode & 0o777)
        self._resolve_links(links)

    def manifest(self) -> list[dict[str, str | int]]:
        return [
            {"relativePath": relative, "sha1": sha1, "mode": mode}
            for relative, (sha1, mode) in sorted(self.files.items())
        ]

    def _resolve_links(self, links: dict[str, str]) -> None:
        """Symlinks become copies of the file they name (`libaio.so.1` -> `libaio.so.1.0.1`),
        a server's home being a set of plain files; a link to what the layout does not
        stage stays out."""
        while links:
            resolved = {
                relative: source
                for relative, member in links.items()
                if (source := layout_path(self.kind, member)) in self.files
            }
            if not resolved:
                return
            for relative, source in resolved.items():
                self._copy(source, relative, self.files[source][1])
                del links[relative]

    def _write(
        self, relative: str, source: CpioReader | ByteStream | None, size: int, mode: int
    ) -> None:
        self._claim(size)
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with _HashingWriter(path) as target:
            if isinstance(source, CpioReader):
                source.copy_to(target.write)
            elif source is not None:
                shutil.copyfileobj(source, target)
        self._record(relative, target.hexdigest(), mode)

    def _claim(self, size: int) -> None:
        """Counts a file of `size` bytes about to be written against the package's bounds
        and the free space of the disk, refusing it before it is written."""
        if len(self.files) >= MAX_STAGED_FILES:
            raise PackageRejected(
                f"{self.file_name} stages more than {MAX_STAGED_FILES} files; a server's home "
                "holds a few hundred"
            )
        if self.unpacked + size > self.allowance:
            raise PackageRejected(
                f"{self.file_name} unpacks to more than {mebibytes(self.allowance)}, the most "
                f"obpilot unpacks from a package of its size ({UNPACK_RATIO} times it, at least "
                f"{mebibytes(UNPACK_FLOOR)}, at most {mebibytes(MAX_UNPACKED_BYTES)})"
            )
        free = shutil.disk_usage(self.root.parent).free
        if free - size < FREE_SPACE_RESERVE:
            raise PackageRejected(
                f"Staging {self.file_name} needs {mebibytes(size)} more on the disk of "
                f"{self.root.parent.parent}, which has {mebibytes(free)} free; obpilot keeps "
                f"{mebibytes(FREE_SPACE_RESERVE)} of it free for its metadb and logs. Free "
                "some space, then retry"
            )
        self.unpacked += size

    def _copy(self, source: str, relative: str, mode: int) -> None:
        self._claim((self.root / source).stat().st_size)
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.root / source, path)
        self._record(relative, self.files[source][0], mode)

    def _record(self, relative: str, sha1: str, mode: int) -> None:
        # Installed with fixed modes, never the archive's: a member the package marks
        # executable (and the binary) 0755, any other 0644; nothing group- or world-writable
        # beside a binary that runs as the server's user.
        executable = relative == self.binary or mode & 0o111
        final_mode = BINARY_MODE if executable else DEFAULT_MODE
        (self.root / relative).chmod(final_mode)
        self.files[relative] = (sha1, final_mode)


def _link_member(entry: CpioEntry, target: str) -> str:
    """The member path a symlink names (relative to its directory, or absolute)."""
    base = PurePosixPath("/") if target.startswith("/") else PurePosixPath(entry.path).parent
    parts: list[str] = []
    for part in (base / target).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("/", "."):
            parts.append(part)
    return "/".join(parts)


class _HashingWriter:
    """A file opened for writing that hashes (sha1) every byte written to it."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self._digest = hashlib.sha1(usedforsecurity=False)

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._file.write(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def __enter__(self) -> _HashingWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()
