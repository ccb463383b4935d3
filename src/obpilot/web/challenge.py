"""No Basic challenge on the console's refused logins.

`POST /api/v2/iam/login` with a wrong password answers 401 with `WWW-Authenticate: Basic`,
like every refusal of `errors.NotAuthenticated`. For a page's fetch() that header makes
Chromium open its own password prompt (and wait on it), so the console could never show the
refusal. obpilot already leaves the challenge out for browsers on every other route
(`iam.deps.authenticate`); this does the same for the login route, for requests a page made
(`Sec-Fetch-Mode` other than `navigate`). Status, body and audit are unchanged."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGIN_PATH = "/api/v2/iam/login"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class NoChallengeOnConsoleLogin:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mode = _header(scope, b"sec-fetch-mode") if scope["type"] == "http" else None
        if scope.get("path") != LOGIN_PATH or mode in (None, b"navigate"):
            await self.app(scope, receive, send)
            return

        async def without_challenge(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                message = {
                    **message,
                    "headers": [
                        (k, v) for k, v in message.get("headers", []) if k != b"www-authenticate"
                    ],
                }
            await send(message)

        await self.app(scope, receive, without_challenge)
