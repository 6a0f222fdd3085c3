"""The canonical error envelope rules (ENV001-ENV008), as one pure function used on every error response.

Both our own probes and Schemathesis' generated cases feed it, so an envelope bug is reported under
the same ID whoever found it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

TYPE_BY_STATUS: dict[int, frozenset[str]] = {
    400: frozenset({"invalid_request_error"}),
    401: frozenset({"authentication_error", "expired_signature_error"}),
    403: frozenset({"permission_error"}),
    404: frozenset({"not_found_error"}),
    409: frozenset({"conflict_error", "already_exists_error"}),
    422: frozenset({"validation_error"}),
    426: frozenset({"upgrade_required_error"}),
    429: frozenset({"rate_limit_error"}),
    500: frozenset({"app_error", "database_error", "configuration_error"}),
    502: frozenset({"bad_gateway_error"}),
    504: frozenset({"gateway_timeout_error"}),
}
"""D3, plus the documented alternatives (database_error, configuration_error, already_exists_error, ...)."""

ENVELOPE_IDS: tuple[str, ...] = ("ENV001", "ENV002", "ENV003", "ENV004", "ENV005", "ENV006", "ENV007", "ENV008")
_SNAKE = re.compile(r"[a-z][a-z0-9_]*")
_LOC_ROOTS = frozenset({"body", "query", "path", "header"})

Verdicts = dict[str, str | None]
"""Check ID -> None when the rule holds, else why it does not."""


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _entries_problem(body: Mapping[str, Any]) -> str | None:
    """ENV006: the documented shape of each validation error entry."""
    errors = body.get("errors")
    if errors is None:
        return None
    if not isinstance(errors, list):
        return f"errors is {type(errors).__name__}, not an array"
    for n, entry in enumerate(errors):
        if not isinstance(entry, Mapping):
            return f"errors[{n}] is not an object"
        loc, msg, kind = entry.get("loc"), entry.get("msg"), entry.get("type")
        if not isinstance(loc, list) or not loc:
            return f"errors[{n}].loc must be a non-empty array, got {loc!r}"
        if not isinstance(msg, str) or not isinstance(kind, str):
            return f"errors[{n}] needs string msg and type, got {entry!r}"
    return None


def _listing_problem(status: int, body: Mapping[str, Any]) -> str | None:
    """ENV008 (D2): a 422 lists its problems, each located FastAPI-style."""
    if status != 422:
        return None
    errors = body.get("errors")
    if not isinstance(errors, list) or not errors:
        return "a 422 must list at least one problem in errors[] (D2)"
    for n, entry in enumerate(errors):
        loc = entry.get("loc") if isinstance(entry, Mapping) else None
        if isinstance(loc, list) and loc and loc[0] not in _LOC_ROOTS:
            return f"errors[{n}].loc must start with body/query/path (FastAPI-style), got {loc!r}"
    return None


def envelope_verdicts(status: int, content_type: str, body: bytes, headers: Mapping[str, str]) -> Verdicts:
    """Every envelope rule for one error response (status >= 400); empty for a success."""
    if status < 400:
        return {}
    verdicts: Verdicts = dict.fromkeys(ENVELOPE_IDS)
    if status == 429:
        retry = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        if retry is None or not retry.strip().isdigit():
            verdicts["ENV007"] = f"429 without a whole-seconds Retry-After header (got {retry!r})"
    else:
        del verdicts["ENV007"]
    media = _media_type(content_type)
    parsed: Any = None
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if media != "application/json" or not isinstance(parsed, dict):
        what = "an empty body" if not body else f"{media or 'no content type'}"
        verdicts["ENV001"] = f"the error body must be an application/json envelope object, got {what}"
        if not isinstance(parsed, dict):  # nothing more to judge: the other rules stay unjudged
            return {k: v for k, v in verdicts.items() if k in ("ENV001", "ENV007")}
    code, kind, detail = parsed.get("code"), parsed.get("type"), parsed.get("detail")
    if code != status:
        verdicts["ENV002"] = f"code is {code!r} but the HTTP status is {status}"
    if not isinstance(kind, str) or not _SNAKE.fullmatch(kind):
        verdicts["ENV003"] = f"type must be a snake_case string, got {kind!r}"
        verdicts["ENV004"] = None
    elif status in TYPE_BY_STATUS and kind not in TYPE_BY_STATUS[status]:
        verdicts["ENV004"] = f"type {kind!r} for status {status}; D3 says {' or '.join(sorted(TYPE_BY_STATUS[status]))}"
    if not isinstance(detail, str) or not detail.strip():
        verdicts["ENV005"] = f"detail must be a non-empty string, got {detail!r}"
    elif "Traceback (most recent call last)" in detail:
        verdicts["ENV005"] = "detail leaks a Python traceback"
    verdicts["ENV006"] = _entries_problem(parsed)
    verdicts["ENV008"] = _listing_problem(status, parsed)
    return verdicts
