"""list_items filters, pagination and sorting, and item_summary, judged against the items this run created.

The run's items live in a session of their own, so `session_id` scopes every query to a set whose
expected answer is known exactly: a filter must return all matching items and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from harness.conformance.context import Context
from harness.conformance.scratch import ScratchItems, obj

Item = dict[str, Any]
SEVERITY_RANK = {"critical": 5, "high": 4, "medium": 3, "low": 2, "info": 1}


def _severity(item: Item) -> str | None:
    data = item.get("data")
    value = data.get("severity") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _when(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _filters(scratch: ScratchItems, tag: str) -> list[tuple[dict[str, Any], Callable[[Item], bool]]]:
    """(query, the predicate an item must satisfy to be in the answer)."""
    pivot = scratch.items["c"]["created_at"]
    return [
        ({"item_type": "asset"}, lambda i: i["item_type"] == "asset"),
        ({"severity": ["high", "critical"]}, lambda i: _severity(i) in ("high", "critical")),
        ({"status": ["needs_review"]}, lambda i: i.get("effective_status") == "needs_review"),
        ({"status": ["triaged", "open"]}, lambda i: i.get("effective_status") in ("triaged", "open")),
        ({"min_severity": "medium"}, lambda i: SEVERITY_RANK.get(_severity(i) or "", 0) >= 3),
        ({"category": f"{tag}-cat-a"}, lambda i: isinstance(i["data"], dict) and i["data"].get("category")
         == f"{tag}-cat-a"),
        ({"capability": [f"{tag}-cap-1"]}, lambda i: i.get("capability") == f"{tag}-cap-1"),
        ({"source": ["runtime"]}, lambda i: i.get("source") == "runtime"),
        ({"ref": f"{tag}-c"}, lambda i: i.get("ref") == f"{tag}-c"),
        ({"q": f"NEEDLE{tag}".upper()}, lambda i: f"needle{tag}" in str(i["data"]).lower()
         or f"needle{tag}" in str(i.get("title")).lower()),
        ({"created_after": pivot}, lambda i: _when(i["created_at"]) > _when(pivot)),
        ({"created_before": pivot}, lambda i: _when(i["created_at"]) < _when(pivot)),
    ]


def _nonzero(value: Any) -> Any:
    """Summary maps may omit zero counts: compare them without."""
    return {k: v for k, v in value.items() if v} if isinstance(value, dict) else value


def _ids(body: dict[str, Any]) -> list[str]:
    return [str(i.get("id")) for i in body.get("items", []) if isinstance(i, dict)]


def check_filters(ctx: Context, scratch: ScratchItems) -> None:
    """LST001: each filter, ANDed with the run's session, returns exactly the matching items."""
    names = scratch.names_by_id()
    for query, predicate in _filters(scratch, ctx.tag):
        ex = ctx.api.call("list_items", params={**query, "session_id": scratch.session_id, "limit": 200})
        if not ctx.status_is("LST001", ex, 200, why=f"filter {query}"):
            continue
        got = set(_ids(obj(ex)))
        expected = {str(item["id"]) for item in scratch.items.values() if predicate(item)}
        extra = sorted(names.get(i, i) for i in got - expected)
        missing = sorted(names.get(i, i) for i in expected - got)
        ctx.expect("LST001", "list_items", not extra and not missing,
                   f"filter {query}: returned items that do not match {extra}, left out matching items {missing}", ex)


def check_pagination(ctx: Context, scratch: ScratchItems) -> None:
    """LST002: three pages of two for five items, then an empty page."""
    limit, count = 2, len(scratch.items)
    seen: list[str] = []
    pages = math.ceil(count / limit)
    for page in range(1, pages + 2):
        ex = ctx.api.call("list_items", params={"session_id": scratch.session_id, "limit": limit, "page": page,
                                                "sort": "created_at", "order": "asc"})
        if not ctx.status_is("LST002", ex, 200, why=f"page {page}"):
            return
        body = obj(ex)
        ids = _ids(body)
        expected = {"total": count, "page": page, "limit": limit, "total_pages": pages,
                    "has_next": page < pages, "has_previous": page > 1}
        got = {k: body.get(k) for k in expected}
        ctx.expect("LST002", "list_items", got == expected, f"page {page}: expected {expected}, got {got}", ex)
        want = max(0, min(limit, count - (page - 1) * limit))
        ctx.expect("LST002", "list_items", len(ids) == want, f"page {page} must hold {want} items, got {len(ids)}",
                   ex)
        seen.extend(ids)
    ctx.expect("LST002", "list_items", sorted(seen) == sorted(str(i["id"]) for i in scratch.items.values()),
               f"the pages together must hold each item exactly once, got {seen}")


def check_sorting(ctx: Context, scratch: ScratchItems) -> None:
    """LST003: severity descending puts critical first and items without a severity last; created_at asc."""
    ex = ctx.api.call("list_items", params={"session_id": scratch.session_id, "sort": "severity", "order": "desc"})
    if ctx.status_is("LST003", ex, 200):
        ranks = [SEVERITY_RANK.get(_severity(i) or "", 0) for i in obj(ex).get("items", [])]
        ctx.expect("LST003", "list_items", ranks == sorted(ranks, reverse=True) and len(ranks) == len(scratch.items),
                   f"sort=severity&order=desc must go critical -> none, got ranks {ranks}", ex)
    ex = ctx.api.call("list_items", params={"session_id": scratch.session_id, "sort": "created_at", "order": "asc"})
    if ctx.status_is("LST003", ex, 200):
        times = [_when(i["created_at"]) for i in obj(ex).get("items", [])]
        ctx.expect("LST003", "list_items", times == sorted(times), "sort=created_at&order=asc must ascend", ex)


def check_summary(ctx: Context, scratch: ScratchItems) -> None:
    """SUM001: the per-run item type counts exactly; the whole project agrees with list_items."""
    own_type = f"hc_{ctx.tag}"
    ex = ctx.api.call("item_summary", params={"item_type": own_type})
    if ctx.status_is("SUM001", ex, 200):
        body = obj(ex)
        got = {k: _nonzero(body.get(k)) for k in ("total", "by_type", "by_severity", "worst_severity")}
        expected = {"total": 1, "by_type": {own_type: 1}, "by_severity": {"critical": 1}, "worst_severity": "critical"}
        ctx.expect("SUM001", "item_summary", got == expected, f"summary of {own_type}: expected {expected}, got {got}",
                   ex)
        by_status = _nonzero(body.get("by_status"))
        ctx.expect("SUM001", "item_summary", by_status == {},
                   f"items whose effective status is null are left out of by_status, got {by_status}", ex)
    for _attempt in range(2):  # other writers may race us in a shared scratch project: retry once
        summary = ctx.api.call("item_summary")
        listed = ctx.api.call("list_items", params={"limit": 1})
        s, li = obj(summary), obj(listed)
        raw = s.get("by_type")
        by_type: dict[str, Any] = raw if isinstance(raw, dict) else {}
        counted = sum(v for v in by_type.values() if isinstance(v, int))
        consistent = s.get("total") == li.get("total") and counted == s.get("total")
        if consistent:
            break
    ctx.expect("SUM001", "item_summary", consistent,
               f"summary total {s.get('total')} (by_type {by_type}) must equal list_items total {li.get('total')}",
               summary)


def run_all(ctx: Context, scratch: ScratchItems) -> None:
    check_filters(ctx, scratch)
    check_pagination(ctx, scratch)
    check_sorting(ctx, scratch)
    check_summary(ctx, scratch)
