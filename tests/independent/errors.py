"""The canonical error envelope (the documented APIErrorPayload, D3): one exception type, one renderer."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
         409: "conflict_error", 422: "validation_error", 500: "app_error"}
"""D3: the `type` of each status this implementation answers."""

Loc = list[str | int]


class ApiError(Exception):
    """Raised anywhere in a handler; the route wrapper renders it as the envelope, so no handler builds one."""

    def __init__(self, status: int, detail: str, *, kind: str | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.kind, self.errors = status, detail, kind or TYPES[status], errors

    def response(self) -> Response:
        body: dict[str, Any] = {"code": self.status, "detail": self.detail, "type": self.kind}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, self.status)


def problem(loc: Loc, msg: str, kind: str) -> dict[str, Any]:
    """One FastAPI-style entry of errors[] (D2)."""
    return {"loc": loc, "msg": msg, "type": kind}


def invalid(errors: list[dict[str, Any]]) -> ApiError:
    """422 validation_error listing every problem (D2)."""
    return ApiError(422, "Request validation failed", errors=errors)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def json_response(body: Any, status: int = 200) -> Response:
    """JSON without NaN (input is refused before it could hold one) and UTF-8 as is."""
    text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(text.encode("utf-8"), status, media_type="application/json")
