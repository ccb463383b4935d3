"""Renders every error as the OCP error envelope. This is the only place that does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from obpilot.api.envelope import error_body, trace_id_var
from obpilot.errors import (
    BadRequest,
    FieldProblem,
    MethodNotAllowed,
    NotFound,
    ObpilotError,
    Unexpected,
    UnsupportedMediaType,
)
from obpilot.logging import get_logger

log = get_logger(__name__)


def error_response(error: ObpilotError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error_body(error.status_code, error.code, error.message, error.problems),
        status_code=error.status_code,
        headers=headers,
    )


def unexpected_response() -> JSONResponse:
    """The 500 answer: a generic message and the traceId; the details go to the log only."""
    trace_id = trace_id_var.get()
    return error_response(
        Unexpected(f"An unexpected error occurred; quote traceId {trace_id} to the administrator")
    )


def describe_validation_errors(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors:
        location = [str(item) for item in error.get("loc", ()) if item not in ("body",)]
        where = ".".join(location[1:] if location and location[0] in _SOURCES else location)
        if error.get("type") == "json_invalid":
            return "The request body is not valid JSON"
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "Invalid parameter: " + "; ".join(parts)


_SOURCES = {"path", "query", "header", "cookie"}


def validation_problems(errors: Sequence[Any]) -> list[FieldProblem]:
    """Each error as a finding about its field, its path written as in the body
    (`zones[0].servers[1].sqlPort`), so that a form can show it beside the field."""
    problems = []
    for error in errors:
        location = list(error.get("loc", ()))
        if location and location[0] in ("body", *_SOURCES):
            location = location[1:]
        path = ""
        for part in location:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        problems.append(FieldProblem(path or "body", str(error.get("msg", "invalid"))))
    return problems


async def _on_obpilot_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ObpilotError)
    return error_response(exc, headers=getattr(exc, "headers", None))


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    return error_response(
        BadRequest(describe_validation_errors(errors), problems=validation_problems(errors))
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error: ObpilotError
    if exc.status_code == 404:
        error = NotFound(f"No resource at {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"Method {request.method} is not supported by {request.url.path}")
    elif exc.status_code == 415:
        error = UnsupportedMediaType(str(exc.detail))
    elif exc.status_code < 500:
        error = BadRequest(str(exc.detail))
        error.status_code = exc.status_code
    else:
        return unexpected_response()
    return error_response(error, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return unexpected_response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ObpilotError, _on_obpilot_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
