"""Malformed and invalid input to every operation (INP), and undeclared methods (MTH001).

Every write sent here must be rejected, so a conformant server changes nothing; INP006 verifies it.
Bodies carry this run's tag, so whatever a broken server does accept can be found again.
"""

from __future__ import annotations

import json
from typing import Any

from harness.conformance.context import Context
from harness.conformance.http import Exchange
from harness.conformance.operations import declares, operations
from harness.conformance.requests import Probe, rid

BODY_OPS = ("create_item", "update_item", "bulk_update_items", "create_item_link", "rebuild_items")


def _schema_violations(tag: str) -> list[tuple[Probe, list[list[str]]]]:
    """(request, the locs D2 says the answer lists): one problem per field, several per request."""
    item = {"item_id": rid()}
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
        (Probe("delete_item_link", {"item_id": rid(), "link_id": "nope"}), [["path", "link_id"]]),
    ]


def _locs(exchange: Exchange) -> list[list[str]]:
    body = exchange.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [[str(p) for p in e["loc"]] for e in errors if isinstance(e, dict) and isinstance(e.get("loc"), list)]


def check_malformed_bodies(ctx: Context) -> None:
    """INP001, INP002, INP005: not JSON, the wrong content type, no body at all."""
    item_id = rid()
    for op_id in BODY_OPS:
        method, path = operations()[op_id].method, ctx.api.path(op_id, item_id=item_id)
        ex = ctx.api.request(op_id, method, path, content=b'{"item_type": "finding", ', content_type="application/json")
        ctx.error_is("INP001", ex, 400, "the body is not JSON")
        text = json.dumps({"item_type": f"hc_{ctx.tag}", "session_id": rid(), "item_ids": [rid()], "status": "open",
                           "relationship": "affects", "target_item_id": rid()}).encode()
        ex = ctx.api.request(op_id, method, path, content=text, content_type="text/plain")
        ctx.error_is("INP002", ex, 400, "text/plain is not a content type this operation accepts")
        ex = ctx.api.request(op_id, method, path, content=b"", content_type="application/json")
        ctx.status_is("INP005", ex, 400, 422, why="an empty body is refused as input, never a server error")
    ingest = "ingest_traces"
    ctx.error_is("INP001", ctx.api.call(ingest, content=b"{not json", content_type="application/json"), 400,
                 "an OTLP/JSON body that is not JSON")
    ctx.error_is("INP002", ctx.api.call(ingest, content=b"spans", content_type="text/plain"), 400,
                 "OTLP ingest accepts protobuf or JSON only")


def check_schema_violations(ctx: Context) -> None:
    """INP003, INP004: 422 listing every problem where it is; rebuild needs a scope (D1)."""
    for probe, expected in _schema_violations(ctx.tag):
        ex = ctx.api.call(probe.op_id, **probe.kwargs())
        if ctx.error_is("INP003", ex, 422, "input breaks the schema"):
            found = _locs(ex)
            missing = [loc for loc in expected if loc not in found]
            ctx.expect("INP003", probe.op_id, not missing,
                       f"errors[] must list one entry per problem; missing loc {missing} (listed {found})", ex)
    ex = ctx.api.call("ingest_traces", json_body={"resourceSpans": "not-a-list"})
    ctx.error_is("INP003", ex, 422, "OTLP/JSON that is not an ExportTraceServiceRequest")
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


def run_all(ctx: Context) -> None:
    check_malformed_bodies(ctx)
    check_schema_violations(ctx)
    check_undeclared_methods(ctx)
    check_nothing_changed(ctx)
