"""Constants and an ASGI recorder shared by the API tests (a module of its own, not conftest, so that
``import`` finds it whichever test directory pytest collected first)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SIGNING_KEY = bytes(range(32))
UPLOAD_LIMIT = 64 * 1024

ASGIApp = Callable[..., Any]


class RecordingApp:
    """ASGI wrapper that records each HTTP request's method, Range header and response status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        entry: dict[str, Any] = {
            "method": scope["method"],
            "range": headers.get(b"range", b"").decode() or None,
            "status": None,
        }
        self.requests.append(entry)

        async def record_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, record_status)
