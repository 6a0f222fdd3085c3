"""Rebuild's decision: which rows to heal, which span-owned fields to refresh, what to leave alone (D6-D10).

Pure: rows, ids and the clock come in as arguments; the store applies the returned RowChanges in one
transaction. Every output list is ordered by dedupe_key and `new_id` is called in that order, so the
result never depends on the order the spans were read in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from harness.model import (
    Disposition,
    ItemEnvelope,
    ItemEvent,
    ItemRow,
    JSONObject,
    RowChanges,
    RowRefresh,
    SpanItem,
)
from harness.reconcile.refs import RefRequest, resolve_refs

REBUILD_CREATED_BY: str | None = None
"""`created_by` of a healed row: no person made it (the `created` event names the system actor)."""

_CREATED_PAYLOAD: JSONObject = {"reason": "rebuild", "source": "extracted"}
"""The payload of every `created` event of a rebuild: one object, so the store encodes it once (never mutated)."""

LINKS_EVENT_FIELD = "links"
"""Name under which a change of the report's links appears in an `updated` event (the API's field name)."""


def reconcile(
    items: Iterable[SpanItem],
    existing: Mapping[str, ItemRow],
    ref_holders: Mapping[str, str],
    *,
    organization_id: str,
    project_id: str,
    now: str,
    new_id: Callable[[], str],
) -> RowChanges:
    """Turn the item reports of some spans, plus the rows they already have, into row changes.

    Each processed dedupe_key lands in exactly one of `creates`, a refresh carrying `updated_at` (a real
    change), or `unchanged` (a row confirmed as is; it may still get a refresh of `span_order` alone).
    """
    winners, superseded = latest_reports(items)
    changes = RowChanges(processed=len(winners), superseded=superseded)

    # Rows that already reflect a later span are confirmed untouched and keep whatever ref they hold.
    active: dict[str, SpanItem] = {}
    for key, item in winners.items():
        row = existing.get(key)
        if row is not None and row.span_order is not None and row.span_order > item.order.encode():
            continue
        active[key] = item

    refs, changes.ref_collisions = resolve_refs(
        {
            key: RefRequest(
                desired=item.envelope.ref,
                current=existing[key].ref if key in existing else None,
                row_id=existing[key].id if key in existing else None,
            )
            for key, item in active.items()
        },
        ref_holders,
    )

    for key in sorted(winners):
        row = existing.get(key)
        if key not in active:
            assert row is not None
            _confirm(changes, row)
            continue
        item = active[key]
        if row is None:
            _heal(
                changes,
                item,
                refs[key],
                organization_id=organization_id,
                project_id=project_id,
                now=now,
                new_id=new_id,
            )
        else:
            _refresh(changes, row, item, refs[key], now=now)
    return changes


def span_owned_values(envelope: ItemEnvelope, ref: str | None) -> JSONObject:
    """The SPAN_OWNED_FIELDS values a report dictates, with the ref D9 granted in place of the asked one."""
    return {
        "item_type": envelope.item_type,
        "data": envelope.data,
        "title": envelope.title,
        "ref": ref,
        "schema_ref": envelope.schema_ref,
        "capability": envelope.capability,
        "capability_version": envelope.capability_version,
        "session_id": envelope.session_id,
        "trace_id": envelope.trace_id,
        "span_id": envelope.span_id,
    }


def disposition_from_envelope(envelope: ItemEnvelope, now: str) -> Disposition | None:
    """D8: a healed item's triage overlay comes from its report's status/notes; none when both are null."""
    if envelope.status is None and envelope.notes is None:
        return None
    return Disposition(status=envelope.status, notes=envelope.notes, updated_at=now, updated_by=None)


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: like ==, except that true/false never equal 1/0 (Python's bool is an int)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(value, b[name]) for name, value in a.items())
        )
    if isinstance(a, list | tuple):
        return (
            isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(b, dict | list | tuple):
        return False
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN (Python's json reads it) must not make every rebuild a change
    return bool(a == b)


def latest_reports(items: Iterable[SpanItem]) -> tuple[dict[str, SpanItem], int]:
    """The winning report per dedupe_key (greatest SpanOrder) and how many reports lost."""
    winners: dict[str, SpanItem] = {}
    seen = 0
    for item in items:
        seen += 1
        key = item.envelope.dedupe_key
        best = winners.get(key)
        if best is None or _later(item, best):
            winners[key] = item
    return winners, seen - len(winners)


def _later(a: SpanItem, b: SpanItem) -> bool:
    """Whether report `a` beats `b`; equal orders (a span read twice) fall back to the content."""
    if a.order != b.order:
        return a.order > b.order
    return _canonical(a) > _canonical(b)


def _canonical(item: SpanItem) -> str:
    return json.dumps(asdict(item), sort_keys=True, default=repr)


def _confirm(changes: RowChanges, row: ItemRow) -> None:
    changes.unchanged.append(row.id)
    if row.disposition is not None:
        changes.preserved.append(row.id)


def _heal(
    changes: RowChanges,
    item: SpanItem,
    ref: str | None,
    *,
    organization_id: str,
    project_id: str,
    now: str,
    new_id: Callable[[], str],
) -> None:
    """Create the row whose POST never landed (D8), from the span copy."""
    envelope = item.envelope
    row = ItemRow(
        id=new_id(),
        organization_id=organization_id,
        project_id=project_id,
        dedupe_key=envelope.dedupe_key,
        source="extracted",
        disposition=disposition_from_envelope(envelope, now),
        created_at=now,
        created_by=REBUILD_CREATED_BY,
        updated_at=now,
        span_order=item.order.encode(),
        link_specs=envelope.links,
        **span_owned_values(envelope, ref),
    )
    changes.creates.append(row)
    changes.events.append(
        ItemEvent(
            item_id=row.id,
            event_type="created",
            actor_type="system",
            actor_id=None,
            payload=_CREATED_PAYLOAD,
        )
    )


def _refresh(changes: RowChanges, row: ItemRow, item: SpanItem, ref: str | None, *, now: str) -> None:
    """Refresh only the span-owned fields that differ; identity and disposition are never in the change."""
    diff: JSONObject = {
        name: value
        for name, value in span_owned_values(item.envelope, ref).items()
        if not json_equal(getattr(row, name), value)
    }
    changed = sorted(diff)
    if item.envelope.links != row.link_specs:
        diff["link_specs"] = item.envelope.links
        changed = sorted([*changed, LINKS_EVENT_FIELD])
    if diff:
        diff["updated_at"] = now
    order = item.order.encode()
    if order != row.span_order:
        diff["span_order"] = order
    if diff:
        changes.refreshes.append(RowRefresh(item_id=row.id, changes=diff))
    if changed:
        changes.events.append(
            ItemEvent(
                item_id=row.id,
                event_type="updated",
                actor_type="system",
                actor_id=None,
                payload={"changed": changed, "reason": "rebuild"},
            )
        )
    else:
        changes.unchanged.append(row.id)
    if row.disposition is not None:
        changes.preserved.append(row.id)
