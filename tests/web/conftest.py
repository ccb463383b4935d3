"""Browser tests of the console: Debian's chromium driven by Playwright (the system binary,
never `playwright install`), against a real `obpilot serve` whose cluster is three real
seekdb servers on this machine. Screenshots go to tests/web/artifacts/ (git-ignored); with
OBPILOT_DOCS_SCREENSHOTS=1 the flow view's and the cluster page's also go to docs/images/.

The browser's fixtures are module-scoped: Playwright's sync API holds the main thread's
event loop while the browser is open, so it is closed before the async tests of the other
modules run."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from obpilot.db.engine import Database
from obpilot.web import static_dir
from tests.support.fleet import Fleet
from tests.support.inventory import add_local_host
from tests.support.server import ADMIN_PASSWORD, ServerProcess

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

    expect.set_options(timeout=20_000)
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("OBPILOT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
DOCS_IMAGES = ROOT / "docs" / "images"
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
IN_CI = os.environ.get("CI", "").lower() == "true"
T = TypeVar("T")


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing prerequisite is a failure)")
    pytest.skip(what)


@dataclass
class Console:
    server: ServerProcess
    cluster_id: int
    cluster_name: str
    sql_ports: list[int]

    @property
    def url(self) -> str:
        return self.server.base_url


class LoopThread:
    """An event loop on its own thread for the set-up's async code (the fleet, the metadb):
    Playwright's sync API holds the main thread's loop while the browser is open."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="module")
def console_fleet(
    tmp_path_factory: pytest.TempPathFactory, loop_thread: LoopThread
) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path_factory.mktemp("web-fleet"), 3)
    try:
        loop_thread.run(fleet.ensure_running())
        yield fleet
    finally:
        loop_thread.run(fleet.stop_all())


async def _register(home: Path, fleet: Fleet) -> int:
    database = Database(f"sqlite+aiosqlite:///{home / 'obpilot.db'}")
    try:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            cluster = await fleet.register(session, host, name="demo")
            return cluster.id
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, console_fleet: Fleet, loop_thread: LoopThread
) -> Iterator[Console]:
    """`obpilot serve` with the cluster `demo`: three zones of one seekdb server each."""
    if not (static_dir() / "index.html").is_file():
        _missing("the console is not built: run `make console`")
    home = tmp_path_factory.mktemp("web-home")
    server = ServerProcess(home).start()
    try:
        cluster_id = loop_thread.run(_register(home, console_fleet))
        yield Console(server, cluster_id, "demo", [s.port for s in console_fleet.servers])
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _missing(f"no chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile. The console's Content-Security-Policy is enforced: a
    violation (an inline script, a file from elsewhere) fails the test. axe-core comes in
    as an init script, which the browser runs outside the page's policy."""
    if not AXE.is_file():
        _missing("axe-core is not installed: run `make console` (npm ci in console/)")
    made = browser.new_context(viewport=DESKTOP, reduced_motion="reduce", color_scheme="dark")
    made.set_default_timeout(15_000)
    made.add_init_script(path=str(AXE))
    refused: list[str] = []
    made.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        yield made
    finally:
        made.close()
    assert refused == [], refused


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def log_in(page: Page, console: Console, path: str = "/clusters") -> None:
    page.goto(console.url + path)
    page.wait_for_url("**/login**")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")


def shoot(page: Page, artifacts: Path, name: str, *, docs: bool = False) -> None:
    """The page at desktop and at phone size; `docs`: the desktop one also under docs/images."""
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(150)
    desktop = artifacts / f"{name}-desktop.png"
    page.screenshot(path=str(desktop))
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    page.screenshot(path=str(artifacts / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    if docs and os.environ.get("OBPILOT_DOCS_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(desktop, DOCS_IMAGES / f"console-{name}.png")


def serious_violations(page: Page) -> list[dict[str, object]]:
    """axe-core (from the console's npm dependencies) run in the page: the serious and
    critical violations."""
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]
