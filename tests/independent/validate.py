"""Input checks, hand-written from the limits the documentation gives (and no others).

Every problem of a request is collected before answering, so a 422 lists one errors[] entry per
problem with a FastAPI-style loc (D2). Bodies that are not JSON, or not sent as JSON, are 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams

from .errors import ApiError, Loc, invalid, problem

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
STATUSES = ("open", "triaged", "verified", "resolved", "dismissed")
SEVERITIES = ("critical", "high", "medium", "low", "info")
"""Worst first."""
SOURCES = ("api", "runtime", "extracted")
MISSING: Any = object()
"""A key the request did not send (distinct from an explicit null)."""


def parse_json(body: bytes, content_type: str | None) -> Any:
    """D2: the wrong content type, or a body that is not JSON, is 400; a missing or empty one is 422 at ["body"]."""
    if not body.strip():
        raise invalid([problem(["body"], "Field required", "missing")])
    if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(400, "The body must be sent as application/json")
    try:
        return strict_json(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        raise ApiError(400, "The body is not valid JSON") from None


def strict_json(text: str) -> Any:
    """json.loads refusing what could never be stored or answered: NaN, Infinity, 1e400, lone surrogates."""
    value = json.loads(text, parse_constant=_no_constant)
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def timestamp(moment: datetime) -> str:
    """The one stored form of a time: UTC, microseconds, `Z`; its text order is its time order."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


