"""What the installing flows ask of packages: which package a name means, its libs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from obpilot.db.engine import Database
from obpilot.errors import BadRequest, PackageNotFound
from obpilot.inventory.models import ServerKind
from obpilot.packages import service
from obpilot.packages.models import PackageKind, SoftwarePackage
from obpilot.packages.repository import PackageRepository

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def row(
    file_name: str, kind: PackageKind, name: str, version: str, *, age_days: int = 0
) -> SoftwarePackage:
    return SoftwarePackage(
        name=name,
        file_name=file_name,
        extension=file_name.rsplit(".", 1)[-1],
        size=1,
        sha1=f"{hash(file_name) & 0xFFFFFFFF:040x}",
        type="OB_SERVER_INSTALL_PACKAGE",
        kind=kind,
        version=version,
        architecture="x86_64",
        path=f"/nowhere/{file_name}",
        create_time=T0 - timedelta(days=age_days),
    )


def packages() -> list[SoftwarePackage]:
    return [
        row("ob-old.rpm", PackageKind.OCEANBASE_RPM, "oceanbase-ce", "4.2.1.0", age_days=2),
        row("ob-new.rpm", PackageKind.OCEANBASE_RPM, "oceanbase-ce", "4.3.0.0", age_days=1),
        row("libs-4.2.rpm", PackageKind.OCEANBASE_LIBS_RPM, "oceanbase-ce-libs", "4.2.1.0"),
        row("pylibseekdb-1.4.0-cp311.whl", PackageKind.SEEKDB_WHEEL, "pylibseekdb", "1.4.0"),
    ]


@pytest.fixture
async def registered(database: Database) -> Database:
    async with database.transaction() as session:
        for package in packages():
            await PackageRepository(session).add(package)
    return database


async def test_a_name_means_its_file_name_else_the_one_package_of_that_name(
    registered: Database,
) -> None:
    async with registered.transaction() as session:
        assert (await service.find_for_install(session, "ob-old.rpm")).file_name == "ob-old.rpm"
        with pytest.raises(BadRequest) as shared:
            await service.find_for_install(session, "oceanbase-ce")
        assert "(ob-new.rpm, ob-old.rpm): give rpmName as one of these" in shared.value.message
        wheel = await service.find_for_install(session, "pylibseekdb")
        assert wheel.kind == PackageKind.SEEKDB_WHEEL
        with pytest.raises(PackageNotFound) as missing:
            await service.find_for_install(session, "oceanbase-ce-4.4.rpm")
    message = missing.value.message
    assert "'oceanbase-ce-4.4.rpm'" in message
    assert "libs-4.2.rpm, ob-new.rpm, ob-old.rpm, pylibseekdb-1.4.0-cp311.whl" in message


async def test_an_oceanbase_rpm_s_libs_are_of_its_version_and_architecture(
    registered: Database,
) -> None:
    async with registered.transaction() as session:
        old = await service.find_for_install(session, "ob-old.rpm")
        new = await service.find_for_install(session, "ob-new.rpm")
        libs = await service.companion_libs(session, old)
        assert libs is not None
        assert libs.file_name == "libs-4.2.rpm"
        assert await service.companion_libs(session, new) is None  # no 4.3 libs
        assert await service.companion_libs(session, libs) is None


def test_the_server_a_package_installs() -> None:
    ob, _, libs, wheel = packages()
    assert (service.server_kind(ob), service.binary_relative_path(ob)) == (
        ServerKind.OBSERVER,
        "bin/observer",
    )
    assert (service.server_kind(wheel), service.binary_relative_path(wheel)) == (
        ServerKind.SEEKDB,
        "bin/seekdb",
    )
    with pytest.raises(ValueError, match="installs no server"):
        service.server_kind(libs)
