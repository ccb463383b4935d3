"""The console end to end, in order, on one real cluster `demo` (three seekdb servers):
log in and come back where you were, reach the stop button by keyboard, no serious axe
violation, stop the cluster from its page and watch every node of the flow view turn
successful without a reload (while a second tab tails a stop step's log as it runs), start
it again and watch its servers come back, a refused operation shows the API's message and
code, a step that fails for real (its port held) offers Retry and Skip and its retry from
the console succeeds, a viewer sees no action."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.server import ADMIN_PASSWORD
from tests.web.conftest import Console, log_in, serious_violations, shoot

ALL_NODES_SUCCESSFUL = """(minimum) => {
  const nodes = [...document.querySelectorAll('.flow-node')];
  return nodes.length >= minimum && nodes.every((n) => n.dataset.status === 'SUCCESSFUL');
}"""
SERVERS_ARE = """(status) => {
  const badges = [...document.querySelectorAll('[data-server] .badge')];
  return badges.length === 3 && badges.every((b) => b.dataset.status === status);
}"""


def admin(console: Console) -> httpx.Client:
    return httpx.Client(base_url=console.url, auth=("admin", ADMIN_PASSWORD), timeout=30)


def wait_task_done(console: Console, task_id: int, within: float = 180) -> dict[str, object]:
    with admin(console) as client:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            task = client.get(f"/api/v2/tasks/instances/{task_id}").json()["data"]
            if task["status"] != "RUNNING":
                return dict(task)
            time.sleep(0.5)
    raise AssertionError(f"task {task_id} still running after {within} s")


def test_login_brings_you_back_where_you_were(
    page: Page, console: Console, artifacts: Path
) -> None:
    page.goto(f"{console.url}/clusters/{console.cluster_id}")
    page.wait_for_url("**/login?next=*")
    shoot(page, artifacts, "login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("IAM10004")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/clusters/{console.cluster_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(console.cluster_name)
    expect(page.locator("[data-server]")).to_have_count(3)


def test_the_keyboard_reaches_the_stop_button(page: Page, console: Console) -> None:
    log_in(page, console, f"/clusters/{console.cluster_id}")
    expect(page.locator("[data-server]")).to_have_count(3)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.dataset?.action") == "cluster-stop":
            break
    else:
        raise AssertionError("Tab never reached the cluster's Stop button")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Stop cluster {console.cluster_name}?")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def test_no_serious_accessibility_violation(page: Page, console: Console) -> None:
    page.goto(console.url + "/login")
    assert serious_violations(page) == []
    log_in(page, console, "/clusters")
    for path in ("/clusters", f"/clusters/{console.cluster_id}", "/tasks"):
        page.goto(console.url + path)
        page.wait_for_selector("h1")
        page.wait_for_load_state("networkidle")
        assert serious_violations(page) == [], path


def test_stop_the_cluster_and_watch_the_flow_view(
    page: Page, console: Console, artifacts: Path
) -> None:
    log_in(page, console, f"/clusters/{console.cluster_id}")
    page.evaluate("window.__sameDocument = true")
    page.locator("[data-action=cluster-stop]").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Stop cluster")
    expect(confirm).to_be_disabled()  # the cluster's name must be typed first
    dialog.get_by_label(f"Type {console.cluster_name} to confirm").fill(console.cluster_name)
    confirm.click()
    dialog.get_by_role("link", name="View task").click()
    page.wait_for_url("**/tasks/*")
    page.wait_for_selector(".flow-node")
    first = page.evaluate("[...document.querySelectorAll('.flow-node')].map(n => n.dataset.status)")
    # 3 zones of 1 server: 1 + 3 + 1 + 3 + 1 + 3 + 1 + 3 + 1 + 3 + 1 steps.
    assert len(first) == 21
    assert set(first) != {"SUCCESSFUL"}, "the task had ended before the page showed it"
    # Meanwhile a second tab tails a stop step's log while it runs (SIGUSR1, then the wait).
    task_id = int(page.url.split("/tasks/")[1].split("?")[0])
    with admin(console) as client:
        subtasks = client.get(f"/api/v2/tasks/instances/{task_id}").json()["data"]["subtasks"]
    stop_step = next(s for s in subtasks if s["name"] == "Stop observer process")
    tail = page.context.new_page()
    tail.goto(f"{console.url}/tasks/{task_id}?view=log&subtask={stop_step['id']}")
    expect(tail.get_by_role("log")).to_contain_text("SIGUSR1", timeout=60_000)
    head = tail.locator(".logview-head .badge")
    expect(head).to_have_attribute("data-status", "RUNNING")  # the line came while it ran
    expect(tail.get_by_role("log")).to_contain_text("stopped", timeout=60_000)
    expect(head).to_have_attribute("data-status", "SUCCESSFUL")
    tail.close()
    page.wait_for_function(ALL_NODES_SUCCESSFUL, arg=21, timeout=120_000)
    expect(page.locator(".page-head .badge")).to_have_attribute("data-status", "SUCCESSFUL")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    shoot(page, artifacts, "flow", docs=True)
    assert serious_violations(page) == []

    # The log view of a stop step, with search; the timeline.
    page.get_by_role("button", name="Stop observer process", exact=False).first.click()
    page.get_by_role("tab", name="Log").click()
    log = page.get_by_role("log")
    expect(log.locator(".log-line").first).to_be_visible()
    page.keyboard.press("/")
    expect(page.locator("#log-search")).to_be_focused()
    page.keyboard.type("stop")
    expect(log.locator("mark").first).to_be_visible()
    shoot(page, artifacts, "log")
    page.get_by_role("tab", name="Timeline").click()
    expect(page.locator(".timeline-row")).to_have_count(21)
    shoot(page, artifacts, "timeline")

    page.get_by_role("link", name=console.cluster_name).first.click()
    expect(page.locator(".page-head .badge")).to_have_attribute("data-status", "STOPPED")


def test_start_it_again_and_watch_the_servers(
    page: Page, console: Console, artifacts: Path
) -> None:
    log_in(page, console, f"/clusters/{console.cluster_id}")
    page.wait_for_function(SERVERS_ARE, arg="STOPPED")
    page.evaluate("window.__sameDocument = true")
    page.locator("[data-action=cluster-start]").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Start cluster").click()
    expect(dialog.get_by_role("link", name="View task")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    # Actions wait while the task runs, and say why.
    expect(page.locator("[data-action=cluster-stop]")).to_have_attribute("aria-disabled", "true")
    expect(page.locator(".notice")).to_contain_text("is running")
    page.wait_for_function(SERVERS_ARE, arg="RUNNING", timeout=180_000)
    expect(page.locator(".page-head .badge")).to_have_attribute("data-status", "RUNNING")
    expect(page.locator("[data-action=cluster-stop]")).to_have_attribute("aria-disabled", "false")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    shoot(page, artifacts, "cluster", docs=True)
    page.goto(console.url + "/tasks?status=SUCCESSFUL")
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.get_by_label("Status")).to_have_value("SUCCESSFUL")
    shoot(page, artifacts, "tasks")


def test_a_refused_operation_shows_its_message_and_code(page: Page, console: Console) -> None:
    log_in(page, console, f"/clusters/{console.cluster_id}")
    page.wait_for_function(SERVERS_ARE, arg="RUNNING")
    # Another operator stops the cluster behind this page's back.
    with admin(console) as client:
        response = client.post(f"/api/v2/ob/clusters/{console.cluster_id}/stop")
    assert response.status_code == 200, response.text
    task_id = response.json()["data"]["id"]
    page.locator("[data-action=cluster-restart]").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(f"Type {console.cluster_name} to confirm").fill(console.cluster_name)
    dialog.get_by_role("button", name="Restart cluster").click()
    expect(dialog.get_by_role("alert")).to_contain_text("OBE11020")
    assert wait_task_done(console, task_id)["status"] == "SUCCESSFUL"


def test_a_failed_step_offers_retry_and_skip_and_the_retry_succeeds(
    page: Page, console: Console, artifacts: Path
) -> None:
    with admin(console) as client:
        status = client.get(f"/api/v2/ob/clusters/{console.cluster_id}").json()["data"]["status"]
    assert status == "STOPPED"  # the previous test's stop
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", console.sql_ports[0]))
        holder.listen()
        log_in(page, console, f"/clusters/{console.cluster_id}")
        page.locator("[data-action=cluster-start]").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Start cluster").click()
        dialog.get_by_role("link", name="View task").click()
        failure = page.locator(".failure")
        expect(failure).to_contain_text("Failed at", timeout=120_000)
        expect(failure).to_contain_text("in use")
        expect(page.get_by_role("button", name="Retry task")).to_be_visible()
        expect(page.get_by_role("button", name="Roll back")).to_be_visible()
        page.get_by_role("button", name="Jump to the failure").click()
        panel = page.locator("aside.panel")
        expect(panel.get_by_role("button", name="Retry step")).to_be_visible()
        expect(panel.get_by_role("button", name="Skip step")).to_be_visible()
        expect(panel.get_by_role("button", name="Cancel step")).to_have_count(0)
        shoot(page, artifacts, "failed", docs=True)
    finally:
        holder.close()
    panel.get_by_role("button", name="Retry step").click()
    page.get_by_role("dialog").get_by_role("button", name="Retry step").click()
    expect(page.locator(".page-head .badge")).to_have_attribute(
        "data-status", "SUCCESSFUL", timeout=120_000
    )
    expect(page.locator(".failure")).to_have_count(0)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.flow-node')].every("
        "(n) => n.dataset.status === 'SUCCESSFUL')"
    )


def test_a_viewer_sees_no_action(context: BrowserContext, console: Console) -> None:
    with admin(console) as client:
        created = client.post(
            "/api/v2/iam/users",
            json={
                "username": "viewer",
                "password": "Viewer-passw0rd",
                "email": "viewer@example.com",
                "roles": ["CLUSTER_VIEWER"],
            },
        )
    assert created.status_code == 200, created.text
    page = context.new_page()
    page.goto(f"{console.url}/clusters/{console.cluster_id}")
    page.get_by_label("User name").fill("viewer")
    page.get_by_label("Password").fill("Viewer-passw0rd")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("[data-server]")).to_have_count(3)
    expect(page.locator("[data-action]")).to_have_count(0)
    expect(page.get_by_text("operations need CLUSTER")).to_be_visible()
    with httpx.Client(base_url=console.url, auth=("viewer", "Viewer-passw0rd")) as client:
        refused = client.post(f"/api/v2/ob/clusters/{console.cluster_id}/start")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "OBE11065"
