"""Finding 16: /docs and /redoc had no CSP and no frame protection and loaded their scripts
from a CDN into obpilot's origin, where the console's session cookie works. They are off
unless an admin turns them on (OBPILOT_API_DOCS); /openapi.json stays."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.routing import Route

from obpilot.app import create_app
from obpilot.settings import Settings


async def test_the_interactive_pages_are_not_served_by_default(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = await client.get(path, auth=None)
        assert response.status_code == 404, (path, response.text)
        assert "cdn" not in response.text.lower()
    schema = await client.get("/openapi.json", auth=None)
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "obpilot"


def test_an_admin_may_turn_them_on(tmp_path: Path) -> None:
    def paths(settings: Settings) -> set[str]:
        app = create_app(settings, run_migrations=False)
        return {route.path for route in app.routes if isinstance(route, Route)}

    assert not {"/docs", "/redoc"} & paths(Settings(home=tmp_path))
    assert {"/docs", "/redoc"} <= paths(Settings(home=tmp_path, api_docs=True))
