"""What authentication adds to a request, printed as JSON.

Runs an app on a fresh SQLite metadb in a temporary OBPILOT_HOME and measures, over the
in-process ASGI transport, the latency of `GET /api/v2/iam/users/me` authenticated by HTTP
Basic (with the verified-password cache, and with it disabled so every request pays
argon2id), by an AK/SK signature and by a console session, next to the same-run baseline
`GET /api/v2/info`, which needs no authentication.

    .venv/bin/python bench/iam.py [--requests 300] [--smoke]

`--smoke` (what `make test` runs, tests/bench/): 10 requests per method; the same code
paths and JSON keys as a full run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.ocp_client import OcpAccessKeyAuth

from obpilot.app import create_app
from obpilot.logging import configure_logging
from obpilot.settings import Settings

PASSWORD = "Bench-Passw0rd!"  # noqa: S105  (a throwaway metadb)


async def measure(count: int, call: Callable[[], Awaitable[httpx.Response]]) -> dict[str, float]:
    await call()  # warm-up (and the first, uncached password check)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = await call()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(response.text)
    samples.sort()
    return {
        "requests": count,
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
        "mean_ms": round(statistics.fmean(samples), 2),
    }


async def run(requests: int, home: Path, cache_seconds: float) -> dict[str, dict[str, float]]:
    settings = Settings(
        home=home,
        admin_password=PASSWORD,
        basic_auth_cache_seconds=cache_seconds,
        advertised_address="bench",  # the Host the AK/SK requests below sign
    )
    app = create_app(settings)
    results: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        base = "http://bench"
        async with httpx.AsyncClient(transport=transport, base_url=base) as anonymous:
            results["baseline_info_no_auth"] = await measure(
                requests, lambda: anonymous.get("/api/v2/info")
            )
        basic_auth = ("admin", PASSWORD)
        async with httpx.AsyncClient(transport=transport, base_url=base, auth=basic_auth) as basic:
            name = "basic_cached" if cache_seconds else "basic_uncached_argon2id"
            count = requests if cache_seconds else max(10, requests // 10)
            results[name] = await measure(count, lambda: basic.get("/api/v2/iam/users/me"))
            if not cache_seconds:
                return results
            pair = (await basic.post("/api/v2/iam/accessKeys")).json()["data"]
        signer = OcpAccessKeyAuth(pair["accessKeyId"], pair["accessKeySecret"])
        async with httpx.AsyncClient(transport=transport, base_url=base, auth=signer) as signed:
            results["aksk_signature"] = await measure(
                requests, lambda: signed.get("/api/v2/iam/users/me")
            )
        async with httpx.AsyncClient(transport=transport, base_url=base) as console:
            await console.post(
                "/api/v2/iam/login", json={"username": "admin", "password": PASSWORD}
            )
            results["session_cookie"] = await measure(
                requests, lambda: console.get("/api/v2/iam/users/me")
            )
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--smoke", action="store_true", help="10 requests per method")
    args = parser.parse_args()
    if args.smoke:
        args.requests = 10
    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        results = await run(args.requests, Path(first), cache_seconds=60)
        results.update(await run(args.requests, Path(second), cache_seconds=0))
    print(json.dumps({"metadb": "sqlite", "transport": "asgi", "results": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
