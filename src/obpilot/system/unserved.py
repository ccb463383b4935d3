"""OCP resources that obpilot does not manage: tenants, obproxy clusters and arbitration
services. Their paths answer 501 with the reason rather than 404, because OCP's clients
(a Terraform provider's, for one) read a 404 on a GET as "the resource is gone" and drop it
from their state without a word. The arbitration list, `GET /api/v2/arbitration/services`,
stays a 404: clients read that one as "this OCP has no arbitration"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn

from fastapi import APIRouter

from obpilot.errors import NotFound, NotServed

TENANTS = (
    "obpilot does not manage tenants: seekdb servers are single-tenant; observer tenants "
    "are planned"
)
OBPROXY = "obpilot does not manage obproxy clusters: clients connect to each server's SQL port"
ARBITRATION = "obpilot does not manage arbitration services"

#: (method, path, why): what OCP's clients call that obpilot answers with 501.
UNSERVED: tuple[tuple[str, str, str], ...] = (
    ("GET", "/api/v2/ob/tenants", TENANTS),
    ("GET", "/api/v2/ob/clusters/{id}/tenants", TENANTS),
    ("POST", "/api/v2/ob/clusters/{id}/tenants", TENANTS),
    ("POST", "/api/v2/ob/clusters/{id}/tenants/createTenant", TENANTS),
    ("GET", "/api/v2/ob/clusters/{id}/tenants/{tenantId}", TENANTS),
    ("DELETE", "/api/v2/ob/clusters/{id}/tenants/{tenantId}", TENANTS),
    # OCP's page for this call spells the path with "cluster"; its clients follow the page.
    ("GET", "/api/v2/ob/cluster/{id}/tenants/{tenantId}", TENANTS),
    ("POST", "/api/v2/obproxy/clusters", OBPROXY),
    ("GET", "/api/v2/obproxy/clusters/{id}", OBPROXY),
    ("DELETE", "/api/v2/obproxy/clusters/{id}", OBPROXY),
    ("POST", "/api/v2/arbitration/services", ARBITRATION),
    ("GET", "/api/v2/arbitration/services/{id}", ARBITRATION),
    ("DELETE", "/api/v2/arbitration/services/{id}/delete", ARBITRATION),
)


def _refusal(why: str) -> Callable[[], Awaitable[NoReturn]]:
    async def not_served() -> NoReturn:
        raise NotServed(why)

    return not_served


#: The one path beside them that stays "no resource": without it, a GET of the POST route's
#: path would be a 405, which clients do not read as "not supported".
ARBITRATION_LIST = "/api/v2/arbitration/services"


async def no_arbitration_list() -> NoReturn:
    raise NotFound(f"No resource at GET {ARBITRATION_LIST}")


router = APIRouter()
router.add_api_route(
    ARBITRATION_LIST,
    no_arbitration_list,
    methods=["GET"],
    response_model=None,
    include_in_schema=False,
)
for method, path, why in UNSERVED:
    router.add_api_route(
        path, _refusal(why), methods=[method], response_model=None, include_in_schema=False
    )
