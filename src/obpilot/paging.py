"""A page of a list as services and repositories take it; reading it from a request's
`page`, `size` and `sort` is the HTTP layer's business (`obpilot.api.pagination`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool


@dataclass(frozen=True)
class PageRequest:
    page: int  # 1-based, as OCP's API
    size: int
    sort: tuple[Sort, ...]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size
