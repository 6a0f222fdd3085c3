"""Malformed and invalid input to every operation (INP), undeclared methods (MTH001), and ORD006.

Every write sent here must be rejected, so a conformant server changes nothing; INP006 verifies it.
Bodies carry this run's tag, so whatever a broken server does accept can be found again.

Input to an item's operations goes to an item that exists (created from `--level stateful`), so the
verdict never depends on whether an implementation looks the item up before it validates the body:
nothing documented orders those two steps. At `contract` level nothing may be created, so the item
is absent and a 404 is accepted; the order itself is ORD006, a reference-level check (D4).
"""

from __future__ import annotations

import json
from typing import Any

from harness.conformance.catalogue import Level
from harness.conformance.context import Context
from harness.conformance.http import Exchange
from harness.conformance.operations import declares, operations
from harness.conformance.requests import Probe, rid
from harness.conformance.scratch import obj

BODY_OPS = ("create_item", "update_item", "bulk_update_items", "create_item_link", "rebuild_items")
ITEM_OPS = frozenset({"update_item", "create_item_link", "delete_item_link"})
"""Operations on one item whose input the suite judges: an absent item may be looked up first."""


def target_item(ctx: Context) -> str | None:
    """An item of this run the input probes can aim at (None at contract level: nothing is created)."""
    if ctx.settings.level < Level.STATEFUL:
        return None
    ex = ctx.api.call("create_item", json_body={
        "item_type": "finding", "title": f"{ctx.tag} input probe target", "dedupe_key": f"{ctx.tag}-inp-target",
        "data": {"severity": "info"}})
    return str(obj(ex).get("id")) if ex.status in (200, 201) and obj(ex).get("id") else None


def _absent_item_accepted(ctx: Context, check_id: str, exchange: Exchange, item_id: str | None) -> bool:
    """At contract level an item operation on an absent item may answer 404 before it reads the input."""
    if item_id is None and exchange.operation in ITEM_OPS and exchange.status == 404:
        ctx.record(check_id, exchange.operation, None)
        return True
    return False


def _schema_violations(tag: str, item_id: str | None) -> list[tuple[Probe, list[list[str]]]]:
    """(request, the locs D2 says the answer lists): one problem per field, several per request."""
    item = {"item_id": item_id or rid()}
    return [
        (Probe("create_item", json_body={"item_type": "", "dedupe_key": 7, "session_id": "not-a-uuid",
                                         "ref": f"{tag}-inp003"}),
         [["body", "item_type"], ["body", "dedupe_key"], ["body", "session_id"]]),
        (Probe("update_item", item, json_body={"status": "needs_review", "title": 5}),
         [["body", "status"], ["body", "title"]]),
        (Probe("bulk_update_items", json_body={"item_ids": [], "status": "bogus"}),
         [["body", "item_ids"], ["body", "status"]]),
        (Probe("create_item_link", item, json_body={"relationship": "", "target_item_id": "nope"}),
         [["body", "relationship"], ["body", "target_item_id"]]),
        (Probe("rebuild_items", json_body={"session_id": "nope", "run_ids": "x"}),
         [["body", "session_id"], ["body", "run_ids"]]),
        (Probe("list_items", params={"limit": 0, "page": 0, "sort": "bogus"}),
         [["query", "limit"], ["query", "page"], ["query", "sort"]]),
        (Probe("item_summary", params={"item_type": "x" * 65}), [["query", "item_type"]]),
        (Probe("get_item", {"item_id": "not-a-uuid"}), [["path", "item_id"]]),
        (Probe("list_item_events", {"item_id": "not-a-uuid"}), [["path", "item_id"]]),
        (Probe("list_item_links", {"item_id": "not-a-uuid"}), [["path", "item_id"]]),
        (Probe("delete_item_link", {"item_id": item_id or rid(), "link_id": "nope"}), [["path", "link_id"]]),
    ]


def _locs(exchange: Exchange) -> list[list[str]]:
    body = exchange.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [[str(p) for p in e["loc"]] for e in errors if isinstance(e, dict) and isinstance(e.get("loc"), list)]


