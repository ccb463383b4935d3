"""Finding 1 (names): a bare package name (`pylibseekdb`) resolved to the newest upload of
that name, anyone's, so a PACKAGE_MANAGER's later upload was installed by the next cluster
created under that name. A name resolves only when exactly one upload has it; a libs RPM
likewise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from obpilot.db.engine import Database
from obpilot.errors import BadRequest
from obpilot.packages import service
from obpilot.packages.models import PackageKind, SoftwarePackage
from obpilot.packages.repository import PackageRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def upload(file_name: str, kind: str, name: str, *, minutes: int) -> SoftwarePackage:
    return SoftwarePackage(
        kind=kind,
        file_name=file_name,
        extension=file_name.rsplit(".", 1)[-1],
        type="OB_SERVER_INSTALL_PACKAGE",
        sha1=f"{minutes:040x}",
        size=1,
        name=name,
        version="1.4.0",
        architecture="x86_64",
        path=f"/nowhere/{file_name}",
        create_time=T0 + timedelta(minutes=minutes),
    )


async def test_a_later_upload_under_a_used_name_is_never_picked(database: Database) -> None:
    async with database.transaction() as session:
        packages = PackageRepository(session)
        wheel = PackageKind.SEEKDB_WHEEL
        await packages.add(upload("pylibseekdb-1.4.0-real.whl", wheel, "pylibseekdb", minutes=0))
        assert (await service.find_for_install(session, "pylibseekdb")).file_name == (
            "pylibseekdb-1.4.0-real.whl"
        )
        await packages.add(upload("pylibseekdb-1.4.0-evil.whl", wheel, "pylibseekdb", minutes=5))
        with pytest.raises(BadRequest) as refused:
            await service.find_for_install(session, "pylibseekdb")
        assert "pylibseekdb-1.4.0-evil.whl, pylibseekdb-1.4.0-real.whl" in refused.value.message
        # By its file name, the one meant is installed.
        exact = await service.find_for_install(session, "pylibseekdb-1.4.0-real.whl")
        assert exact.file_name == "pylibseekdb-1.4.0-real.whl"


async def test_two_libs_rpms_of_one_version_are_refused(database: Database) -> None:
    async with database.transaction() as session:
        packages = PackageRepository(session)
        ob = upload("ob.rpm", PackageKind.OCEANBASE_RPM, "oceanbase-ce", minutes=0)
        await packages.add(ob)
        libs = PackageKind.OCEANBASE_LIBS_RPM
        await packages.add(upload("libs-a.rpm", libs, "oceanbase-ce-libs", minutes=1))
        await packages.add(upload("libs-b.rpm", libs, "oceanbase-ce-libs", minutes=2))
        with pytest.raises(BadRequest) as refused:
            await service.companion_libs(session, ob)
        assert "libs-a.rpm, libs-b.rpm" in refused.value.message
