"""The console's numbers, measured in headless Chromium (Debian's, driven by Playwright):

(a) bundle: the built console's files, raw and gzip (`make console` first);
(b) first render of a task page with 3,206 subtasks (the stop DAG of 100 zones x 10
    servers, run to the end, so that the stream also replays every log line): from the
    navigation's start to the flow view's nodes in the page, and to the stream's `end`
    applied; median of several fresh page loads;
(c) SSE event-to-screen delay: tasks whose 12 parallel steps each sleep, followed live on
    their flow view; for every step seen turning SUCCESSFUL, the time from its finishTime
    in the metadb to the node's change in the page (same machine, same clock), and the
    browser's own part (an event's arrival to the frame painted with it).

    .venv/bin/python bench/console.py [--runs 5] [--screenshot flow-3206.png] [--smoke]

`--smoke` (what `make test` runs, tests/bench/): one page load and one live task; the same
code paths and JSON keys as a full run. OBPILOT_CHROMIUM names another chromium binary.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import Browser, sync_playwright
from tests.support.engine_tasks import SEED_STOP, SPREAD, seed_context
from tests.support.server import ADMIN_PASSWORD, ServerProcess

import obpilot.schema  # noqa: F401  (every domain's table on the metadata, as the server has)
from obpilot.db.engine import Database
from obpilot.engine import Context, submit
from obpilot.web import static_dir

CHROMIUM = os.environ.get("OBPILOT_CHROMIUM", "/usr/bin/chromium")  # as tests/web
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-sync"]
SERVE_ENV = {
    "OBPILOT_EXTRA_MODULES": "tests.support.engine_tasks",
    "OBPILOT_ENGINE_POLL_SECONDS": "0.5",
    "OBPILOT_LOG_LEVEL": "WARNING",
}
T = TypeVar("T")

FIRST_RENDER = """() => new Promise((resolve) => {
  const look = () => {
    if (document.querySelector('.flow-node')) {
      requestAnimationFrame(() => resolve(performance.now()));
    } else requestAnimationFrame(look);
  };
  look();
})"""
ENDED = """() => new Promise((resolve) => {
  const look = () => {
    const text = document.querySelector('.stream')?.textContent;
    if (text === 'Ended') requestAnimationFrame(() => resolve(performance.now()));
    else requestAnimationFrame(look);
  };
  look();
})"""
WATCH = """() => {
  window.__seen = {};
  new MutationObserver((changes) => {
    const now = Date.now();
    for (const change of changes) {
      const node = change.target;
      const id = /#(\\d+)/.exec(node.getAttribute('aria-label') || '')?.[1];
      const done = node.dataset.status === 'SUCCESSFUL';
      if (id && done && !(id in window.__seen)) window.__seen[id] = now;
    }
  }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-status']});
}"""


def in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Async metadb work on its own loop: Playwright's sync API holds this thread's."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def submit_task(home: Path, template: Any, context: Context) -> int:
    database = Database(f"sqlite+aiosqlite:///{home / 'obpilot.db'}")
    try:
        async with database.transaction(write=True) as session:
            task = await submit(session, template, context, creator_id=1, creator_name="bench")
            return task.id
    finally:
        await database.dispose()


def wait_task(client: httpx.Client, task_id: int, within: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"/api/v2/tasks/instances/{task_id}").json()["data"]
        if task["status"] != "RUNNING":
            return task
        time.sleep(0.5)
    raise TimeoutError(f"task {task_id} still running")


def bundle() -> dict[str, Any]:
    files = {}
    for path in sorted(static_dir().rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            files[str(path.relative_to(static_dir()))] = {
                "bytes": len(data),
                "gzip_bytes": len(gzip.compress(data, 9)),
            }
    return {
        "files": files,
        "total_bytes": sum(f["bytes"] for f in files.values()),
        "total_gzip_bytes": sum(f["gzip_bytes"] for f in files.values()),
    }


def ms(value: float) -> float:
    return round(value, 1)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": ms(statistics.median(ordered)),
        "p90_ms": ms(ordered[max(0, int(len(ordered) * 0.9) - 1)]),
        "max_ms": ms(ordered[-1]),
    }


def logged_in(browser: Browser, base: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    response = context.request.post(
        base + "/api/v2/iam/login", data={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.ok, response.text()
    return context


def first_render(
    browser: Browser, base: str, task_id: int, runs: int, screenshot: Path | None
) -> dict[str, Any]:
    context = logged_in(browser, base)
    flow, ended, nodes = [], [], 0
    for _ in range(runs):
        page = context.new_page()
        page.goto(f"{base}/tasks/{task_id}?view=flow", wait_until="commit")
        flow.append(page.evaluate(FIRST_RENDER))
        ended.append(page.evaluate(ENDED))
        nodes = page.locator(".flow-node").count()
        if screenshot is not None:
            page.screenshot(path=str(screenshot))
        page.close()
    context.close()
    return {
        "flow_nodes_drawn": nodes,
        "to_flow_view": summary(flow),
        "to_stream_end_applied": summary(ended),
    }


def event_to_screen(
    browser: Browser, server: ServerProcess, client: httpx.Client, runs: int
) -> dict[str, Any]:
    context = logged_in(browser, server.base_url)
    end_to_end: list[float] = []
    in_browser: list[float] = []
    for _ in range(runs):
        task_id = in_thread(
            submit_task(
                server.home,
                SPREAD,
                Context.of({"sleep_seconds": "3"}, {"items": [str(i) for i in range(12)]}),
            )
        )
        page = context.new_page()
        page.goto(f"{server.base_url}/tasks/{task_id}?view=flow")
        page.wait_for_selector(".flow-node")
        page.evaluate(WATCH)
        task = wait_task(client, task_id)
        page.wait_for_function("() => document.querySelector('.stream')?.textContent === 'Ended'")
        seen: dict[str, int] = page.evaluate("window.__seen")
        for subtask in task["subtasks"]:
            shown = seen.get(str(subtask["id"]))
            if shown is None or not subtask["finishTime"]:
                continue
            finished = datetime.fromisoformat(subtask["finishTime"]).timestamp() * 1000
            end_to_end.append(shown - finished)
        batches = page.evaluate("window.__obpilotMetrics?.batches ?? []")
        in_browser += [b["paintedAt"] - b["receivedAt"] for b in batches]
        page.close()
    context.close()
    return {
        "finish_in_metadb_to_node_changed": summary(end_to_end),
        "event_arrival_to_frame_painted": summary(in_browser),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--screenshot", type=Path, help="save the 3,206-step flow view here")
    parser.add_argument("--smoke", action="store_true", help="1 page load, 1 live task")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 1
    if not (static_dir() / "index.html").is_file():
        raise SystemExit("the console is not built: run `make console`")
    result: dict[str, Any] = {"bundle": bundle()}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "home", env=SERVE_ENV).start()
        try:
            big = in_thread(submit_task(server.home, SEED_STOP, seed_context(100, 10)))
            with httpx.Client(
                base_url=server.base_url, auth=("admin", ADMIN_PASSWORD), timeout=60
            ) as client:
                done = wait_task(client, big)
                assert len(done["subtasks"]) == 3206, len(done["subtasks"])
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                    try:
                        result["task_page_3206_subtasks"] = first_render(
                            browser, server.base_url, big, args.runs, args.screenshot
                        )
                        result["sse_event_to_screen"] = event_to_screen(
                            browser, server, client, max(1, args.runs // 2)
                        )
                    finally:
                        browser.close()
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
