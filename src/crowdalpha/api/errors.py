"""JSON error responses: every failure is ``{"detail": "<message>"}`` with a fitting status, no traceback.

Known errors map to statuses (signatures → 403, missing blobs → 404, bad keys → 400, oversized
uploads → 413, bad API keys → 401, missing scopes → 403). Anything unexpected is logged with its
traceback by the server (uvicorn) and answered with a plain 500 message, so a client never sees internals.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from crowdalpha.api.signing import SignatureError
from crowdalpha.store import (
    AuthenticationError,
    BlobTooLarge,
    InvalidBlobKey,
    NotFound,
    PermissionDenied,
)

INTERNAL_ERROR_MESSAGE = "internal server error"

STATUS_OF_ERROR: dict[type[Exception], int] = {
    SignatureError: 403,
    NotFound: 404,
    InvalidBlobKey: 400,
    BlobTooLarge: 413,
    AuthenticationError: 401,
    PermissionDenied: 403,
}
"""HTTP status for each error whose message is fit to show to the client."""


def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Return the JSON error body ``{"detail": message}`` with a status code."""
    return JSONResponse({"detail": message}, status_code=status_code, headers=headers)


async def _known_error(_: Request, error: Exception) -> Response:
    """Return the error's own message with the status its class maps to."""
    status = next(code for kind, code in STATUS_OF_ERROR.items() if isinstance(error, kind))
    return error_response(status, str(error))


async def _http_error(_: Request, error: Exception) -> Response:
    """Return a framework HTTP error (404 route, 405 method, …) as JSON."""
    assert isinstance(error, StarletteHTTPException)
    return error_response(error.status_code, str(error.detail), dict(error.headers or {}))


async def _validation_error(_: Request, error: Exception) -> Response:
    """Return 422 naming the first invalid parameter, with every problem listed under ``errors``."""
    assert isinstance(error, RequestValidationError)
    problems = [
        {"location": ".".join(str(part) for part in item.get("loc", ())), "message": item.get("msg", "")}
        for item in error.errors()
    ]
    first = problems[0] if problems else {"location": "request", "message": "invalid request"}
    return JSONResponse(
        {"detail": f"invalid {first['location']}: {first['message']}", "errors": problems}, status_code=422
    )


async def _client_gone(_: Request, __: Exception) -> Response:
    """Return 400 for a request whose client disconnected mid-body (nobody will read it)."""
    return error_response(400, "client disconnected")


async def _unexpected_error(_: Request, __: Exception) -> Response:
    """Return a plain 500 message; Starlette re-raises the error afterwards, so the server logs it."""
    return error_response(500, INTERNAL_ERROR_MESSAGE)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    for kind in STATUS_OF_ERROR:
        app.add_exception_handler(kind, _known_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected_error)
