"""Full level: spans seeded over OTLP, then rebuilt; heal, refresh, no duplicate, refs, offloaded, filters.

Run R1 carries eight distinct items (two POSTed first, one of them triaged) plus an offloaded one;
run R2, in the same session, one more. Expected answers follow from D1 and D5-D10 alone.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from harness.conformance.context import CheckFailed, Context
from harness.conformance.http import Exchange
from harness.conformance.rebuild_checks import compare, event_counts, rebuild, snapshot, unchanged
from harness.conformance.scratch import obj
from harness.conformance.seeding import OTLP_HEADERS, ItemOutput, Offloaded, Trace, bad_span_body, envelope, otlp_body
from harness.spans.otlp import PROTOBUF_MEDIA_TYPES

VISIBILITY_TIMEOUT_S = 15.0
"""How long spans may take to become readable after ingest (a collector or async insert may batch them)."""


@dataclass
class Seeded:
    tag: str
    session_id: str
    run1: str
    run2: str
    posted: dict[str, dict[str, Any]] = field(default_factory=dict)
    """name -> item as create_item / update_item last answered it."""
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    no_key: list[str] = field(default_factory=list)
    """D7 keys the two key-less envelopes must get."""
    r1_distinct: int = 0


def _finding(tag: str, key: str, title: str, severity: str, **extra: Any) -> dict[str, Any]:
    return envelope("finding", {"title": title, "severity": severity, "description": f"{title} ({tag})"},
                    dedupe_key=f"{tag}-{key}", ref=f"{tag}-{key}", title=title, **extra)


def post_items(ctx: Context, seeded: Seeded) -> None:
    """P1 (then triaged) and P2: items whose POST landed before their spans are rebuilt."""
    t = seeded.tag
    for name, title, severity in (("p1", f"{t} v1 title", "high"), ("p2", f"{t} posted twice", "low")):
        body: dict[str, Any] = {
            "item_type": "finding", "dedupe_key": f"{t}-{name}", "ref": f"{t}-{name}", "title": title,
            "data": {"title": title, "severity": severity, "description": f"{title} ({t})"},
            "session_id": seeded.session_id, "source": "runtime", "capability": "conformance"}
        ex = ctx.api.call("create_item", json_body=body)
        ctx.require("SPN003", "create_item", ex.status == 201, f"seeding POST must answer 201, got {ex.status}", ex)
        seeded.posted[name] = obj(ex)
        seeded.envelopes[name] = envelope("finding", body["data"], dedupe_key=body["dedupe_key"], ref=body["ref"],
                                          title=title, capability="conformance")
    ex = ctx.api.call("update_item", item_id=str(seeded.posted["p1"]["id"]),
                      json_body={"status": "triaged", "notes": "keep me"})
    ctx.require("SPN002", "update_item", ex.status == 200, f"seeding PATCH must answer 200, got {ex.status}", ex)
    seeded.posted["p1"] = obj(ex)


def build_traces(ctx: Context, seeded: Seeded) -> list[Trace]:
    t, s = seeded.tag, ctx.settings
    r1 = Trace(s.project, seeded.session_id, seeded.run1)
    env = seeded.envelopes
    env["h1"] = _finding(t, "h1", f"{t} healed finding", "medium", status="open", notes="from the agent")
    env["h2"] = envelope("asset", {"title": f"{t} healed asset", "asset_type": "host"}, dedupe_key=f"{t}-h2",
                         ref=f"{t}-h2", title=f"{t} healed asset")
    env["p1v2"] = _finding(t, "p1", f"{t} v2 title", "critical", capability="conformance-v2")
    env["x"] = {**_finding(t, "x", f"{t} wants a taken ref", "info"), "ref": f"{t}-p2"}
    env["v"] = _finding(t, "v", f"{t} older pydantic", "low")
    env["n0"] = {**_finding(t, "n0", f"{t} no key zero", "info"), "dedupe_key": None}
    env["n1"] = {**_finding(t, "n1", f"{t} no key one", "info"), "dedupe_key": None}
    env["k1"] = _finding(t, "k1", f"{t} second run", "high")
    for name in ("h1", "h2", "p1v2", "p2", "x"):
        r1.report(ItemOutput(env[name]))
    r1.report(ItemOutput(env["v"], value_key="value_"))
    both = r1.report(ItemOutput(env["n0"]), ItemOutput(env["n1"]))
    seeded.no_key = [f"span:{r1.trace_id}:{both}:0", f"span:{r1.trace_id}:{both}:1"]
    r1.report(ItemOutput(Offloaded()))
    seeded.r1_distinct = 8
    r2 = Trace(s.project, seeded.session_id, seeded.run2)
    r2.report(ItemOutput(env["k1"]))
    return [r1, r2]


def rejected_spans(exchange: Exchange) -> int | None:
    """The spans an OTLP/HTTP answer to a protobuf request says it rejected (0 for an empty body); None when
    the body is not an ExportTraceServiceResponse in the request's encoding, as OTLP/HTTP requires."""
    if not exchange.response_body:
        return 0
    if exchange.content_type.split(";", 1)[0].strip().lower() not in PROTOBUF_MEDIA_TYPES:
        return None
    try:
        answer = ExportTraceServiceResponse.FromString(exchange.response_body)
    except DecodeError:
        return None
    return int(answer.partial_success.rejected_spans)


