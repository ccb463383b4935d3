"""bench/console.py in smoke mode: the bundle's size, the first render of the 3,206-step
task page and the SSE event-to-screen delay in headless Chromium, in the JSON a full run
reports."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from obpilot.web import static_dir
from tests.support.bench import TIMEOUT, missing, number, positive, run_smoke

pytestmark = TIMEOUT

CHROMIUM = os.environ.get("OBPILOT_CHROMIUM", "/usr/bin/chromium")  # as the bench finds it


def test_bundle_first_render_and_event_to_screen() -> None:
    if not (static_dir() / "index.html").is_file():
        missing("the console is not built: run `make console`")
    if importlib.util.find_spec("playwright") is None:
        missing("the playwright package is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        missing(f"no chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    result = run_smoke("console")

    bundle = result["bundle"]
    assert "index.html" in bundle["files"]
    for total in ("bytes", "gzip_bytes"):
        each = [positive(sizes[total]) for sizes in bundle["files"].values()]
        assert positive(bundle[f"total_{total}"]) == sum(each)

    page = result["task_page_3206_subtasks"]
    assert positive(page["flow_nodes_drawn"]) >= 1
    to_view, to_end = page["to_flow_view"], page["to_stream_end_applied"]
    for figure in (to_view, to_end):
        assert figure["n"] == 1, figure  # one page load
        _summary(figure)
    assert to_view["p50_ms"] <= to_end["p50_ms"]

    live = result["sse_event_to_screen"]
    for name in ("finish_in_metadb_to_node_changed", "event_arrival_to_frame_painted"):
        _summary(live[name])


def _summary(figure: dict[str, Any]) -> None:
    assert figure["n"] >= 1, figure
    assert number(figure["p50_ms"]) <= number(figure["p90_ms"]) <= number(figure["max_ms"])
    positive(figure["p50_ms"])
