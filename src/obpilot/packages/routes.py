"""Software package HTTP routes: upload (streamed to disk), list, get, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from obpilot.api.deps import DatabaseDep, SessionDep
from obpilot.api.envelope import Envelope, NoDataEnvelope, Page, ok, ok_no_data
from obpilot.api.pagination import make_page, page_params
from obpilot.api.params import PackageId
from obpilot.iam.deps import require
from obpilot.iam.permissions import Principal
from obpilot.packages import service
from obpilot.packages.models import SoftwarePackage
from obpilot.packages.repository import PACKAGE_SORT, PackageFilter
from obpilot.packages.schemas import PackageOut
from obpilot.packages.staging import packages_dir
from obpilot.packages.upload import receive_file
from obpilot.paging import PageRequest

router = APIRouter()

BASE = "/api/v2/software-packages"
PackagePage = Annotated[PageRequest, Depends(page_params(PACKAGE_SORT))]
Filter = Annotated[list[str] | None, Query(max_length=128)]


def package_out(package: SoftwarePackage, *, deletable: bool) -> PackageOut:
    return PackageOut(
        id=package.id,
        name=package.name,
        file_name=package.file_name,
        extension=package.extension,
        size=package.size,
        sha1=package.sha1,
        type=package.type,
        version=package.version,
        build_number=package.build_number,
        operating_system=package.operating_system,
        architecture=package.architecture,
        deletable=deletable,
        create_time=package.create_time,
        update_time=package.update_time,
    )


@router.post(
    BASE,
    tags=["software-packages"],
    summary="Upload a software package (multipart field `file`): a pylibseekdb wheel, or a "
    "seekdb, oceanbase-ce or oceanbase-ce-libs RPM",
)
async def upload_package(
    request: Request,
    database: DatabaseDep,
    creator: Annotated[Principal, Depends(require("PACKAGE", "CREATE"))],
) -> Envelope[PackageOut]:
    home = request.app.state.settings.home
    received = await receive_file(
        request.stream(),
        content_type=request.headers.get("content-type", ""),
        directory=packages_dir(home),
    )
    package = await service.add_package(
        database, home=home, received=received, creator=creator.username
    )
    return ok(package_out(package, deletable=True))


@router.get(
    BASE,
    tags=["software-packages"],
    summary="List software packages",
    dependencies=[Depends(require("PACKAGE", "READ"))],
)
async def list_packages(
    session: SessionDep,
    page: PackagePage,
    keyword: Annotated[
        str | None, Query(max_length=128, description="In the name or file name, any case.")
    ] = None,
    type: Filter = None,
    version: Filter = None,
    architecture: Filter = None,
    operatingSystem: Filter = None,
) -> Envelope[Page[PackageOut]]:
    filters = PackageFilter(
        keyword=keyword,
        types=type or (),
        versions=version or (),
        architectures=architecture or (),
        operating_systems=operatingSystem or (),
    )
    packages, total = await service.list_packages(session, page=page, filters=filters)
    items = [package_out(package, deletable=deletable) for package, deletable in packages]
    return ok(make_page(items, total, page))


@router.get(
    BASE + "/{id}",
    tags=["software-packages"],
    summary="Get a software package",
    dependencies=[Depends(require("PACKAGE", "READ"))],
)
async def get_package(session: SessionDep, id: PackageId) -> Envelope[PackageOut]:
    package = await service.get_package(session, package_id=id)
    return ok(package_out(package, deletable=await service.is_deletable(session, package)))


@router.delete(
    BASE + "/{id}",
    tags=["software-packages"],
    summary="Delete a software package that no server uses (its file too)",
    dependencies=[Depends(require("PACKAGE", "DELETE"))],
)
async def delete_package(request: Request, database: DatabaseDep, id: PackageId) -> NoDataEnvelope:
    await service.delete_package(database, home=request.app.state.settings.home, package_id=id)
    return ok_no_data()