@dataclass
class Checker:
    """Collects problems; `done()` raises one 422 listing them all."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, loc: Loc, msg: str, kind: str) -> None:
        self.errors.append(problem(loc, msg, kind))

    def done(self) -> None:
        if self.errors:
            raise invalid(self.errors)

    def object(self, value: Any, loc: Loc) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.fail(loc, "Input should be a valid dictionary", "dict_type")
        return {}

    def present(self, value: Any, loc: Loc, required: bool, nullable: bool) -> bool:
        """Whether there is a value to check further (absent and allowed null are fine and stop here)."""
        if value is MISSING:
            if required:
                self.fail(loc, "Field required", "missing")
            return False
        if value is None:
            if not nullable:
                self.fail(loc, "Input should not be null", "none_forbidden")
            return False
        return True

    def text(self, value: Any, loc: Loc, *, lo: int = 0, hi: int | None = None, required: bool = False,
             nullable: bool = True) -> str | None:
        if not self.present(value, loc, required, nullable):
            return None
        if not isinstance(value, str):
            self.fail(loc, "Input should be a valid string", "string_type")
        elif len(value) < lo:
            self.fail(loc, f"String should have at least {lo} character{'s' * (lo != 1)}", "string_too_short")
        elif hi is not None and len(value) > hi:
            self.fail(loc, f"String should have at most {hi} characters", "string_too_long")
        else:
            return value
        return None

    def uuid(self, value: Any, loc: Loc, *, required: bool = False, nullable: bool = True) -> str | None:
        """A hyphenated UUID, answered in lower case so that every comparison is case-insensitive."""
        if not self.present(value, loc, required, nullable):
            return None
        if isinstance(value, str) and UUID_RE.fullmatch(value):
            return value.lower()
        self.fail(loc, "Input should be a valid UUID", "uuid_parsing")
        return None

    def choice(self, value: Any, loc: Loc, choices: Sequence[str], *, required: bool = False,
               nullable: bool = True) -> str | None:
        if not self.present(value, loc, required, nullable):
            return None
        if isinstance(value, str) and value in choices:
            return value
        self.fail(loc, f"Input should be {', '.join(repr(c) for c in choices)}", "enum")
        return None

    def integer(self, raw: str | None, loc: Loc, default: int, lo: int, hi: int | None = None) -> int:
        if raw is None:
            return default
        try:
            number = int(raw.strip()) if raw.strip().lstrip("+-").isdigit() else None
        except ValueError:
            number = None
        if number is None:
            self.fail(loc, "Input should be a valid integer", "int_parsing")
        elif number < lo:
            self.fail(loc, f"Input should be greater than or equal to {lo}", "greater_than_equal")
        elif hi is not None and number > hi:
            self.fail(loc, f"Input should be less than or equal to {hi}", "less_than_equal")
        else:
            return number
        return default

    def moment(self, raw: str | None, loc: Loc) -> str | None:
        if raw is None:
            return None
        try:
            moment = datetime.fromisoformat(raw.strip().upper().replace("Z", "+00:00"))
        except ValueError:
            self.fail(loc, "Input should be a valid datetime", "datetime_parsing")
            return None
        try:
            return timestamp(moment)
        except OverflowError:  # before year 1 or after 9999 once in UTC: earlier or later than any stored time
            return "0000" if (moment.utcoffset() or timedelta()) > timedelta() else "9999~"


def link_fields(c: Checker, d: dict[str, Any], loc: Loc) -> dict[str, Any]:
    """relationship 1..64 and exactly one of target_item_id (uuid) / target_ref (<= 128); the one not given is
    left out, not sent as null (the SDK never sends a null there)."""
    out = {"relationship": c.text(d.get("relationship", MISSING), [*loc, "relationship"], lo=1, hi=64,
                                  required=True, nullable=False),
           "target_item_id": c.uuid(d.get("target_item_id", MISSING), [*loc, "target_item_id"], nullable=False),
           "target_ref": c.text(d.get("target_ref", MISSING), [*loc, "target_ref"], hi=128, nullable=False)}
    given = [k for k in ("target_item_id", "target_ref") if k in d]
    if len(given) != 1:
        c.fail(loc or ["body"], "Exactly one of target_item_id and target_ref is required", "value_error")
    return out


def create_item(body: Any) -> dict[str, Any]:
    c = Checker()
    d = c.object(body, ["body"])
    c.done()
    out: dict[str, Any] = {
        "item_type": c.text(d.get("item_type", MISSING), ["body", "item_type"], lo=1, hi=64, required=True,
                            nullable=False),
        "dedupe_key": c.text(d.get("dedupe_key", MISSING), ["body", "dedupe_key"], hi=64),
        "session_id": c.uuid(d.get("session_id", MISSING), ["body", "session_id"]),
        "capability": c.text(d.get("capability", MISSING), ["body", "capability"], hi=255),
        "capability_version": c.text(d.get("capability_version", MISSING), ["body", "capability_version"], hi=64),
        "status": c.choice(d.get("status", MISSING), ["body", "status"], STATUSES),
        "source": c.choice(d.get("source", MISSING), ["body", "source"], SOURCES) or "api",
    }
    for key in ("ref", "title", "notes", "schema_ref", "trace_id", "span_id"):
        out[key] = c.text(d.get(key, MISSING), ["body", key])
    out["data"] = c.object(d["data"], ["body", "data"]) if "data" in d else {}
    links = d.get("links")
    out["links"] = []
    if links is not None and not isinstance(links, list):
        c.fail(["body", "links"], "Input should be a valid list", "list_type")
    for n, entry in enumerate(links if isinstance(links, list) else []):
        loc: Loc = ["body", "links", n]
        out["links"].append(link_fields(c, c.object(entry, loc), loc))
    c.done()
    return out


def update_item(body: Any) -> dict[str, Any]:
    """Only the keys sent: an explicit `"status": null` un-triages, an absent one changes nothing."""
    c = Checker()
    d = c.object(body, ["body"])
    out: dict[str, Any] = {}
    if d.get("data") is not None:
        out["data"] = c.object(d["data"], ["body", "data"])
    if "title" in d:
        out["title"] = c.text(d["title"], ["body", "title"], hi=512)
    if "status" in d:
        out["status"] = c.choice(d["status"], ["body", "status"], STATUSES)
    if "notes" in d:
        out["notes"] = c.text(d["notes"], ["body", "notes"])
    c.done()
    return out


def bulk_update(body: Any) -> tuple[list[str], str | None]:
    """item_ids 1..200 uuids (duplicates dropped, first order kept), status required but nullable."""
    c = Checker()
    d = c.object(body, ["body"])
    status = c.choice(d.get("status", MISSING), ["body", "status"], STATUSES, required=True)
    raw = d.get("item_ids", MISSING)
    ids: list[str] = []
    if c.present(raw, ["body", "item_ids"], required=True, nullable=False):
        if not isinstance(raw, list):
            c.fail(["body", "item_ids"], "Input should be a valid list", "list_type")
        elif not 1 <= len(raw) <= 200:
            c.fail(["body", "item_ids"], "List should have between 1 and 200 items", "too_short" if not raw
                   else "too_long")
        else:
            ids = [i for n, v in enumerate(raw) if (i := c.uuid(v, ["body", "item_ids", n], nullable=False))]
    c.done()
    return list(dict.fromkeys(ids)), status


def create_link(body: Any) -> dict[str, Any]:
    c = Checker()
    d = c.object(body, ["body"])
    c.done()
    out = link_fields(c, d, ["body"])
    c.done()
    return out


def rebuild(body: Any) -> tuple[list[str] | None, str | None]:
    """D1: neither a session_id nor a non-empty run_ids selects nothing: 422 with loc ["body"]."""
    c = Checker()
    d = c.object(body, ["body"])
    session_id = c.uuid(d.get("session_id", MISSING), ["body", "session_id"])
    raw = d.get("run_ids")
    run_ids: list[str] | None = None
    if raw is not None and not isinstance(raw, list):
        c.fail(["body", "run_ids"], "Input should be a valid list", "list_type")
    elif raw is not None:
        run_ids = [r for n, v in enumerate(raw) if (r := c.text(v, ["body", "run_ids", n], nullable=False))
                   is not None]
    c.done()
    if session_id is None and not run_ids:
        c.fail(["body"], "Provide a session_id and/or a non-empty run_ids", "value_error")
        c.done()
    return run_ids or None, session_id


@dataclass
class Filters:
    """list_items' query (also item_summary's, which only sets item_type)."""

    item_type: str | None = None
    severity: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    min_severity: str | None = None
    category: str | None = None
    capability: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    session_id: str | None = None
    ref: str | None = None
    q: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    sort: str = "created_at"
    order: str = "desc"
    page: int = 1
    limit: int = 50


def _many(c: Checker, params: QueryParams, name: str, choices: Sequence[str] | None = None) -> list[str]:
    values = params.getlist(name)
    if choices is not None:
        for n, value in enumerate(values):
            c.choice(value, ["query", name, n] if len(values) > 1 else ["query", name], choices)
    return values


def list_query(params: QueryParams) -> Filters:
    c = Checker()
    f = Filters(
        item_type=c.text(params.get("item_type"), ["query", "item_type"], hi=64),
        severity=_many(c, params, "severity", SEVERITIES),
        status=_many(c, params, "status", (*STATUSES, "needs_review")),
        min_severity=c.choice(c.text(params.get("min_severity"), ["query", "min_severity"], hi=16),
                              ["query", "min_severity"], SEVERITIES),
        category=c.text(params.get("category"), ["query", "category"], hi=128),
        capability=_many(c, params, "capability"),
        source=_many(c, params, "source", SOURCES),
        session_id=c.uuid(params.get("session_id"), ["query", "session_id"]),
        ref=c.text(params.get("ref"), ["query", "ref"], hi=128),
        q=c.text(params.get("q"), ["query", "q"], hi=256),
        created_after=c.moment(params.get("created_after"), ["query", "created_after"]),
        created_before=c.moment(params.get("created_before"), ["query", "created_before"]),
        sort=c.choice(params.get("sort"), ["query", "sort"], ("created_at", "severity", "status", "relevance"))
        or "created_at",
        order=c.choice(params.get("order"), ["query", "order"], ("asc", "desc")) or "desc",
        page=c.integer(params.get("page"), ["query", "page"], 1, 1),
        limit=c.integer(params.get("limit"), ["query", "limit"], 50, 1, 200),
    )
    c.done()
    return f


def summary_query(params: QueryParams) -> Filters:
    c = Checker()
    f = Filters(item_type=c.text(params.get("item_type"), ["query", "item_type"], hi=64))
    c.done()
    return f


def path_uuid(value: str, name: str) -> str:
    c = Checker()
    found = c.uuid(value, ["path", name])
    c.done()
    assert found is not None
    return found
