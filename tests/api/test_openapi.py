import json
from pathlib import Path

from obpilot.app import create_app
from obpilot.settings import Settings

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_document_matches_the_code(tmp_path: Path) -> None:
    current = create_app(Settings(home=tmp_path)).openapi()
    committed = json.loads(COMMITTED.read_text())
    assert committed == current, "docs/openapi.json is stale: run `make openapi` and commit it"
