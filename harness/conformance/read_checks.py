"""READ001: the read operations answer the main credential, and get_item agrees with list_items.

Response bodies are validated centrally (SCH001, EFF001); this only adds what a single response
cannot show.
"""

from __future__ import annotations

from harness.conformance.context import Context
from harness.conformance.scratch import obj


def run_all(ctx: Context) -> None:
    for op_id in ("get_item_access", "item_summary"):
        ctx.status_is("READ001", ctx.api.call(op_id), 200)
    listed = ctx.api.call("list_items", params={"limit": 3})
    if not ctx.status_is("READ001", listed, 200):
        return
    for item in obj(listed).get("items", [])[:3]:
        if not isinstance(item, dict) or "id" not in item:
            continue
        ex = ctx.api.call("get_item", item_id=str(item["id"]))
        if ctx.status_is("READ001", ex, 200, why="a listed item is readable"):
            got = obj(ex)
            diff = sorted(k for k in set(item) | set(got) if item.get(k) != got.get(k) and k != "updated_at")
            ctx.expect("READ001", "get_item", not diff, f"get_item and list_items disagree on {diff}", ex)
        for op_id in ("list_item_events", "list_item_links"):
            ctx.status_is("READ001", ctx.api.call(op_id, item_id=str(item["id"])), 200)
