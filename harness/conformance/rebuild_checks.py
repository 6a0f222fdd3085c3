"""Rebuild invariants from the outside: snapshots of list_items before and after, compared (RBL001-RBL005).

A snapshot is every item of the project, read page by page; a rebuild may add items (healed ones)
and refresh span-owned fields, but never delete a row, duplicate one, or touch a disposition.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from harness.conformance.context import CheckFailed, Context
from harness.conformance.http import Exchange
from harness.conformance.scratch import ScratchItems, obj

Snapshot = list[dict[str, Any]]
MAX_PAGES = 1000


def snapshot(ctx: Context, **params: str) -> Snapshot:
    """Every item of the project (or of a filter), oldest first, 200 a page."""
    items: Snapshot = []
    for page in range(1, MAX_PAGES + 1):
        ex = ctx.api.call("list_items", params={**params, "limit": 200, "page": page, "sort": "created_at",
                                                "order": "asc"})
        if ex.status != 200:
            ctx.record("RBL002", "list_items", f"a snapshot page must answer 200, got {ex.status}", ex)
            raise CheckFailed("snapshot failed")
        body = obj(ex)
        items.extend(i for i in body.get("items", []) if isinstance(i, dict))
        if not body.get("has_next"):
            break
    return items


def rebuild(ctx: Context, body: dict[str, Any], check_id: str = "RBL001") -> tuple[Exchange, int | None]:
    """POST rebuild_items; RBL001 holds when it answers 200 with a non-negative integer `processed`."""
    ex = ctx.api.call("rebuild_items", json_body=body)
    processed = obj(ex).get("processed")
    ok = ex.status == 200 and isinstance(processed, int) and not isinstance(processed, bool) and processed >= 0
    ctx.expect(check_id, "rebuild_items", ok,
               f"rebuild {body} must answer 200 {{processed: integer >= 0}}, got {ex.status} {obj(ex)}", ex)
    return ex, processed if ok else None


def compare(ctx: Context, before: Snapshot, after: Snapshot, what: str) -> None:
    """RBL002-RBL004 between two snapshots."""
    after_by_id = {str(i.get("id")): i for i in after}
    lost = [str(i.get("id")) for i in before if str(i.get("id")) not in after_by_id]
    ctx.expect("RBL002", "rebuild_items", not lost, f"{what}: {len(lost)} item(s) disappeared: {lost[:10]}")
    ids = Counter(str(i.get("id")) for i in after)
    keys = Counter(str(i["dedupe_key"]) for i in after if i.get("dedupe_key") is not None)
    dup_ids = [k for k, n in ids.items() if n > 1]
    dup_keys = [k for k, n in keys.items() if n > 1]
    ctx.expect("RBL003", "rebuild_items", not dup_ids and not dup_keys,
               f"{what}: duplicated ids {dup_ids[:10]}, duplicated dedupe_keys {dup_keys[:10]}")
    changed = [
        f"{i.get('ref') or i.get('id')}: {i.get('disposition')} -> {after_by_id[str(i.get('id'))].get('disposition')}"
        for i in before
        if str(i.get("id")) in after_by_id and after_by_id[str(i.get("id"))].get("disposition") != i.get("disposition")
    ]
    ctx.expect("RBL004", "rebuild_items", not changed, f"{what}: dispositions changed: {changed[:5]}")


def unchanged(ctx: Context, first: Snapshot, second: Snapshot, what: str) -> None:
    """RBL005: the second rebuild of a selection changes nothing at all."""
    a = {str(i.get("id")): i for i in first}
    b = {str(i.get("id")): i for i in second}
    diffs = [f"{a[k].get('ref') or k}: " + ", ".join(f for f in a[k] if a[k].get(f) != b[k].get(f))
             for k in a if k in b and a[k] != b[k]]
    added = sorted(set(b) - set(a))
    ctx.expect("RBL005", "rebuild_items", not diffs and not added,
               f"{what}: the second rebuild changed {diffs[:5]} and added {added[:5]}")


def event_counts(ctx: Context, item_ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item_id in item_ids:
        ex = ctx.api.call("list_item_events", item_id=item_id)
        counts[item_id] = len(obj(ex).get("events", []))
    return counts


def check_rebuild_without_spans(ctx: Context, scratch: ScratchItems) -> None:
    """RBL001-005 on POSTed and triaged items whose session has no item spans (D5)."""
    before = snapshot(ctx)
    events_before = event_counts(ctx, [scratch.id("a"), scratch.id("b")])
    last: Exchange | None = None
    for body in ({"session_id": scratch.session_id}, {"run_ids": [f"{ctx.tag}-no-such-run"]},
                 {"session_id": str(uuid.uuid4()), "run_ids": [f"{ctx.tag}-no-such-run"]}):
        last, processed = rebuild(ctx, body)
        if processed is not None:
            ctx.differs("RBL001", "rebuild_items", processed == 0,
                        f"D5: rebuild {body} selects no item span, so processed must be 0, got {processed}", "D5", last)
    after = snapshot(ctx)
    with ctx.evidence(last):
        compare(ctx, before, after, "rebuild of a session without spans")
    ours = {"session_id": scratch.session_id}
    first = snapshot(ctx, **ours)
    again, _ = rebuild(ctx, ours)
    with ctx.evidence(again):
        unchanged(ctx, first, snapshot(ctx, **ours), "second rebuild of the run's session")
        events_after = event_counts(ctx, list(events_before))
        ctx.expect("RBL005", "list_item_events", events_after == events_before,
                   f"a rebuild that changes nothing adds no event: {events_before} -> {events_after}")