def check_malformed_bodies(ctx: Context, item_id: str | None) -> None:
    """INP001, INP002, INP005: not JSON, the wrong content type, no body at all."""
    for op_id in BODY_OPS:
        method, path = operations()[op_id].method, ctx.api.path(op_id, item_id=item_id or rid())
        ex = ctx.api.request(op_id, method, path, content=b'{"item_type": "finding", ', content_type="application/json")
        if not _absent_item_accepted(ctx, "INP001", ex, item_id):
            ctx.error_is("INP001", ex, 400, "the body is not JSON", tolerated=(422,), decision="D2")
        text = json.dumps({"item_type": f"hc_{ctx.tag}", "session_id": rid(), "item_ids": [rid()], "status": "open",
                           "relationship": "affects", "target_item_id": rid()}).encode()
        ex = ctx.api.request(op_id, method, path, content=text, content_type="text/plain")
        if not _absent_item_accepted(ctx, "INP002", ex, item_id):
            ctx.error_is("INP002", ex, 400, "text/plain is not a content type this operation accepts",
                         tolerated=(415, 422), decision="D2")
        ex = ctx.api.request(op_id, method, path, content=b"", content_type="application/json")
        if not _absent_item_accepted(ctx, "INP005", ex, item_id):
            ctx.status_is("INP005", ex, 400, 422, why="an empty body is refused as input, never a server error")
    ingest = "ingest_traces"
    ctx.error_is("INP001", ctx.api.call(ingest, content=b"{not json", content_type="application/json"), 400,
                 "an OTLP/JSON body that is not JSON")
    ctx.error_is("INP002", ctx.api.call(ingest, content=b"spans", content_type="text/plain"), 400,
                 "OTLP ingest accepts protobuf or JSON only", tolerated=(415,), decision="D2")


def check_schema_violations(ctx: Context, item_id: str | None) -> None:
    """INP003, INP004: 422 listing every problem where it is; rebuild needs a scope (D1)."""
    for probe, expected in _schema_violations(ctx.tag, item_id):
        ex = ctx.api.call(probe.op_id, **probe.kwargs())
        if _absent_item_accepted(ctx, "INP003", ex, item_id):
            continue
        if ctx.error_is("INP003", ex, 422, "input breaks the schema", tolerated=(400,), decision="D2"):
            found = _locs(ex)
            missing = [loc for loc in expected if loc not in found]
            ctx.differs("INP003", probe.op_id, not missing,
                        f"errors[] must list one entry per problem; missing loc {missing} (listed {found})", "D2", ex)
    ex = ctx.api.call("ingest_traces", json_body={"resourceSpans": "not-a-list"})
    ctx.error_is("INP003", ex, 400, "OTLP/HTTP: a payload that is not an ExportTraceServiceRequest is bad data")
    nothing: list[dict[str, Any]] = [{}, {"run_ids": []}, {"session_id": None, "run_ids": None}]
    for body in nothing:
        ex = ctx.api.call("rebuild_items", json_body=body)
        if ctx.error_is("INP004", ex, 422, f"D1: {json.dumps(body)} selects nothing"):
            locs = _locs(ex)
            ctx.expect("INP004", "rebuild_items", bool(locs) and locs[0] == ["body"],
                       f"D1: errors[0].loc must be [\"body\"], got {locs[:1]}", ex)


def check_nothing_changed(ctx: Context) -> None:
    """INP006: none of the rejected writes left an item behind (found by this run's tag)."""
    for ref in (f"{ctx.tag}-probe", f"{ctx.tag}-inp003"):
        ex = ctx.api.call("list_items", params={"ref": ref})
        body: Any = ex.json()
        total = body.get("total") if isinstance(body, dict) else None
        ctx.expect("INP006", "list_items", ex.status == 200 and total == 0,
                   f"a rejected create left an item with ref {ref!r} behind (total={total})", ex)
    ex = ctx.api.call("item_summary", params={"item_type": f"hc_{ctx.tag}"})
    summary: Any = ex.json()
    total = summary.get("total") if isinstance(summary, dict) else None
    ctx.expect("INP006", "item_summary", ex.status == 200 and total == 0,
               f"rejected creates left {total} item(s) of type hc_{ctx.tag}", ex)


def check_undeclared_methods(ctx: Context) -> None:
    """MTH001 without Schemathesis: GET/PUT/PATCH where a path does not declare them (never DELETE here)."""
    s = ctx.settings
    seen: set[str] = set()
    for op in operations().values():
        if op.template in seen:
            continue
        seen.add(op.template)
        path = op.template.format(org=s.org, workspace=s.workspace, project=s.project, item_id=rid(), link_id=rid())
        for method in ("GET", "PUT", "PATCH"):
            if declares(path, method):
                continue
            ex = ctx.api.request(op.id, method, path)
            ctx.error_is("MTH001", ex, 404, f"{method} is not declared on {op.template} (D3: 404, not 405)")


def check_validation_before_lookup(ctx: Context) -> None:
    """ORD006 (D4): invalid input to an absent item is answered as invalid input, not as an absent item."""
    for probe, _ in _schema_violations(ctx.tag, None):
        if probe.op_id not in ITEM_OPS:
            continue
        ex = ctx.api.call(probe.op_id, **probe.kwargs())
        ctx.status_is("ORD006", ex, 400, 422, why="D4: input is validated before the item is looked up")


def run_all(ctx: Context) -> None:
    item_id = target_item(ctx)
    check_malformed_bodies(ctx, item_id)
    check_schema_violations(ctx, item_id)
    if ctx.settings.level >= Level.STATEFUL:
        check_validation_before_lookup(ctx)
    check_undeclared_methods(ctx)
    check_nothing_changed(ctx)
