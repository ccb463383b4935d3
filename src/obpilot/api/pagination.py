"""Paging and sorting parameters in OCP's style: `page` 1-based, `size` at most 2000,
`sort=field,asc|desc` with `field` from the resource's allow-list."""

# No `from __future__ import annotations`: the dependency below is built in a closure,
# and FastAPI must see its annotations as objects, not as strings to resolve.

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query

from obpilot.api.envelope import Page, PageInfo
from obpilot.errors import BadRequest
from obpilot.paging import PageRequest, Sort

MAX_PAGE_SIZE = 2000
DEFAULT_PAGE_SIZE = 20

T = TypeVar("T")


def parse_sort(values: Sequence[str], allowed: Mapping[str, Any]) -> tuple[Sort, ...]:
    """`sort` may repeat; each value is `field` or `field,asc|desc`."""
    result = []
    for value in values:
        field, _, direction = value.partition(",")
        field, direction = field.strip(), direction.strip().lower() or "asc"
        if field not in allowed:
            choices = ", ".join(sorted(allowed))
            raise BadRequest(
                f"The {field or '(empty)'} field cannot be used for sorting; use one of: {choices}",
                code="COM10011",
            )
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction {direction!r}; use asc or desc")
        result.append(Sort(field, direction == "desc"))
    return tuple(result)


def page_params(allowed_sort: Mapping[str, Any]) -> Callable[..., PageRequest]:
    """A dependency that reads and checks `page`, `size` and `sort` for one resource."""
    sort_help = "field,asc|desc; field from: " + ", ".join(sorted(allowed_sort))

    def dependency(
        page: Annotated[int, Query(ge=1, le=2**31 - 1, description="Page number, 1-based.")] = 1,
        size: Annotated[
            int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size, at most 2000.")
        ] = DEFAULT_PAGE_SIZE,
        sort: Annotated[
            list[str] | None,
            Query(description=sort_help),
        ] = None,
    ) -> PageRequest:
        return PageRequest(page=page, size=size, sort=parse_sort(sort or [], allowed_sort))

    return dependency


def make_page(contents: list[T], total: int, request: PageRequest) -> Page[T]:
    return Page[T](
        contents=contents,
        page=PageInfo(
            totalElements=total,
            totalPages=math.ceil(total / request.size) if total else 0,
            number=request.page,
            size=request.size,
        ),
    )
