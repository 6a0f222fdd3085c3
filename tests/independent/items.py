"""What the item operations do, apart from HTTP: create, patch, bulk, links, list filters and the summary."""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from typing import Any

from .auth import Credential, Project
from .errors import ApiError, invalid, not_found, problem
from .store import Item, Store
from .validate import SEVERITIES, STATUSES, Filters

RANK = {name: len(SEVERITIES) - n for n, name in enumerate(SEVERITIES)}
"""critical 5 ... info 1; anything else 0."""
STATUS_RANK = {name: 6 - n for n, name in enumerate(("needs_review", *STATUSES))}
"""needs_review 6 ... dismissed 1; none 0."""
SYSTEM: tuple[str, str | None] = ("system", None)


def effective_status(item: Item) -> str | None:
    """D11: the triage status when set, else needs_review for a never-triaged finding, else null."""
    status = (item.get("disposition") or {}).get("status")
    if status is not None:
        return str(status)
    return "needs_review" if item["item_type"] == "finding" else None


def present(item: Item) -> Item:
    return {**item, "effective_status": effective_status(item)}


def severity(item: Item) -> str | None:
    """`data.severity` read tolerantly (`"High"` is high); anything else is no severity (data is stored as sent)."""
    value = item["data"].get("severity") if isinstance(item["data"], dict) else None
    return value.lower() if isinstance(value, str) and value.lower() in RANK else None


def disposition(status: str | None, notes: str | None, by: str, at: str) -> dict[str, Any] | None:
    """A new item has no disposition unless it came with a status or notes (§2)."""
    if status is None and notes is None:
        return None
    return {"status": status, "notes": notes, "updated_at": at, "updated_by": by}


def actor(credential: Credential, source: str = "api") -> tuple[str, str]:
    """Who an event names: the agent for a runtime report, else the user; the credential's name, never its token."""
    return ("agent" if source == "runtime" else "user"), credential.name


def create(store: Store, project: Project, credential: Credential, body: dict[str, Any]) -> tuple[Item, bool]:
    """(item, created): a replay of a dedupe_key answers the stored item; inline links must resolve now."""
    with store.transaction():
        key = body["dedupe_key"]
        if key is not None and (stored := store.item_by(project.id, "dedupe_key", key)) is not None:
            return stored, False
        if body["ref"] is not None and store.item_by(project.id, "ref", body["ref"]) is not None:
            raise ApiError(409, "Another item of this project already holds this ref", kind="already_exists_error")
        now = store.now()
        item: Item = {
            "id": str(uuid.uuid4()), "organization_id": project.org_id, "project_id": project.id,
            **{k: body[k] for k in ("item_type", "data", "title", "ref", "dedupe_key", "schema_ref", "session_id",
                                    "trace_id", "span_id", "capability", "capability_version", "source")},
            "disposition": disposition(body["status"], body["notes"], credential.name, now),
            "created_at": now, "created_by": credential.name, "updated_at": now}
        store.insert_item(item)
        who = actor(credential, body["source"])
        store.add_event(item["id"], "created", *who, {"source": body["source"]})
        for n, link in enumerate(body["links"]):
            target = resolve_target(store, project, link)  # DIFFERENCES[2]: 404, and the whole create rolls back
            add_link(store, item, target, link["relationship"], SYSTEM, target_loc(link, ["body", "links", n]),
                     reported=True)
    return item, True


def apply_patch(store: Store, item: Item, patch: dict[str, Any], who: tuple[str, str | None]) -> Item:
    """Shallow-merge data, set title, merge status/notes into the disposition; no change, no write (caller's txn)."""
    changes: dict[str, Any] = {}
    if "data" in patch and (merged := {**item["data"], **patch["data"]}) != item["data"]:
        changes["data"] = merged
    if "title" in patch and patch["title"] != item["title"]:
        changes["title"] = patch["title"]
    old = item["disposition"] or {"status": None, "notes": None}
    new = {**old, **{k: patch[k] for k in ("status", "notes") if k in patch}}
    named = [f"disposition.{k}" for k in ("status", "notes") if new[k] != old[k]]
    if named:
        changes["disposition"] = {**new, "updated_at": store.now(), "updated_by": who[1]}
    if not changes:
        return item  # a write that changes nothing leaves no trace
    changed = sorted([k for k in changes if k != "disposition"] + named)
    changes["updated_at"] = store.now()
    store.update_item(item["id"], changes)
    store.add_event(item["id"], "updated", who[0], who[1], {"changed": changed})
    return {**item, **changes}


def update(store: Store, item: Item, patch: dict[str, Any], credential: Credential) -> Item:
    with store.transaction():
        return apply_patch(store, item, patch, actor(credential))


def bulk(store: Store, project: Project, credential: Credential, ids: list[str], status: str | None) -> dict[str, Any]:
    """Best effort (D15): every readable id is set, every other one is reported in failed."""
    updated: list[str] = []
    failed: list[dict[str, str]] = []
    with store.transaction():
        for item_id in ids:
            item = store.item(project.id, item_id)
            if item is None:
                failed.append({"item_id": item_id, "detail": "Item not found"})
                continue
            apply_patch(store, item, {"status": status}, actor(credential))
            updated.append(item_id)
    return {"updated": updated, "failed": failed}


