"""The items a stateful run creates in the scratch project: tagged, in a session of their own.

Everything carries the run tag in `dedupe_key` and `ref` (and a per-run item type for one of them),
so runs never collide and whatever a run leaves behind can be found again. The Items API has no
delete operation: these items stay in the scratch project (see docs/conformance.md, Cleanup).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from harness.conformance.context import CheckFailed, Context
from harness.conformance.http import Exchange


def obj(exchange: Exchange) -> dict[str, Any]:
    body = exchange.json()
    return body if isinstance(body, dict) else {}


@dataclass
class ScratchItems:
    session_id: str
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """name -> the create_item body sent."""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    """name -> the item as create_item answered it."""

    def id(self, name: str) -> str:
        return str(self.items[name]["id"])

    def names_by_id(self) -> dict[str, str]:
        return {str(item["id"]): name for name, item in self.items.items()}


def scratch_bodies(tag: str, session_id: str) -> dict[str, dict[str, Any]]:
    """Five items that make every list filter select a different subset."""
    def finding(key: str, title: str, severity: str, **extra: Any) -> dict[str, Any]:
        data = {"title": title, "severity": severity, "category": f"{tag}-cat-{key}",
                "description": extra.pop("description", f"{title}, reported by the conformance suite")}
        return {"item_type": "finding", "dedupe_key": f"{tag}-{key}", "ref": f"{tag}-{key}", "title": title,
                "data": data, "session_id": session_id, **extra}

    return {
        "a": finding("a", f"{tag} SQL injection alpha", "high", capability=f"{tag}-cap-1", source="runtime",
                     schema_ref="finding@1"),
        "b": finding("b", f"{tag} weak cipher beta", "low", capability=f"{tag}-cap-2", source="api",
                     status="triaged", notes="seen by the suite"),
        "c": {"item_type": "asset", "dedupe_key": f"{tag}-c", "ref": f"{tag}-c", "title": f"web-1 {tag}",
              "data": {"title": f"web-1 {tag}", "asset_type": "host", "identifier": "10.0.0.5"},
              "session_id": session_id, "capability": f"{tag}-cap-1", "source": "api"},
        "d": {"item_type": f"hc_{tag}", "dedupe_key": f"{tag}-d", "ref": f"{tag}-d", "title": f"{tag} delta",
              "data": {"severity": "critical", "note": "free-form item type"}, "session_id": session_id,
              "source": "api"},
        "e": finding("e", f"{tag} gamma", "medium", capability=f"{tag}-cap-2", source="runtime",
                     description=f"contains the word needle{tag} for q"),
    }


def create_scratch(ctx: Context) -> ScratchItems:
    """Create the five items (DUP002: 201, as sent, a disposition only when status/notes were given)."""
    scratch = ScratchItems(session_id=str(uuid.uuid4()))
    scratch.bodies = scratch_bodies(ctx.tag, scratch.session_id)
    for name, body in scratch.bodies.items():
        ex = ctx.api.call("create_item", json_body=body)
        ctx.require("DUP002", "create_item", ex.status in (200, 201), f"a new item must be created (2xx), got "
                    f"{ex.status}", ex)
        ctx.differs("DUP002", "create_item", ex.status == 201, f"a new item answers 201, got {ex.status}", "D14", ex)
        item = obj(ex)
        expected_disposition = body.get("status") is not None or body.get("notes") is not None
        same = all(item.get(k) == body[k] for k in ("item_type", "dedupe_key", "ref", "title", "source", "data"))
        ctx.expect("DUP002", "create_item", same, f"the item must carry what was sent: sent {body}, got {item}", ex)
        disposition = item.get("disposition")
        ctx.expect("DUP002", "create_item", (disposition is not None) == expected_disposition,
                   f"disposition {disposition!r} for a create with status={body.get('status')!r}", ex)
        scratch.items[name] = item
    return scratch


def refetch(ctx: Context, scratch: ScratchItems, name: str) -> dict[str, Any]:
    ex = ctx.api.call("get_item", item_id=scratch.id(name))
    if ex.status != 200:
        ctx.record("READ001", "get_item", f"an item this run created ({name}) must be readable, got {ex.status}", ex)
        raise CheckFailed(f"item {name} unreadable")
    scratch.items[name] = obj(ex)
    return scratch.items[name]
