"""Serves the built console (console/ -> `static/`, by `make console`) at `/`.

One catch-all route, added after every API route, answers GET and HEAD for paths outside
the API: a file of the build when there is one (hashed `assets/*` cached for a year as
immutable, anything else revalidated), `index.html` for any other path (the console's client
routes such as /tasks/7), so a deep link or a reload works. It never matches `/api/**` nor
any other method, so the API's behaviour is unchanged: an unknown API path is still the
API's 404, an unauthenticated API call still a 401. The files need no authentication: they
hold no data; the console asks the API for everything, with the session cookie."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

#: Paths that belong to the API and to obpilot's own endpoints, never to the console.
RESERVED_PREFIXES = ("/api/", "/docs/", "/redoc/")
RESERVED_PATHS = frozenset({"/api", "/metrics", "/openapi.json", "/docs", "/redoc"})
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: The console loads only its own files and talks only to this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
NOT_BUILT = (
    "The obpilot console is not built: run `make console` (Node.js 20.19+ and npm), "
    "then reload. The API at /api/v2 works without it.\n"
)


def static_dir() -> Path:
    return Path(os.environ.get("OBPILOT_CONSOLE_DIR") or Path(__file__).parent / "static")


def _is_reserved(path: str) -> bool:
    return path in RESERVED_PATHS or path.startswith(RESERVED_PREFIXES)


class ConsoleRoute(BaseRoute):
    """The console's catch-all (GET and HEAD outside the API)."""

    path = "/{console}"  # the metrics label of every console request

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or static_dir()).resolve()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return Match.NONE, {}
        if _is_reserved(scope["path"]):
            return Match.NONE, {}
        return Match.FULL, {"route": self}

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(Request(scope).url.path)
        await response(scope, receive, send)

    def _file(self, relative: str) -> Path | None:
        if not relative or "\x00" in relative:
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def respond(self, path: str) -> Response:
        index = self.root / "index.html"
        if not index.is_file():
            return PlainTextResponse(NOT_BUILT, status_code=503, headers=SECURITY_HEADERS)
        relative = path.lstrip("/")
        found = self._file(relative)
        if found is not None and found != index.resolve():
            hashed = relative.startswith("assets/")
            headers = {**SECURITY_HEADERS, "Cache-Control": IMMUTABLE if hashed else REVALIDATE}
            return FileResponse(found, headers=headers)
        if relative.startswith("assets/"):
            # A hashed file of another build: index.html in its place would be read as code.
            return PlainTextResponse("Not found\n", status_code=404, headers=SECURITY_HEADERS)
        return FileResponse(
            index, media_type="text/html", headers={**SECURITY_HEADERS, "Cache-Control": REVALIDATE}
        )
