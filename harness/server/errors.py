"""The canonical error envelope (`APIErrorPayload`) and the translation of every failure into it.

Whatever fails (our handlers, Connexion's validation, Starlette's routing, an unexpected exception),
the client gets `{code, detail, type[, errors]}` with `code` equal to the HTTP status (D2, D3).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response

logger = logging.getLogger("harness.server")

TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "validation_error",
    426: "upgrade_required_error",
    429: "rate_limit_error",
    500: "app_error",
    502: "bad_gateway_error",
    504: "gateway_timeout_error",
}
"""D3."""

STATUS_MAP: dict[int, int] = {405: 404, 413: 400, 415: 400, 501: 500}
"""Statuses frameworks raise that the contract does not document, mapped to ones it does."""

BUSY_RETRY_AFTER_S = 5
"""Retry-After of a write that waited the whole SQLite busy timeout for another write (429)."""


class APIError(Exception):
    """An error the client is meant to see, exactly as given."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type_ or TYPE_BY_STATUS[status]
        self.errors = errors
        self.headers = headers or {}


def validation_error(errors: list[dict[str, Any]]) -> APIError:
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return APIError(422, f"Validation failed at {where}: {first['msg']}{more}", errors=errors)


def envelope_response(error: APIError) -> Response:
    return Response(
        envelope_body(error), status_code=error.status, media_type="application/json", headers=error.headers
    )


def from_exception(exc: BaseException) -> APIError:
    """Any exception -> the APIError the client sees; unknown ones become a 500 without internals."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, HTTPException):
        status = STATUS_MAP.get(exc.status_code, exc.status_code)
        if status not in TYPE_BY_STATUS:
            status = 500 if status >= 500 else 400
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _default_detail(status)
        if exc.status_code == 405:
            detail = "Not found: this path does not accept that method"
        elif exc.status_code == 404:
            detail = "Not found"
        elif status == 500:
            logger.error("framework error %s: %s", exc.status_code, exc.detail)
            detail = _default_detail(500)
        return APIError(status, detail)
    if is_database_busy(exc):
        # Another write (a long rebuild, say) held the SQLite write lock for the whole busy timeout.
        # Every operation documents 429 with Retry-After: the client backs off and retries.
        return APIError(429, "The items database is busy with another write (a long rebuild?); retry later",
                        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})
    logger.error("unhandled error", exc_info=exc)
    return APIError(500, _default_detail(500))


def is_database_busy(exc: BaseException) -> bool:
    """SQLite gave up waiting for another connection's write lock (`database is locked` / `busy`)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _default_detail(status: int) -> str:
    return {
        400: "Invalid request",
        401: "Authentication failed",
        403: "Access forbidden",
        404: "Not found",
        409: "Conflict",
        422: "Validation error",
        429: "Rate limited",
        500: "Internal server error",
        502: "Bad gateway",
        504: "Gateway timeout",
    }.get(status, "Error")


def envelope_body(error: APIError) -> bytes:
    body: dict[str, Any] = {"code": error.status, "detail": error.detail, "type": error.type}
    if error.errors is not None:
        body["errors"] = error.errors
    return json.dumps(body).encode()


def handle_exception(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Connexion's error-handler hook: every exception class and status lands here."""
    error = from_exception(exc)
    return ConnexionResponse(
        status_code=error.status,
        mimetype="application/json",
        body=envelope_body(error),
        headers=dict(error.headers),
    )
