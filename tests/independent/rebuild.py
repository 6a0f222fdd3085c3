"""rebuild_items: re-materialize the item envelopes that ride on stored spans (the SDK's span format, D5-D10).

Spans are the source of record: what a span owns is refreshed, the human's disposition never is,
and an item the table lacks is healed. Nothing changes on a second run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .auth import Project
from .items import SYSTEM, add_link, disposition, unlink
from .store import Item, Store
from .validate import UUID_RE, strict_json

SPAN_OWNED = ("item_type", "data", "title", "ref", "schema_ref", "capability", "capability_version", "session_id",
              "trace_id", "span_id")
"""D8: refreshed from the span; id, created_at, created_by, source and disposition are kept."""


@dataclass
class Envelope:
    key: str
    fields: dict[str, Any]
    """SPAN_OWNED values."""
    status: str | None
    notes: str | None
    links: list[dict[str, Any]]


def _json(text: Any) -> Any:
    """A span attribute's JSON, or None when it is not JSON an item could hold (NaN, lone surrogates)."""
    if not isinstance(text, str):
        return None
    try:
        return strict_json(text)
    except (ValueError, RecursionError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _session(value: str | None) -> str | None:
    return value.lower() if value is not None and UUID_RE.fullmatch(value) else value


def envelopes(span: dict[str, Any]) -> Iterator[Envelope]:
    """Every recoverable item on a span, in output order; offloaded (`type: uri`) and malformed ones are skipped."""
    attributes = span["attributes"]
    outputs, objects = _json(attributes.get("dreadnode.outputs")), _json(attributes.get("dreadnode.objects"))
    if not isinstance(outputs, list) or not isinstance(objects, dict):
        return
    entries = [e for e in outputs if isinstance(e, dict) and e.get("name") == "item"]
    for n, entry in enumerate(entries):
        stored = objects.get(entry.get("hash")) if isinstance(entry.get("hash"), str) else None
        if not isinstance(stored, dict) or stored.get("type") == "uri":
            continue
        value = stored["value"] if "value" in stored else stored.get("value_")
        if not isinstance(value, dict) or not isinstance(value.get("item_type"), str) or not value["item_type"]:
            continue
        data = value.get("data")
        fields: dict[str, Any] = {k: _text(value.get(k)) for k in SPAN_OWNED if k != "data"}
        fields["data"] = data if isinstance(data, dict) else {}
        fields["session_id"] = _session(fields["session_id"] or _text(attributes.get("dreadnode.session.id")))
        fields["trace_id"] = fields["trace_id"] or span["trace_id"]
        fields["span_id"] = fields["span_id"] or span["span_id"]
        key = _text(value.get("dedupe_key")) or f"span:{span['trace_id']}:{span['span_id']}:{n}"
        links = value.get("links")
        yield Envelope(key, fields, _text(value.get("status")), _text(value.get("notes")),
                       [x for x in links if isinstance(x, dict)] if isinstance(links, list) else [])


def selected(store: Store, project: Project, run_ids: list[str] | None,
             session_id: str | None) -> dict[str, Envelope]:
    """D13 and D1: the project's spans (slug or UUID in dreadnode.project), within the session AND the runs.

    A key met twice keeps its last (latest) envelope.
    """
    found: dict[str, Envelope] = {}
    for span in store.spans(project.org, session_id):
        if not project.named(span["project"]) or (run_ids is not None and span["run_id"] not in run_ids):
            continue
        for envelope in envelopes(span):
            found[envelope.key] = envelope
    return found


def _materialize(store: Store, project: Project, envelope: Envelope) -> Item:
    fields = dict(envelope.fields)
    existing = store.item_by(project.id, "dedupe_key", envelope.key)
    holder = store.item_by(project.id, "ref", fields["ref"]) if fields["ref"] is not None else None
    if holder is not None and (existing is None or holder["id"] != existing["id"]):
        fields["ref"] = existing["ref"] if existing is not None else None  # D9: never taken over
    if existing is not None:
        changed = {k: v for k, v in fields.items() if existing[k] != v}
        if not changed:
            return existing
        store.update_item(existing["id"], {**changed, "updated_at": store.now()})
        store.add_event(existing["id"], "updated", *SYSTEM, {"changed": sorted(changed), "reason": "rebuild"})
        return {**existing, **changed}
    now = store.now()
    item: Item = {"id": str(uuid.uuid4()), "organization_id": project.org_id, "project_id": project.id, **fields,
                  "dedupe_key": envelope.key, "source": "extracted", "created_at": now, "updated_at": now,
                  "created_by": "system",  # DIFFERENCES[1]: the reference sets null
                  "disposition": disposition(envelope.status, envelope.notes, "system", now)}
    store.insert_item(item)
    store.add_event(item["id"], "created", *SYSTEM, {"source": "extracted"})
    return item


def _target(store: Store, project: Project, link: dict[str, Any]) -> tuple[Item, str] | None:
    """(target, relationship) of a span's link, once its target exists."""
    relationship = _text(link.get("relationship"))
    target_id, target_ref = _text(link.get("target_item_id")), _text(link.get("target_ref"))
    target = None
    if target_id is not None and UUID_RE.fullmatch(target_id):
        target = store.item(project.id, target_id.lower())
    elif target_ref is not None:
        target = store.item_by(project.id, "ref", target_ref)
    return (target, relationship) if target is not None and relationship else None


def _links(store: Store, project: Project, source: Item, links: list[dict[str, Any]]) -> None:
    """Reported links follow the span (added and removed); a user's links are never touched."""
    wanted = [t for link in links if (t := _target(store, project, link)) and t[0]["id"] != source["id"]]
    keep = {(target["id"], relationship) for target, relationship in wanted}
    for row in store.reported_links(source["id"]):
        if (row["target_item_id"], row["relationship"]) not in keep:
            unlink(store, row, SYSTEM)
    for target, relationship in wanted:
        add_link(store, source, target, relationship, SYSTEM, ["body"], reported=True)


def rebuild(store: Store, project: Project, run_ids: list[str] | None, session_id: str | None) -> int:
    """D6: processed = the distinct items (by upsert key) of the selected spans, offloaded ones not counted."""
    found = selected(store, project, run_ids, session_id)
    with store.transaction():
        items = [(_materialize(store, project, envelope), envelope) for envelope in found.values()]
        for item, envelope in items:
            _links(store, project, item, envelope.links)
    return len(found)
