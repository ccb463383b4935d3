"""bench/iam.py in smoke mode: each authentication method's latency next to the
unauthenticated baseline, in the JSON a full run reports."""

from __future__ import annotations

from tests.support.bench import TIMEOUT, number, positive, run_smoke

pytestmark = TIMEOUT

METHODS = ("basic_cached", "basic_uncached_argon2id", "aksk_signature", "session_cookie")


def test_every_method_next_to_the_baseline() -> None:
    result = run_smoke("iam")
    assert (result["metadb"], result["transport"]) == ("sqlite", "asgi")
    figures = result["results"]
    assert set(figures) == {"baseline_info_no_auth", *METHODS}
    for name, figure in figures.items():
        assert figure["requests"] == 10, name
        assert 0 < positive(figure["p50_ms"]) <= number(figure["p99_ms"]), name
        positive(figure["mean_ms"])
    # argon2id on every request costs far more than the cached check.
    assert figures["basic_uncached_argon2id"]["p50_ms"] > figures["basic_cached"]["p50_ms"]
