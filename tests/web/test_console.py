"""The console's files at `/` (obpilot.web.console): client routes get index.html, hashed
assets are immutable, nothing outside the build is served, and the API behaves as before."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from obpilot.web.console import IMMUTABLE, REVALIDATE, ConsoleRoute


@pytest.fixture
def build(tmp_path: Path, app: FastAPI) -> Path:
    """A fake build in place of the real one."""
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (root / "robots.txt").write_text("User-agent: *")
    (tmp_path / "secret.txt").write_text("secret")
    for route in app.router.routes:
        if isinstance(route, ConsoleRoute):
            route.root = root.resolve()
    return root


@pytest.mark.parametrize("path", ["/", "/clusters", "/tasks/7?view=flow&subtask=3", "/login"])
async def test_client_routes_get_the_index(
    client: httpx.AsyncClient, build: Path, path: str
) -> None:
    response = await client.get(path, auth=None)
    assert response.status_code == 200
    assert response.text.startswith("<!doctype html>")
    assert response.headers["cache-control"] == REVALIDATE
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


async def test_hashed_assets_are_immutable_and_missing_ones_404(
    client: httpx.AsyncClient, build: Path
) -> None:
    asset = await client.get("/assets/index-abc123.js", auth=None)
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == IMMUTABLE
    assert "javascript" in asset.headers["content-type"]
    other = await client.get("/robots.txt", auth=None)
    assert other.headers["cache-control"] == REVALIDATE
    missing = await client.get("/assets/index-old999.js", auth=None)
    assert missing.status_code == 404
    head = await client.head("/clusters", auth=None)
    assert head.status_code == 200


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"]
)
async def test_nothing_outside_the_build_is_served(
    client: httpx.AsyncClient, build: Path, path: str
) -> None:
    response = await client.get(path, auth=None)
    assert "secret" not in response.text


async def test_the_api_is_unchanged(client: httpx.AsyncClient, build: Path) -> None:
    anonymous = await client.get("/api/v2/ob/clusters", auth=None)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "IAM10000"
    unknown = await client.get("/api/v2/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.json()["successful"] is False
    assert (await client.get("/api", auth=None)).status_code == 404
    # Other methods are not the console's: a write to a client route is still a 404.
    assert (await client.post("/clusters", auth=None)).status_code == 404
    assert (await client.get("/openapi.json", auth=None)).json()["info"]["title"] == "obpilot"
    assert (await client.get("/metrics", auth=None)).status_code == 200


async def test_an_unbuilt_console_says_how_to_build_it(
    client: httpx.AsyncClient, build: Path
) -> None:
    (build / "index.html").unlink()
    response = await client.get("/clusters", auth=None)
    assert response.status_code == 503
    assert "make console" in response.text
