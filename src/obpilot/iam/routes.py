"""Identity-and-access HTTP routes: login/logout, users, roles, access keys, audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError

from obpilot.api.deps import SessionDep
from obpilot.api.envelope import (
    Contents,
    Envelope,
    NoDataEnvelope,
    Page,
    ok,
    ok_no_data,
)
from obpilot.api.handlers import describe_validation_errors
from obpilot.api.pagination import make_page, page_params
from obpilot.api.params import AccessKeyIdParam, RoleId, UserId
from obpilot.db.base import utcnow
from obpilot.errors import BadRequest, NotAuthenticated
from obpilot.iam import service
from obpilot.iam.authentication import CSRF_COOKIE, SESSION_COOKIE
from obpilot.iam.deps import (
    CurrentUser,
    client_address,
    from_browser,
    get_authenticator,
    require,
)
from obpilot.iam.permissions import Principal
from obpilot.iam.repository import AUDIT_SORT, ROLE_SORT, USER_SORT
from obpilot.iam.schemas import (
    AccessKeyCreated,
    AccessKeyOut,
    AuditEventOut,
    LoginRequest,
    MeOut,
    PasswordChange,
    PasswordReset,
    RoleCreate,
    RoleOut,
    RolesSet,
    RoleUpdate,
    UserCreate,
    UserOut,
    UserUpdate,
    access_key_out,
    audit_event_out,
    role_out,
    user_out,
)
from obpilot.paging import PageRequest

router = APIRouter()

UserPage = Annotated[PageRequest, Depends(page_params(USER_SORT))]
RolePage = Annotated[PageRequest, Depends(page_params(ROLE_SORT))]
AuditPage = Annotated[PageRequest, Depends(page_params(AUDIT_SORT))]


def _behind_tls(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _me(user: Any, principal: Principal) -> MeOut:
    return MeOut(
        **user_out(user, utcnow()).model_dump(),
        permissions=principal.permissions.expressions(),
    )


# ---- login / logout -------------------------------------------------------------------


LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"$ref": "#/components/schemas/LoginRequest"}}
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
    }
}


async def _login_request(request: Request) -> LoginRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                raise BadRequest("The request body is not valid JSON") from None
            return LoginRequest.model_validate(data)
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            return LoginRequest.model_validate(
                {key: value for key, value in form.items() if isinstance(value, str)}
            )
    except ValidationError as error:
        raise BadRequest(describe_validation_errors(error.errors())) from None
    raise BadRequest("Send username and password as JSON or as a form")


@router.post(
    "/api/v2/iam/login",
    tags=["iam"],
    summary="Log in to the console (sets the session and CSRF cookies; no authentication)",
    openapi_extra=LOGIN_BODY,
)
async def login(request: Request, response: Response, session: SessionDep) -> Envelope[MeOut]:
    credentials = await _login_request(request)
    request.state.attempted_username = credentials.username
    authenticator = get_authenticator(request)
    try:
        principal, new = await authenticator.login(
            credentials.username, credentials.password, source_address=client_address(request)
        )
    except NotAuthenticated as refused:
        if from_browser(request):
            # A page's refused login: a Basic challenge would open the browser's own
            # password prompt instead of letting the page say why.
            refused.headers = {}
        raise
    request.state.principal = principal
    secure = _behind_tls(request)
    max_age = int(authenticator.session_lifetime.total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        new.token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        CSRF_COOKIE, new.csrf_token, max_age=max_age, path="/", samesite="lax", secure=secure
    )
    user = await service.get_user(session, user_id=principal.id)
    return ok(_me(user, principal))


@router.post("/api/v2/iam/logout", tags=["iam"], summary="Log out (revokes the session)")
async def logout(
    request: Request, response: Response, session: SessionDep, principal: CurrentUser
) -> NoDataEnvelope:
    if principal.session_id is not None:
        await service.close_session(session, session_id=principal.session_id)
    secure = _behind_tls(request)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=secure, samesite="lax")
    return ok_no_data()


# ---- the caller -----------------------------------------------------------------------


@router.get("/api/v2/iam/users/me", tags=["iam"], summary="The current user and permissions")
async def get_me(session: SessionDep, principal: CurrentUser) -> Envelope[MeOut]:
    user = await service.get_principal_user(session, principal=principal)
    return ok(_me(user, principal))


@router.post(
    "/api/v2/iam/users/me/changePassword",
    tags=["iam"],
    summary="Change one's own password (logs one's other console sessions out)",
)
async def change_own_password(
    request: Request, session: SessionDep, principal: CurrentUser, body: PasswordChange
) -> NoDataEnvelope:
    await service.change_own_password(
        session,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
        cache=get_authenticator(request).cache,
    )
    return ok_no_data()


# ---- users ----------------------------------------------------------------------------


@router.get(
    "/api/v2/iam/users",
    tags=["iam"],
    summary="List users",
    dependencies=[Depends(require("USER", "READ"))],
)
async def list_users(
    session: SessionDep,
    page: UserPage,
    keyword: Annotated[str | None, Query(max_length=128)] = None,
) -> Envelope[Page[UserOut]]:
    users, total = await service.list_users(session, page=page, keyword=keyword)
    now = utcnow()
    return ok(make_page([user_out(u, now) for u in users], total, page))


@router.post("/api/v2/iam/users", tags=["iam"], summary="Create a user")
async def create_user(
    session: SessionDep,
    body: UserCreate,
    actor: Annotated[Principal, Depends(require("USER", "CREATE"))],
) -> Envelope[UserOut]:
    user = await service.create_user(session, spec=body, actor=actor)
    return ok(user_out(user, utcnow()))


@router.get(
    "/api/v2/iam/users/{id}",
    tags=["iam"],
    summary="Get a user",
    dependencies=[Depends(require("USER", "READ"))],
)
async def get_user(session: SessionDep, id: UserId) -> Envelope[UserOut]:
    return ok(user_out(await service.get_user(session, user_id=id), utcnow()))


@router.put("/api/v2/iam/users/{id}", tags=["iam"], summary="Update a user's e-mail or status")
async def update_user(
    request: Request,
    session: SessionDep,
    id: UserId,
    body: UserUpdate,
    actor: Annotated[Principal, Depends(require("USER", "UPDATE"))],
) -> Envelope[UserOut]:
    user = await service.update_user(
        session,
        user_id=id,
        email=body.email,
        enabled=body.enabled,
        fields=body.model_fields_set,
        actor=actor,
        cache=get_authenticator(request).cache,
    )
    return ok(user_out(user, utcnow()))


@router.delete("/api/v2/iam/users/{id}", tags=["iam"], summary="Delete a user")
async def delete_user(
    request: Request,
    session: SessionDep,
    id: UserId,
    actor: Annotated[Principal, Depends(require("USER", "DELETE"))],
) -> NoDataEnvelope:
    await service.delete_user(
        session, user_id=id, actor=actor, cache=get_authenticator(request).cache
    )
    return ok_no_data()


@router.post(
    "/api/v2/iam/users/{id}/changePassword",
    tags=["iam"],
    summary="Reset a user's password (revokes the user's console sessions and AccessKeys)",
)
async def reset_password(
    request: Request,
    session: SessionDep,
    id: UserId,
    body: PasswordReset,
    actor: Annotated[Principal, Depends(require("USER", "UPDATE"))],
) -> NoDataEnvelope:
    await service.reset_password(
        session,
        user_id=id,
        new_password=body.new_password,
        actor=actor,
        cache=get_authenticator(request).cache,
    )
    return ok_no_data()


@router.put("/api/v2/iam/users/{id}/roles", tags=["iam"], summary="Set a user's roles")
async def set_user_roles(
    session: SessionDep,
    id: UserId,
    body: RolesSet,
    actor: Annotated[Principal, Depends(require("USER", "UPDATE"))],
) -> Envelope[UserOut]:
    user = await service.set_user_roles(session, user_id=id, names=body.roles, actor=actor)
    return ok(user_out(user, utcnow()))


@router.post(
    "/api/v2/iam/users/{id}/unlock",
    tags=["iam"],
    summary="Unlock a user locked after failed logins",
)
async def unlock_user(
    session: SessionDep,
    id: UserId,
    actor: Annotated[Principal, Depends(require("USER", "UPDATE"))],
) -> Envelope[UserOut]:
    return ok(user_out(await service.unlock_user(session, user_id=id, actor=actor), utcnow()))


@router.get(
    "/api/v2/iam/users/{id}/accessKeys",
    tags=["iam"],
    summary="List a user's AccessKeys",
    dependencies=[Depends(require("USER", "READ"))],
)
async def list_user_access_keys(
    session: SessionDep, id: UserId
) -> Envelope[Contents[AccessKeyOut]]:
    keys = await service.list_user_access_keys(session, user_id=id)
    return ok(Contents[AccessKeyOut](contents=[access_key_out(k) for k in keys]))


@router.delete(
    "/api/v2/iam/users/{id}/accessKeys/{accessKeyId}",
    tags=["iam"],
    summary="Revoke one of a user's AccessKeys",
)
async def delete_user_access_key(
    session: SessionDep,
    id: UserId,
    accessKeyId: AccessKeyIdParam,
    actor: Annotated[Principal, Depends(require("USER", "UPDATE"))],
) -> NoDataEnvelope:
    await service.delete_user_access_key(
        session, user_id=id, access_key_id=accessKeyId, actor=actor
    )
    return ok_no_data()


# ---- roles ----------------------------------------------------------------------------


@router.get(
    "/api/v2/iam/roles",
    tags=["iam"],
    summary="List roles",
    dependencies=[Depends(require("ROLE", "READ"))],
)
async def list_roles(
    session: SessionDep,
    page: RolePage,
    builtin: Annotated[
        bool | None, Query(description="Only default (true) or custom roles")
    ] = None,
) -> Envelope[Page[RoleOut]]:
    roles, total = await service.list_roles(session, page=page, builtin=builtin)
    return ok(make_page([role_out(r) for r in roles], total, page))


@router.get(
    "/api/v2/iam/roles/{id}",
    tags=["iam"],
    summary="Get a role",
    dependencies=[Depends(require("ROLE", "READ"))],
)
async def get_role(session: SessionDep, id: RoleId) -> Envelope[RoleOut]:
    return ok(role_out(await service.get_role(session, role_id=id)))


@router.post("/api/v2/iam/roles", tags=["iam"], summary="Create a custom role")
async def create_role(
    session: SessionDep,
    body: RoleCreate,
    actor: Annotated[Principal, Depends(require("ROLE", "CREATE"))],
) -> Envelope[RoleOut]:
    return ok(role_out(await service.create_role(session, spec=body, actor=actor)))


@router.put("/api/v2/iam/roles/{id}", tags=["iam"], summary="Update a custom role")
async def update_role(
    session: SessionDep,
    id: RoleId,
    body: RoleUpdate,
    actor: Annotated[Principal, Depends(require("ROLE", "UPDATE"))],
) -> Envelope[RoleOut]:
    return ok(role_out(await service.update_role(session, role_id=id, spec=body, actor=actor)))


@router.delete(
    "/api/v2/iam/roles/{id}",
    tags=["iam"],
    summary="Delete a custom role",
    dependencies=[Depends(require("ROLE", "DELETE"))],
)
async def delete_role(session: SessionDep, id: RoleId) -> NoDataEnvelope:
    await service.delete_role(session, role_id=id)
    return ok_no_data()


# ---- access keys ----------------------------------------------------------------------


@router.post(
    "/api/v2/iam/accessKeys",
    tags=["iam"],
    summary="Create an AccessKey pair for the current user (the secret is shown only here)",
)
async def create_access_key(
    request: Request, session: SessionDep, principal: CurrentUser
) -> Envelope[AccessKeyCreated]:
    key, secret = await service.create_access_key(
        session, principal=principal, secret_box=request.app.state.secret_box
    )
    return ok(AccessKeyCreated(access_key_id=key.access_key_id, access_key_secret=secret))


@router.get("/api/v2/iam/accessKeys", tags=["iam"], summary="List the current user's AccessKeys")
async def list_access_keys(
    session: SessionDep, principal: CurrentUser
) -> Envelope[Contents[AccessKeyOut]]:
    keys = await service.list_access_keys(session, principal=principal)
    return ok(Contents[AccessKeyOut](contents=[access_key_out(k) for k in keys]))


@router.delete(
    "/api/v2/iam/accessKeys/{accessKeyId}", tags=["iam"], summary="Delete one's own AccessKey"
)
async def delete_access_key(
    session: SessionDep,
    principal: CurrentUser,
    accessKeyId: AccessKeyIdParam,
) -> NoDataEnvelope:
    await service.delete_access_key(session, principal=principal, access_key_id=accessKeyId)
    return ok_no_data()


# ---- audit ----------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@router.get(
    "/api/v2/iam/auditEvents",
    tags=["iam"],
    summary="Query the audit log (newest first unless sorted)",
    dependencies=[Depends(require("AUDIT", "READ"))],
)
async def list_audit_events(
    session: SessionDep,
    page: AuditPage,
    username: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=128, description="e.g. login")] = None,
    result: Annotated[Literal["SUCCESS", "FAILURE"] | None, Query()] = None,
    resource: Annotated[str | None, Query(max_length=512, description="Path keyword")] = None,
    startTime: Annotated[datetime | None, Query(description="ISO-8601, inclusive")] = None,
    endTime: Annotated[datetime | None, Query(description="ISO-8601, exclusive")] = None,
) -> Envelope[Page[AuditEventOut]]:
    events, total = await service.list_audit_events(
        session,
        page=page,
        username=username,
        action=action,
        result=result,
        resource=resource,
        start_time=_utc(startTime),
        end_time=_utc(endTime),
    )
    return ok(make_page([audit_event_out(e) for e in events], total, page))
