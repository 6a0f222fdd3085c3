"""Item semantics a schema cannot express: idempotent create, unique refs, PATCH merge, bulk, links, events."""

from __future__ import annotations

import uuid

from harness.conformance.context import CheckFailed, Context
from harness.conformance.scratch import ScratchItems, obj, refetch


def _total(ctx: Context, check_id: str, **params: str) -> int | None:
    ex = ctx.api.call("list_items", params=dict(params))
    body = obj(ex)
    total = body.get("total")
    if ex.status != 200 or not isinstance(total, int):
        ctx.record(check_id, "list_items", f"list_items {params} must answer 200 with a total, got {ex.status}", ex)
        return None
    return total


def check_replay(ctx: Context, scratch: ScratchItems) -> None:
    """DUP001: the same dedupe_key again is a 200 with the original body, whatever else the replay says."""
    original = scratch.items["a"]
    replay = {**scratch.bodies["a"], "title": f"{ctx.tag} changed on replay"}
    ex = ctx.api.call("create_item", json_body=replay)
    if ctx.status_is("DUP001", ex, 200, 201, why="a replay of an existing dedupe_key is not an error"):
        ctx.differs("DUP001", "create_item", ex.status == 200, f"a replay answers 200, got {ex.status}", "D14", ex)
        ctx.differs("DUP001", "create_item", obj(ex) == original,
                    f"the replay must answer the original item unchanged; got {obj(ex)}", "D14", ex)
    total = _total(ctx, "DUP001", ref=str(original["ref"]))
    ctx.expect("DUP001", "list_items", total == 1, f"a replay must create nothing: {total} items hold the ref")


def check_stored_as_sent(ctx: Context, scratch: ScratchItems) -> None:
    """DAT001, DAT002: an agent's report is never refused for its payload, nor for a link whose target comes later."""
    data = {"title": f"{ctx.tag} odd payload", "severity": "urgent", "evidence": {"nested": [1, "two", None]}}
    body = {"item_type": "finding", "dedupe_key": f"{ctx.tag}-dat", "ref": f"{ctx.tag}-dat", "data": data,
            "session_id": scratch.session_id, "source": "runtime"}
    ex = ctx.api.call("create_item", json_body=body)
    if ctx.status_is("DAT001", ex, 200, 201, why="data is stored as sent"):
        ctx.expect("DAT001", "create_item", obj(ex).get("data") == data,
                   f"data must be stored exactly as sent: sent {data}, got {obj(ex).get('data')}", ex)
    linked = {"item_type": "finding", "dedupe_key": f"{ctx.tag}-dat2", "title": f"{ctx.tag} early link",
              "session_id": scratch.session_id, "source": "runtime",
              "links": [{"relationship": "affects", "target_ref": f"{ctx.tag}-not-yet"}]}
    ex = ctx.api.call("create_item", json_body=linked)
    ctx.status_is("DAT002", ex, 200, 201, why="an unresolved inline link waits for a later rebuild")


def check_ref_conflict(ctx: Context, scratch: ScratchItems) -> None:
    """REF001: a taken ref is a 409 already_exists_error and nothing is written."""
    title = f"{ctx.tag}refdup"
    body = {"item_type": "finding", "dedupe_key": f"{ctx.tag}-refdup", "ref": scratch.items["c"]["ref"],
            "title": title, "data": {"title": title}}
    ex = ctx.api.call("create_item", json_body=body)
    if ctx.error_is("REF001", ex, 409, "the ref is held by another item"):
        kind = obj(ex).get("type")
        ctx.differs("REF001", "create_item", kind == "already_exists_error",
                    f"D3: a reused ref is already_exists_error, got {kind!r}", "D3", ex)
    ctx.expect("REF001", "list_items", _total(ctx, "REF001", q=title) == 0, "the refused create left an item")
    ctx.expect("REF001", "list_items", _total(ctx, "REF001", ref=str(body["ref"])) == 1,
               "the ref must still be held by exactly one item")