def ingest(ctx: Context, traces: list[Trace]) -> bool:
    """ING001, then ING002/ING003 on an export holding an invalid span."""
    spans = [span for trace in traces for span in trace.export()]
    ex = ctx.api.request("ingest_traces", "POST", ctx.api.path("ingest_traces"), url=ctx.settings.ingest_url,
                         content=otlp_body(spans), auth={"X-API-Key": ctx.settings.credential.token},
                         extra_headers=OTLP_HEADERS)
    rejected = rejected_spans(ex)
    ok = ctx.expect("ING001", "ingest_traces", ex.status == 200 and rejected == 0,
                    f"the SDK's export of {len(spans)} spans must be accepted whole: 200 with an empty body or a "
                    f"protobuf ExportTraceServiceResponse rejecting nothing, got {ex.status} {ex.content_type!r} "
                    f"(rejected: {rejected})", ex)
    bad = ctx.api.request("ingest_traces", "POST", ctx.api.path("ingest_traces"), url=ctx.settings.ingest_url,
                          content=bad_span_body(ctx.settings.project),
                          auth={"X-API-Key": ctx.settings.credential.token},
                          extra_headers={"Content-Type": "application/x-protobuf"})
    counted = rejected_spans(bad) if bad.status == 200 else None
    ctx.expect("ING002", "ingest_traces", bad.status == 400 or (counted is not None and counted >= 1),
               f"a span with a 3-byte span id must be refused (400) or counted in partial_success.rejected_spans "
               f"(200), got {bad.status} (rejected: {counted})", bad)
    ctx.expect("ING003", "ingest_traces", bad.status == 200 and counted is not None and counted >= 1,
               f"D19: the invalid span is counted in partial_success and the rest kept, got {bad.status}", bad)
    return ok


