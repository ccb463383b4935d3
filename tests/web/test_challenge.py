"""A page's refused login gets no Basic challenge (which would open the browser's own
password prompt); other callers keep it."""

from __future__ import annotations

import httpx

LOGIN = "/api/v2/iam/login"
WRONG = {"username": "admin", "password": "not-the-password"}


async def test_a_page_gets_no_challenge(client: httpx.AsyncClient) -> None:
    response = await client.post(
        LOGIN,
        json=WRONG,
        auth=None,
        headers={"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "IAM10004"
    assert "www-authenticate" not in response.headers


async def test_other_callers_keep_it(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGIN, json=WRONG, auth=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