def _patch(ctx: Context, check_id: str, item_id: str, body: dict[str, object]) -> dict[str, object]:
    ex = ctx.api.call("update_item", item_id=item_id, json_body=body)
    ctx.require(check_id, "update_item", ex.status == 200, f"PATCH {body} must answer 200, got {ex.status}", ex)
    return obj(ex)


def check_patch(ctx: Context, scratch: ScratchItems) -> None:
    """PAT001-004 on item a: shallow merge, notes keep the status, un-triage, disposition apart from data."""
    item_id = scratch.id("a")
    before = dict(scratch.items["a"]["data"])
    merged = _patch(ctx, "PAT001", item_id, {"data": {"evidence": "' OR 1=1 -- returned 200"}})
    ctx.expect("PAT001", "update_item", merged.get("data") == {**before, "evidence": "' OR 1=1 -- returned 200"},
               f"data must be shallow-merged: had {before}, now {merged.get('data')}")
    triaged = _patch(ctx, "PAT002", item_id, {"status": "verified", "notes": "n1"})
    disposition = triaged.get("disposition") or {}
    ctx.expect("PAT002", "update_item", isinstance(disposition, dict) and disposition.get("status") == "verified"
               and disposition.get("notes") == "n1", f"status and notes go into the disposition, got {disposition}")
    noted = _patch(ctx, "PAT002", item_id, {"notes": "n2"})
    disposition = noted.get("disposition") or {}
    ctx.expect("PAT002", "update_item", isinstance(disposition, dict) and disposition.get("status") == "verified"
               and disposition.get("notes") == "n2", f"notes alone must keep the status, got {disposition}")
    data = noted.get("data")
    ctx.expect("PAT004", "update_item", isinstance(data, dict) and "status" not in data and "notes" not in data,
               f"status/notes must never land in data, got {data}")
    untriaged = _patch(ctx, "PAT003", item_id, {"status": None})
    disposition = untriaged.get("disposition") or {}
    ctx.expect("PAT003", "update_item", isinstance(disposition, dict) and disposition.get("status") is None
               and disposition.get("notes") == "n2", f"status null must clear the status, keep notes: {disposition}")
    ctx.differs("PAT003", "update_item", untriaged.get("effective_status") == "needs_review",
                f"an un-triaged finding derives needs_review, got {untriaged.get('effective_status')!r}", "D11")
    _patch(ctx, "PAT002", item_id, {"status": "resolved"})
    refetch(ctx, scratch, "a")


def check_bulk(ctx: Context, scratch: ScratchItems) -> None:
    """BLK001: best effort, duplicates once, unknown ids in failed, notes kept."""
    a, c, unknown = scratch.id("a"), scratch.id("c"), str(uuid.uuid4())
    ex = ctx.api.call("bulk_update_items", json_body={"item_ids": [a, c, a, unknown], "status": "dismissed"})
    if not ctx.status_is("BLK001", ex, 200, why="bulk is best effort"):
        return
    body = obj(ex)
    updated = [str(i).lower() for i in body.get("updated", [])] if isinstance(body.get("updated"), list) else []
    failed = [str(f.get("item_id", "")).lower() for f in body.get("failed", []) if isinstance(f, dict)] \
        if isinstance(body.get("failed"), list) else []
    ctx.differs("BLK001", "bulk_update_items", sorted(updated) == sorted([a.lower(), c.lower()]),
                f"D15: updated lists a and c once each, got {updated}", "D15", ex)
    ctx.differs("BLK001", "bulk_update_items", failed == [unknown],
                f"D15: failed lists the unknown id, got {failed}", "D15", ex)
    after_a, after_c = refetch(ctx, scratch, "a"), refetch(ctx, scratch, "c")
    da, dc = after_a.get("disposition") or {}, after_c.get("disposition") or {}
    ctx.expect("BLK001", "get_item", da.get("status") == "dismissed" and da.get("notes") == "n2",
               f"bulk sets the status and keeps the notes, got {da}")
    ctx.expect("BLK001", "get_item", dc.get("status") == "dismissed", f"c must be dismissed, got {dc}")


