"""The canonical error envelope, checked the same way in every test."""

from __future__ import annotations

import re
from typing import Any

import httpx

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "validation_error",
    429: "rate_limit_error",
    500: "app_error",
    502: "bad_gateway_error",
    504: "gateway_timeout_error",
}


def assert_envelope(response: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """The status, then the body: `{code, detail, type[, errors]}` with code == status (D2, D3)."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert set(body) <= {"code", "detail", "type", "errors"}, body
    assert body["code"] == status
    assert body["type"] == (type_ or TYPES[status])
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["type"])
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in body["detail"]
    for entry in body.get("errors", []):
        assert set(entry) == {"loc", "msg", "type"}
        assert isinstance(entry["loc"], list) and entry["loc"]
        assert isinstance(entry["msg"], str) and isinstance(entry["type"], str)
    return body