def _by_key(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        found.setdefault(str(item.get("dedupe_key")), []).append(item)
    return found


def _one(ctx: Context, check_id: str, items: dict[str, list[dict[str, Any]]], key: str) -> dict[str, Any] | None:
    rows = items.get(key, [])
    if len(rows) != 1:
        ctx.record(check_id, "rebuild_items", f"expected exactly one item with dedupe_key {key!r}, found {len(rows)}")
        return None
    return rows[0]


def first_rebuild(ctx: Context, seeded: Seeded) -> tuple[Exchange, int | None]:
    """Rebuild run R1, waiting for the spans to become visible (heal of h1 proves they are)."""
    deadline = time.monotonic() + VISIBILITY_TIMEOUT_S
    while True:
        ex, processed = rebuild(ctx, {"run_ids": [seeded.run1]})
        if processed is not None and processed >= seeded.r1_distinct:
            return ex, processed
        healed = ctx.api.call("list_items", params={"ref": f"{seeded.tag}-h1"})
        if obj(healed).get("total") or time.monotonic() > deadline:
            return ex, processed
        time.sleep(1.0)


def check_after_first(ctx: Context, seeded: Seeded, items: list[dict[str, Any]], processed: int | None) -> None:
    t, env = seeded.tag, seeded.envelopes
    ctx.expect("SPN007", "rebuild_items", processed == seeded.r1_distinct,
               f"D6: run R1 carries {seeded.r1_distinct} distinct items (plus one offloaded), processed={processed}")
    ctx.expect("SPN005", "rebuild_items", processed is not None and processed <= seeded.r1_distinct,
               f"the offloaded envelope must not be counted and must not fail the rebuild (processed={processed})")
    keys = _by_key(items)
    h1 = _one(ctx, "SPN001", keys, f"{t}-h1")
    if h1 is not None:
        ctx.expect("SPN001", "rebuild_items", h1.get("data") == env["h1"]["data"]
                   and h1.get("item_type") == env["h1"]["item_type"] and h1.get("session_id") == seeded.session_id,
                   f"the healed item must carry the span's item_type, data and session; got {h1}")
        disposition = h1.get("disposition") or {}
        ok = h1.get("source") == "extracted" and disposition.get("status") == "open" \
            and disposition.get("notes") == "from the agent"
        ctx.expect("SPN010", "rebuild_items", ok, f"the healed item must be extracted, with the envelope's "
                   f"status/notes as disposition; got source={h1.get('source')!r} "
                   f"disposition={h1.get('disposition')!r}")
        ctx.differs("SPN010", "rebuild_items", h1.get("created_by") is None,
                    f"a healed item has created_by null, got {h1.get('created_by')!r}", "D20")
    h2 = _one(ctx, "SPN001", keys, f"{t}-h2")
    if h2 is not None:
        ctx.expect("SPN010", "rebuild_items", h2.get("disposition") is None and h2.get("source") == "extracted",
                   f"a healed item without status/notes has no disposition; got {h2.get('disposition')}")
    p1 = _one(ctx, "SPN002", keys, f"{t}-p1")
    if p1 is not None:
        before = seeded.posted["p1"]
        kept = {k: (before.get(k), p1.get(k)) for k in ("id", "created_at", "created_by", "source", "disposition")
                if before.get(k) != p1.get(k)}
        new = env["p1v2"]
        stale = {k: (p1.get(k), new[k]) for k in ("title", "data", "capability") if p1.get(k) != new[k]}
        ctx.expect("SPN002", "rebuild_items", not stale and "disposition" not in kept,
                   f"refresh must take {sorted(stale)} from the span and keep the disposition: "
                   f"not-refreshed={stale}, disposition {kept.get('disposition')}")
        ctx.differs("SPN002", "rebuild_items", not kept, f"D8: refresh keeps id, created_at, created_by and "
                    f"source; changed: {kept}", "D8")
    p2 = _one(ctx, "SPN003", keys, f"{t}-p2")
    if p2 is not None:
        ctx.expect("SPN003", "rebuild_items", p2.get("id") == seeded.posted["p2"]["id"]
                   and p2.get("source") == "runtime", f"the POSTed row must be the one kept: {p2}")
    x = _one(ctx, "SPN004", keys, f"{t}-x")
    if x is not None:
        ctx.expect("SPN004", "rebuild_items", x.get("ref") != f"{t}-p2",
                   f"D9: the ref {t}-p2 is held by another item and must not be taken over, got {x.get('ref')}")
    if p2 is not None:
        ctx.expect("SPN004", "rebuild_items", p2.get("ref") == f"{t}-p2", f"P2 must keep its ref, got {p2.get('ref')}")
    v = _one(ctx, "SPN008", keys, f"{t}-v")
    if v is not None:
        ctx.expect("SPN008", "rebuild_items", v.get("data") == env["v"]["data"], "an envelope under value_ is read")
    for key, name in zip(seeded.no_key, ("n0", "n1"), strict=True):
        row = _one(ctx, "SPN011", keys, key)
        if row is not None:
            ctx.expect("SPN011", "rebuild_items", row.get("ref") == env[name]["ref"],
                       f"D7: the key-less envelope {name} must get dedupe_key {key}")
    ctx.expect("SPN006", "rebuild_items", f"{t}-k1" not in keys, "rebuild of run R1 must not materialize run R2")
    check_events(ctx, h1, p1)


def check_events(ctx: Context, h1: dict[str, Any] | None, p1: dict[str, Any] | None) -> None:
    """SPN009 (D10): system events for the healed and the refreshed item."""
    for row, kind in ((h1, "created"), (p1, "updated")):
        if row is None:
            continue
        ex = ctx.api.call("list_item_events", item_id=str(row["id"]))
        events = [e for e in obj(ex).get("events", []) if isinstance(e, dict)]
        ok = any(e.get("event_type") == kind and e.get("actor_type") == "system" for e in events)
        ctx.expect("SPN009", "list_item_events", ok, f"D10: expected a system `{kind}` event, got "
                   f"{[(e.get('event_type'), e.get('actor_type')) for e in events]}", ex)


def check_filters(ctx: Context, seeded: Seeded) -> None:
    """SPN006/SPN007: session + run combine; session ids compare case-insensitively; D5 for an empty session."""
    ex, processed = rebuild(ctx, {"session_id": seeded.session_id.upper(), "run_ids": [seeded.run2]})
    ctx.differs("SPN006", "rebuild_items", processed == 1,
                f"session (upper case) AND run R2 select exactly K1: processed must be 1, got {processed}", "D1", ex)
    k1 = ctx.api.call("list_items", params={"ref": f"{seeded.tag}-k1"})
    ctx.expect("SPN006", "list_items", obj(k1).get("total") == 1, "K1 must exist after rebuilding run R2", k1)
    ex, processed = rebuild(ctx, {"session_id": seeded.session_id})
    ctx.expect("SPN007", "rebuild_items", processed == seeded.r1_distinct + 1,
               f"the whole session holds {seeded.r1_distinct + 1} distinct items, processed={processed}", ex)
    ex, processed = rebuild(ctx, {"session_id": str(uuid.uuid4())})
    ctx.differs("RBL001", "rebuild_items", processed == 0, f"D5: an unknown session processes 0, got {processed}",
                "D5", ex)


def run_all(ctx: Context) -> None:
    """The full-level scenario; a CheckFailed ends it and the runner marks what it did not reach."""
    tag = ctx.tag
    seeded = Seeded(tag, str(uuid.uuid4()), f"{tag}-run-1", str(uuid.uuid4()))
    post_items(ctx, seeded)
    traces = build_traces(ctx, seeded)
    before = snapshot(ctx)
    if not ingest(ctx, traces):
        raise CheckFailed("the SDK's spans could not be ingested (ING001)")
    ex, processed = first_rebuild(ctx, seeded)
    after = snapshot(ctx)
    with ctx.evidence(ex):
        compare(ctx, before, after, "rebuild of seeded run R1")
        check_after_first(ctx, seeded, after, processed)
    check_filters(ctx, seeded)
    session = {"session_id": seeded.session_id}
    first = snapshot(ctx, **session)
    ids = [str(i["id"]) for i in first]
    events = event_counts(ctx, ids)
    second, again = rebuild(ctx, session)
    with ctx.evidence(second):
        unchanged(ctx, first, snapshot(ctx, **session), "second rebuild of the seeded session")
        ctx.expect("RBL005", "rebuild_items", again == seeded.r1_distinct + 1,
                   f"a second rebuild confirms the same items, processed={again}")
        ctx.expect("RBL005", "list_item_events", event_counts(ctx, ids) == events,
                   "D10: a rebuild that changes nothing appends no event")
