"""Property-based fuzzing of every documented route against a live `obpilot serve`:
no 500, and nothing but the OCP envelope (or Prometheus text for /metrics) comes back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from tests.support.server import ADMIN_PASSWORD, ServerProcess

ENVELOPE_KEYS = {"successful", "timestamp", "duration", "status", "traceId", "server"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(Path(tmp_path_factory.mktemp("fuzz"))) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(live_server: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(live_server.base_url + "/openapi.json")


def answered_in_envelope(
    ctx: object, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    if case.path == "/metrics":
        assert response.status_code == 200
        return
    body = response.json()
    assert isinstance(body, dict), f"not an envelope: {response.text[:200]}"
    missing = ENVELOPE_KEYS - body.keys()
    assert not missing, f"envelope lacks {missing}: {response.text[:200]}"
    assert body["status"] == response.status_code
    if response.status_code >= 400:
        assert body["successful"] is False
        assert isinstance(body.get("error", {}).get("code"), str), response.text[:200]


def test_every_route_answers_in_the_envelope(api_schema: schemathesis.BaseSchema) -> None:
    # Driven by hand rather than through schemathesis' pytest plugin, which does not
    # support this pytest version.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                auth=("admin", ADMIN_PASSWORD),
                timeout=30,
                checks=[not_a_server_error, answered_in_envelope],
            )

        check()
