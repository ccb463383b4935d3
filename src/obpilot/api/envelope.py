"""The OCP response envelope: every response, success or error, has this shape."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic.alias_generators import to_camel
from pydantic_core import to_json
from starlette.responses import Response

from obpilot.errors import FieldProblem
from obpilot.formats import format_time

T = TypeVar("T")

trace_id_var: ContextVar[str] = ContextVar("trace_id", default="")
request_started_var: ContextVar[float] = ContextVar("request_started", default=0.0)
# The `server` field: this instance's advertised address, set for each request by the
# request-context middleware from the app's settings.
server_address_var: ContextVar[str] = ContextVar("server_address", default="")


def new_trace_id() -> str:
    return secrets.token_hex(8)


class CamelModel(BaseModel):
    """Base of every API schema: snake_case in Python, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class TimesOut(CamelModel):
    """A resource's createTime and updateTime, rendered as OCP renders times."""

    create_time: datetime
    update_time: datetime

    @field_serializer("create_time", "update_time")
    def _render_time(self, value: datetime) -> str:
        return format_time(value)


class Meta(BaseModel):
    successful: bool
    timestamp: str = Field(description="When the server completed the request (ISO-8601).")
    duration: int = Field(description="Server processing time in milliseconds.")
    status: int = Field(description="The HTTP status, mirrored.")
    traceId: str = Field(description="Trace id of the request (16 hex characters).")
    server: str = Field(description="host:port of the instance that answered.")


class Envelope(Meta, Generic[T]):
    data: T


class NoDataEnvelope(Meta):
    pass


class SubError(BaseModel):
    object: str = Field(description="What the field belongs to: body, query or path.")
    field: str = Field(description="The field's path, such as zones[0].servers[1].sqlPort.")
    rejectedValue: Any = None
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="OCP 4.x error code, such as OBE11001.")
    message: str
    subErrors: list[SubError] | None = Field(
        default=None, description="Each finding about one field, when there are such."
    )


class ErrorEnvelope(Meta):
    error: ErrorDetail


class Contents(BaseModel, Generic[T]):
    contents: list[T]


class PageInfo(BaseModel):
    totalElements: int
    totalPages: int
    number: int = Field(description="Current page, 1-based.")
    size: int


class Page(BaseModel, Generic[T]):
    contents: list[T]
    page: PageInfo


def meta(status: int, *, successful: bool) -> dict[str, Any]:
    started = request_started_var.get() or time.perf_counter()
    return {
        "successful": successful,
        "timestamp": format_time(datetime.now(UTC)),
        "duration": int((time.perf_counter() - started) * 1000),
        "status": status,
        "traceId": trace_id_var.get(),
        "server": server_address_var.get(),
    }


def ok(data: T, status: int = 200) -> Envelope[T]:
    return Envelope[T](data=data, **meta(status, successful=True))


def ok_wire(data: Any, status: int = 200) -> Response:
    """`ok` for data already in its wire shape (camelCase keys, JSON values), encoded once
    as it is: for answers of thousands of items, where a model per item costs more than
    reading them. The route declares the shape (`response_model=Envelope[...]`)."""
    body = {**meta(status, successful=True), "data": data}
    return Response(to_json(body), status_code=status, media_type="application/json")


def ok_no_data(status: int = 200) -> NoDataEnvelope:
    return NoDataEnvelope(**meta(status, successful=True))


def error_body(
    status: int, code: str, message: str, problems: Sequence[FieldProblem] = ()
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if problems:
        error["subErrors"] = [
            {
                "object": "body",
                "field": problem.field,
                "rejectedValue": problem.rejected_value,
                "message": problem.message,
            }
            for problem in problems
        ]
    return {**meta(status, successful=False), "error": error}