def check_links(ctx: Context, scratch: ScratchItems) -> None:
    """LNK001: create (201, then 200), both directions listed, delete (204, then 404)."""
    a, c = scratch.id("a"), scratch.id("c")
    link_body = {"relationship": "affects", "target_ref": scratch.items["c"]["ref"]}
    first = ctx.api.call("create_item_link", item_id=a, json_body=link_body)
    ctx.require("LNK001", "create_item_link", first.status in (200, 201) and bool(obj(first).get("link_id")),
                f"a new link is created (2xx with its link_id), got {first.status}", first)
    ctx.differs("LNK001", "create_item_link", first.status == 201, f"a new link answers 201, got {first.status}",
                "D14", first)
    link = obj(first)
    ctx.differs("LNK001", "create_item_link", link.get("id") == link.get("link_id")
                and link.get("source_item_id") == a and link.get("target_item_id") == c,
                f"D15: id == link_id, source a, target c; got {link}", "D15", first)
    again = ctx.api.call("create_item_link", item_id=a, json_body=link_body)
    if ctx.differs("LNK001", "create_item_link", again.status == 200,
                   f"the identical link again answers 200, got {again.status}", "D14", again):
        ctx.differs("LNK001", "create_item_link", obj(again).get("link_id") == link.get("link_id"),
                    "the existing link must be answered", "D14", again)
    for item_id, direction, other in ((a, "outgoing", c), (c, "incoming", a)):
        ex = ctx.api.call("list_item_links", item_id=item_id)
        entries = [e for e in obj(ex).get("links", []) if isinstance(e, dict) and e.get("link_id") == link["link_id"]]
        ok = len(entries) == 1 and entries[0].get("direction") == direction and \
            isinstance(entries[0].get("item"), dict) and entries[0]["item"].get("id") == other
        ctx.expect("LNK001", "list_item_links", ok, f"the link must be listed once as {direction}, got {entries}", ex)
    gone = ctx.api.call("delete_item_link", item_id=a, link_id=str(link["link_id"]))
    if ctx.status_is("LNK001", gone, 200, 202, 204, why="the link is deleted"):
        ctx.differs("LNK001", "delete_item_link", gone.status == 204 and gone.response_body == b"",
                    f"D14: a deleted link answers 204 without body, got {gone.status}", "D14", gone)
    ctx.error_is("LNK001", ctx.api.call("delete_item_link", item_id=a, link_id=str(link["link_id"])), 404,
                 "the link is gone")
    ex = ctx.api.call("list_item_links", item_id=a)
    ctx.expect("LNK001", "list_item_links",
               all(e.get("link_id") != link["link_id"] for e in obj(ex).get("links", []) if isinstance(e, dict)),
               "a deleted link must not be listed", ex)


def check_events(ctx: Context, scratch: ScratchItems) -> None:
    """EVT001: history of item a, oldest first."""
    ex = ctx.api.call("list_item_events", item_id=scratch.id("a"))
    events = [e for e in obj(ex).get("events", []) if isinstance(e, dict)]
    seqs = [e.get("seq") for e in events]
    ints = [s for s in seqs if isinstance(s, int)]
    ctx.expect("EVT001", "list_item_events", len(ints) == len(seqs) and ints == sorted(set(ints)),
               f"seq must be strictly ascending (oldest first), got {seqs}", ex)
    kinds = [e.get("event_type") for e in events]
    ctx.expect("EVT001", "list_item_events", bool(kinds) and kinds[0] == "created" and "updated" in kinds
               and "linked" in kinds and "unlinked" in kinds,
               f"a's history must start with created and hold its updates and (un)link, got {kinds}", ex)


def run_all(ctx: Context, scratch: ScratchItems) -> None:
    steps = (check_replay, check_stored_as_sent, check_ref_conflict, check_patch, check_bulk, check_links,
             check_events)
    for step in steps:
        try:
            step(ctx, scratch)
        except CheckFailed:
            continue
