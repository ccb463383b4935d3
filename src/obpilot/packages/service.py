"""Software package rules: a package is registered once (by content and by file name),
read for what it is before it is kept, deleted only while no server uses it, and found
for the flows that install servers from it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from obpilot.db.engine import Database
from obpilot.errors import BadRequest, DuplicatePackage, PackageInUse, PackageNotFound
from obpilot.inventory import service as inventory
from obpilot.packages.contents import binary_relative_path as binary_relative_path
from obpilot.packages.contents import read_package
from obpilot.packages.contents import server_kind as server_kind
from obpilot.packages.models import PackageKind, SoftwarePackage
from obpilot.packages.repository import PackageFilter, PackageRepository
from obpilot.packages.staging import StagedFile as StagedFile
from obpilot.packages.staging import packages_dir, staged_dir
from obpilot.packages.staging import staged_files as staged_files
from obpilot.packages.upload import ReceivedFile
from obpilot.paging import PageRequest

# `server_kind`, `binary_relative_path`, `staged_files` and `StagedFile` are re-exported:
# with `find_for_install` and `companion_libs` they are what the installing flows use.


async def add_package(
    database: Database, *, home: Path, received: ReceivedFile, creator: str | None
) -> SoftwarePackage:
    """Registers an uploaded file (received whole into `<home>/packages/`): read for what
    it is, refused if it is known already, renamed into place with its row. A refused
    file is removed: nothing of it is kept."""
    kept: Path | None = None
    try:
        facts = await asyncio.to_thread(read_package, received.path)
        async with database.transaction(write=True) as session:
            await _refuse_duplicate(session, received)
            destination = packages_dir(home) / f"{received.sha1}.{facts.extension}"
            package = SoftwarePackage(
                name=facts.name,
                file_name=received.file_name,
                extension=facts.extension,
                size=received.size,
                sha1=received.sha1,
                type=facts.type,
                kind=facts.kind,
                version=facts.version,
                build_number=facts.build_number,
                operating_system=facts.operating_system,
                architecture=facts.architecture,
                path=str(destination.resolve()),
                creator=creator,
            )
            try:
                await PackageRepository(session).add(package)
            except IntegrityError:  # the same file, registered meanwhile
                raise DuplicatePackage(
                    f"{received.file_name} (sha1 {received.sha1}) was registered meanwhile"
                ) from None
            # The row is in (it holds the sha1 and file name) before the file is renamed,
            # so a concurrent upload of the same file is refused before it touches the file.
            received.path.replace(destination)
            kept = destination  # removed again if the commit fails
        return package
    except BaseException:
        received.path.unlink(missing_ok=True)
        if kept is not None:
            kept.unlink(missing_ok=True)
        raise


async def _refuse_duplicate(session: AsyncSession, received: ReceivedFile) -> None:
    packages = PackageRepository(session)
    same = await packages.get_by_sha1(received.sha1)
    if same is not None:
        raise DuplicatePackage(
            f"This file (sha1 {received.sha1}) is registered already: software package "
            f"{same.id} ({same.file_name})"
        )
    same = await packages.get_by_file_name(received.file_name)
    if same is not None:
        raise DuplicatePackage(
            f"A file named {received.file_name} is registered already (software package "
            f"{same.id}, sha1 {same.sha1}); delete it first, or upload under another name"
        )


async def list_packages(
    session: AsyncSession, *, page: PageRequest, filters: PackageFilter
) -> tuple[list[tuple[SoftwarePackage, bool]], int]:
    """A page of packages, each with whether it may be deleted."""
    packages, total = await PackageRepository(session).page(page, filters)
    return [(package, await is_deletable(session, package)) for package in packages], total


async def get_package(session: AsyncSession, *, package_id: int) -> SoftwarePackage:
    package = await PackageRepository(session).get(package_id)
    if package is None:
        raise PackageNotFound(f"Software package {package_id} does not exist")
    return package


async def is_deletable(session: AsyncSession, package: SoftwarePackage) -> bool:
    return not await inventory.servers_using_package(session, package.id)


async def delete_package(database: Database, *, home: Path, package_id: int) -> None:
    """Deletes a package no server uses: its row, its file and its staged files."""
    async with database.transaction(write=True) as session:
        package = await get_package(session, package_id=package_id)
        users = await inventory.servers_using_package(session, package_id)
        if users:
            clusters = sorted({cluster for _, cluster in users})
            raise PackageInUse(
                f"Software package {package.file_name} is used by {len(users)} server(s) of "
                f"cluster(s) {', '.join(clusters)}; delete those clusters first"
            )
        await PackageRepository(session).delete(package)
    await asyncio.to_thread(_remove_files, home, package)


def _remove_files(home: Path, package: SoftwarePackage) -> None:
    Path(package.path).unlink(missing_ok=True)
    shutil.rmtree(staged_dir(home, package.sha1), ignore_errors=True)


async def find_for_install(session: AsyncSession, rpm_name: str) -> SoftwarePackage:
    """The package a request names: by its file name exactly, else by its package name
    (`oceanbase-ce`, `seekdb`, `pylibseekdb`) when exactly one upload has it. A name that
    several uploads share is refused, naming them: whoever may upload could otherwise slip
    a newer one in under a name that others install."""
    packages = PackageRepository(session)
    package = await packages.get_by_file_name(rpm_name)
    if package is not None:
        return package
    named = await packages.named(rpm_name)
    if len(named) > 1:
        raise BadRequest(
            f"{len(named)} software packages are named {rpm_name!r} "
            f"({', '.join(p.file_name for p in named)}): give rpmName as one of these file names"
        )
    if not named:
        registered = ", ".join(await packages.file_names()) or "none"
        raise PackageNotFound(
            f"No software package is named {rpm_name!r} (by file name or package name); "
            f"registered: {registered}. Upload it with POST /api/v2/software-packages"
        )
    return named[0]


async def companion_libs(session: AsyncSession, package: SoftwarePackage) -> SoftwarePackage | None:
    """For an oceanbase-ce RPM, the oceanbase-ce-libs RPM of its version and architecture;
    several such uploads are refused, naming them, as a shared name is."""
    if package.kind != PackageKind.OCEANBASE_RPM:
        return None
    found = await PackageRepository(session).of_kind(
        PackageKind.OCEANBASE_LIBS_RPM, version=package.version, architecture=package.architecture
    )
    if len(found) > 1:
        raise BadRequest(
            f"{len(found)} oceanbase-ce-libs packages are of version {package.version} "
            f"({package.architecture}): {', '.join(p.file_name for p in found)}; delete all but "
            "the one to install"
        )
    return found[0] if found else None