def resolve_target(store: Store, project: Project, link: dict[str, Any]) -> Item:
    if link["target_item_id"] is not None:
        target = store.item(project.id, link["target_item_id"])
    else:
        target = store.item_by(project.id, "ref", link["target_ref"])
    if target is None:
        raise not_found("Link target")
    return target


def unlink(store: Store, row: dict[str, Any], who: tuple[str, str | None]) -> None:
    """Delete a link; the `unlinked` event goes to its source, beside `linked` (caller's txn)."""
    store.delete_link(row["id"])
    store.add_event(row["source_item_id"], "unlinked", who[0], who[1], {
        "link_id": row["id"], "target_item_id": row["target_item_id"], "relationship": row["relationship"]})


def link_out(row: dict[str, Any]) -> dict[str, Any]:
    """D15: `id` and `link_id` are the same."""
    return {"id": row["id"], "link_id": row["id"], **{k: row[k] for k in ("source_item_id", "target_item_id",
                                                                            "relationship", "created_at")}}


def target_loc(link: dict[str, Any], loc: list[str | int]) -> list[str | int]:
    """Where a link names its target, for a 422 about that target."""
    return [*loc, "target_item_id" if link["target_item_id"] is not None else "target_ref"]


def add_link(store: Store, source: Item, target: Item, relationship: str, who: tuple[str, str | None],
             loc: list[str | int], *, reported: bool = False) -> tuple[dict[str, Any], bool]:
    """(link, created); the identical link is answered again; an item never links to itself (caller's txn).

    A reported link (inline, or from a span) follows the span on rebuild; a user link never does.
    """
    if source["id"] == target["id"]:
        raise invalid([problem(loc, "An item cannot link to itself", "value_error")])
    existing = store.find_link(source["id"], target["id"], relationship)
    if existing is not None:
        return existing, False
    row = {"id": str(uuid.uuid4()), "project_id": source["project_id"], "source_item_id": source["id"],
           "target_item_id": target["id"], "relationship": relationship, "created_at": store.now(),
           "reported": int(reported)}
    store.insert_link(row)
    store.add_event(source["id"], "linked", who[0], who[1],
                    {"link_id": row["id"], "target_item_id": target["id"], "relationship": relationship})
    return row, True


def list_links(store: Store, project: Project, item: Item) -> list[dict[str, Any]]:
    out = []
    for row in store.links(item["id"]):
        outgoing = row["source_item_id"] == item["id"]
        other = store.item(project.id, row["target_item_id"] if outgoing else row["source_item_id"]) or {}
        out.append({"direction": "outgoing" if outgoing else "incoming", "link_id": row["id"],
                    "relationship": row["relationship"],
                    "item": {k: other.get(k) for k in ("id", "item_type", "ref", "title")}})
    return out


def delete_link(store: Store, item: Item, link_id: str, credential: Credential) -> None:
    """Either end may delete a link."""
    with store.transaction():
        row = next((r for r in store.links(item["id"]) if r["id"] == link_id), None)
        if row is None:
            raise not_found("Link")
        unlink(store, row, actor(credential))


def matches(item: Item, f: Filters) -> bool:
    data = item["data"]
    checks = (
        f.item_type is None or item["item_type"] == f.item_type,
        not f.severity or severity(item) in f.severity,
        not f.status or effective_status(item) in f.status,
        f.min_severity is None or RANK.get(severity(item) or "", 0) >= RANK[f.min_severity],
        f.category is None or data.get("category") == f.category,
        not f.capability or item["capability"] in f.capability,
        not f.source or item["source"] in f.source,
        f.session_id is None or (item["session_id"] or "").lower() == f.session_id,
        f.ref is None or item["ref"] == f.ref,
        f.created_after is None or item["created_at"] > f.created_after,
        f.created_before is None or item["created_at"] < f.created_before,
    )
    if not all(checks):
        return False
    if f.q is None:
        return True
    needle = f.q.lower()
    return needle in (item["title"] or "").lower() or needle in json.dumps(data, ensure_ascii=False).lower()


def list_page(items: list[Item], f: Filters) -> dict[str, Any]:
    """Filter, sort (ties broken by created_at, then id), then cut the page."""
    chosen = [i for i in items if matches(i, f)]

    def rank(item: Item) -> int:
        if f.sort == "severity":
            return RANK.get(severity(item) or "", 0)
        if f.sort == "status":
            return STATUS_RANK.get(effective_status(item) or "", 0)
        return int(f.sort == "relevance" and f.q is not None and f.q.lower() in (item["title"] or "").lower())

    chosen.sort(key=lambda i: (rank(i), i["created_at"], i["id"]), reverse=f.order == "desc")
    total, start = len(chosen), (f.page - 1) * f.limit
    pages = math.ceil(total / f.limit)
    return {"items": [present(i) for i in chosen[start:start + f.limit]], "total": total, "page": f.page,
            "limit": f.limit, "total_pages": pages, "has_next": f.page < pages, "has_previous": f.page > 1}


def summary(items: list[Item], item_type: str | None) -> dict[str, Any]:
    chosen = [i for i in items if item_type is None or i["item_type"] == item_type]
    by_severity = Counter(s for i in chosen if (s := severity(i)) is not None)
    return {"total": len(chosen), "by_severity": dict(by_severity),
            "by_status": dict(Counter(s for i in chosen if (s := effective_status(i)) is not None)),
            "by_type": dict(Counter(i["item_type"] for i in chosen)),
            "worst_severity": next((s for s in SEVERITIES if by_severity[s]), None)}
