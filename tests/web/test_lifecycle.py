"""The console's part of the cluster lifecycle, against a real `obpilot serve` whose metadb
holds this machine as a host, a cluster obpilot created (`built`) and one it took over
(`adopted`); no server process runs, since nothing here starts one: the create form shows
the API's finding next to its field, the hosts and packages pages list what the API holds
(a package uploaded from the page with its progress, then deleted), the delete-cluster
dialog enables its button only once the cluster's name is typed, a taken-over cluster
offers Forget instead, and the new pages have no serious axe violation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, expect

from obpilot.db.engine import Database
from obpilot.inventory import service
from obpilot.inventory.schemas import ClusterSpec
from obpilot.web import static_dir
from tests.packages.conftest import seekdb_rpm
from tests.support.inventory import add_local_host
from tests.support.server import ADMIN_PASSWORD, ServerProcess
from tests.web.conftest import Console, LoopThread, _missing, log_in, serious_violations, shoot


async def _register(home: Path) -> tuple[int, int]:
    """The host 127.0.0.1, the cluster `built` (CREATED) and `adopted` (TAKEN_OVER)."""
    database = Database(f"sqlite+aiosqlite:///{home / 'obpilot.db'}")
    try:
        async with database.transaction(write=True) as session:
            host = await add_local_host(session)
            ids = []
            for name, origin, port in (
                ("built", "CREATED", 39001),
                ("adopted", "TAKEN_OVER", 39011),
            ):
                spec = ClusterSpec.model_validate(
                    {
                        "name": name,
                        "obClusterId": 1,
                        "status": "STOPPED",
                        "origin": origin,
                        "obVersion": "1.0.0.0",
                        "fullVersion": "1.0.0.0-100000012025112711",
                        "zones": [
                            {
                                "name": "zone1",
                                "status": "STOPPED",
                                "servers": [
                                    {
                                        "hostId": host.id,
                                        "kind": "seekdb",
                                        "sqlPort": port,
                                        "homePath": str(home / name / "zone1"),
                                        "status": "STOPPED",
                                    }
                                ],
                            }
                        ],
                    }
                )
                ids.append((await service.register_cluster(session, spec=spec)).id)
            return ids[0], ids[1]
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def lifecycle(
    tmp_path_factory: pytest.TempPathFactory, loop_thread: LoopThread
) -> Iterator[tuple[Console, int]]:
    """The console with `built` (its id in the Console) and `adopted` (the second value)."""
    if not (static_dir() / "index.html").is_file():
        _missing("the console is not built: run `make console`")
    home = tmp_path_factory.mktemp("web-lifecycle")
    server = ServerProcess(home).start()
    try:
        built, adopted = loop_thread.run(_register(home))
        yield Console(server, built, "built", []), adopted
    finally:
        server.stop()


def admin(console: Console) -> httpx.Client:
    return httpx.Client(base_url=console.url, auth=("admin", ADMIN_PASSWORD), timeout=30)


def test_the_create_form_shows_a_finding_next_to_its_field(
    page: Page, lifecycle: tuple[Console, int], artifacts: Path
) -> None:
    console, _ = lifecycle
    log_in(page, console, "/clusters")
    page.get_by_role("link", name="Create cluster").click()
    page.wait_for_url("**/clusters/new")
    page.get_by_label("Cluster name").fill("1bad")
    page.get_by_label("Password of root@sys").fill("Secret-pass1")
    page.get_by_label("Host").select_option(label="local (127.0.0.1)")
    page.get_by_label("Home path").fill(str(Path("/tmp") / "obpilot-web-1bad"))
    page.get_by_role("button", name="Create cluster").click()
    finding = page.locator('[data-field-error="name"]')
    expect(finding).to_be_visible()
    name = page.get_by_label("Cluster name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_attribute("aria-describedby", "f-name-error")
    expect(page.get_by_role("alert").first).to_contain_text("COM10001")
    # No package was chosen: the API names it per zone, the form shows it by its one select.
    expect(page.locator('[data-field-error="rpmName"]')).to_be_visible()
    assert page.url.endswith("/clusters/new"), "a refused create must stay on the form"
    shoot(page, artifacts, "create")


def test_the_create_form_offers_the_api_s_hosts_and_packages(
    page: Page, lifecycle: tuple[Console, int], artifacts: Path
) -> None:
    console, _ = lifecycle
    with admin(console) as client:
        hosts = client.get("/api/v2/compute/hosts").json()["data"]["contents"]
        packages = client.get("/api/v2/software-packages").json()["data"]["contents"]
    log_in(page, console, "/clusters/new")
    host = page.get_by_label("Host")
    # The first option is "Choose a host…".
    expect(host.locator("option")).to_have_count(len(hosts) + 1)
    expect(page.get_by_label("Package").locator("option")).to_have_count(len(packages) + 1)
    # Zones come and go; every server's inputs are named by their place in the body.
    page.get_by_role("button", name="Add zone").click()
    expect(page.locator("#f-zones-1-name")).to_have_value("zone2")
    expect(page.locator("#f-zones-1-servers-0-sqlPort")).to_have_value("2881")
    page.get_by_role("button", name="Add a server to zone2").click()
    expect(page.locator("#f-zones-1-servers-1-homePath")).to_be_visible()
    shoot(page, artifacts, "create-form")
    page.get_by_role("button", name="Remove zone zone2").click()
    expect(page.locator("#f-zones-1-name")).to_have_count(0)


def test_the_hosts_page_lists_what_the_api_holds(
    page: Page, lifecycle: tuple[Console, int], artifacts: Path
) -> None:
    console, _ = lifecycle
    with admin(console) as client:
        hosts = client.get("/api/v2/compute/hosts").json()["data"]["contents"]
    assert hosts, "the fixture added this machine"
    log_in(page, console, "/clusters")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Hosts").click()
    page.wait_for_url("**/hosts")
    rows = page.locator("[data-host]")
    expect(rows).to_have_count(len(hosts))
    for host in hosts:
        row = page.locator(f'[data-host="{host["id"]}"]')
        expect(row).to_contain_text(host["innerIpAddress"])
        expect(row.locator(".badge")).to_have_attribute("data-status", host["status"])
    page.get_by_role("button", name="Add hosts").click()
    form = page.get_by_role("form", name="Add hosts")
    form.get_by_label("Addresses, one a line").fill("10.0.0.11\n10.0.0.12\n10.0.0.11")
    expect(form.get_by_role("button", name="Add 2 hosts")).to_be_visible()
    expect(form.get_by_label("Kind")).to_have_value("DEDICATED_PHYSICAL_MACHINE")
    shoot(page, artifacts, "hosts")
    form.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("form", name="Add hosts")).to_have_count(0)


def test_the_packages_page_uploads_lists_and_deletes(
    page: Page, lifecycle: tuple[Console, int], artifacts: Path
) -> None:
    console, _ = lifecycle
    log_in(page, console, "/packages")
    expect(page.get_by_role("heading", level=1)).to_have_text("Packages")
    rpm = FilePayload(
        name="seekdb-1.0.0.0-100000012025112711.el8.aarch64.rpm",
        mimeType="application/x-rpm",
        buffer=seekdb_rpm(),
    )
    page.get_by_label("Package file").set_input_files(files=rpm)
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Uploaded")
    with admin(console) as client:
        packages = client.get("/api/v2/software-packages").json()["data"]["contents"]
    assert len(packages) == 1, packages
    rows = page.locator("[data-package]")
    expect(rows).to_have_count(len(packages))
    for package in packages:
        row = page.locator(f'[data-package="{package["id"]}"]')
        for field in ("name", "fileName", "version", "architecture"):
            expect(row).to_contain_text(package[field])
        expect(row).to_contain_text(package["sha1"][:12])
    shoot(page, artifacts, "packages")
    uploaded = packages[0]
    assert uploaded["deletable"] is True
    row = page.locator(f'[data-package="{uploaded["id"]}"]')
    row.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Delete package").click()
    expect(rows).to_have_count(0)
    with admin(console) as client:
        assert client.get("/api/v2/software-packages").json()["data"]["contents"] == []


def test_the_delete_dialog_wants_the_cluster_s_name(
    page: Page, lifecycle: tuple[Console, int], artifacts: Path
) -> None:
    console, adopted = lifecycle
    log_in(page, console, f"/clusters/{console.cluster_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(console.cluster_name)
    expect(page.locator(".facts")).to_contain_text("1.0.0.0-100000012025112711")
    expect(page.locator("[data-action=cluster-forget]")).to_have_count(0)
    page.locator("[data-action=cluster-delete]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Delete cluster {console.cluster_name}?")
    confirm = dialog.get_by_role("button", name="Delete cluster")
    expect(confirm).to_be_disabled()
    typed = dialog.get_by_label(f"Type {console.cluster_name} to confirm")
    typed.fill(console.cluster_name[:-1])
    expect(confirm).to_be_disabled()
    typed.fill(console.cluster_name.upper())
    expect(confirm).to_be_disabled()
    typed.fill(console.cluster_name)
    expect(confirm).to_be_enabled()
    shoot(page, artifacts, "delete-cluster")
    keep = dialog.get_by_label("Keep data", exact=False)
    expect(keep).not_to_be_checked()
    keep.check()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    with admin(console) as client:
        assert client.get(f"/api/v2/ob/clusters/{console.cluster_id}").status_code == 200

    # A cluster obpilot took over is only forgotten, never deleted.
    page.goto(f"{console.url}/clusters/{adopted}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("adopted")
    expect(page.locator("[data-action=cluster-delete]")).to_have_count(0)
    page.locator("[data-action=cluster-forget]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("keep running")
    expect(dialog.get_by_role("button", name="Forget cluster")).to_be_disabled()
    dialog.get_by_role("button", name="Cancel").click()


def test_add_zone_and_server_dialogs_name_their_inputs(
    page: Page, lifecycle: tuple[Console, int], artifacts: Path
) -> None:
    console, _ = lifecycle
    log_in(page, console, f"/clusters/{console.cluster_id}")
    page.locator("[data-action=cluster-add-zone]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Zone name")).to_have_value("zone2")
    expect(dialog.locator("#f-servers-0-hostId option")).to_have_count(2)
    shoot(page, artifacts, "add-zone")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    page.locator("[data-action=zone-add-server]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Add servers to zone zone1")
    expect(dialog.locator("#f-servers-0-homePath")).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    page.locator("[data-action=server-delete]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Delete server")).to_be_enabled()
    dialog.get_by_role("button", name="Cancel").click()


def test_the_new_pages_have_no_serious_accessibility_violation(
    page: Page, lifecycle: tuple[Console, int]
) -> None:
    console, _ = lifecycle
    log_in(page, console, "/clusters")
    for path in ("/clusters/new", "/hosts", "/packages", f"/clusters/{console.cluster_id}"):
        page.goto(console.url + path)
        page.wait_for_selector("h1")
        page.wait_for_load_state("networkidle")
        assert serious_violations(page) == [], path
