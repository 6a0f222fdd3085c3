"""One function per operationId of openapi.yaml: thin, the work happens in the store and in rebuild.

Connexion has already authorized the call (AccessMiddleware) and validated its input against the
spec by the time a handler runs; handlers map store results and refusals to contract statuses.

Plain functions run in Starlette's thread pool, so a write waiting on SQLite's lock never stalls the
event loop. `get_item` and `get_item_access` are coroutines: a read by primary key (tens of
microseconds; in WAL mode a reader never waits for a writer) costs far less than the hop to the pool,
which under 32 connections made get_item 2.3x slower (bench/server.py).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Protocol

from connexion import NoContent
from connexion.context import context, request
from starlette.concurrency import run_in_threadpool

from harness.items import listing
from harness.items.errors import InvalidLink, ItemNotFound, LinkNotFound, RefConflict, TargetNotFound
from harness.items.store import UNSET, Actor, ItemPatch, ItemStore, NewItem
from harness.reconcile import plan_links
from harness.server.access import Access
from harness.server.config import Project
from harness.server.errors import APIError, validation_error
from harness.server.serialize import event_json, item_json, item_ref_json, link_json

Reply = tuple[Any, int] | tuple[Any, int, dict[str, str]]


class RebuildFn(Protocol):
    def __call__(self, project: Project, session_id: str | None, run_ids: tuple[str, ...], actor: Actor) -> int: ...


class IngestFn(Protocol):
    def __call__(
        self, org: str, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> tuple[bytes, str]: ...


def _access() -> Access:
    access: Access = context["access"]
    return access


def _project() -> Project:
    project = _access().project
    if project is None:  # every items path names a project; the middleware resolved it
        raise APIError(404, "Project not found")
    return project


def _store() -> ItemStore:
    store: ItemStore = context["store"]
    return store


def _actor(actor_type: str = "user") -> Actor:
    return Actor(actor_type=actor_type, actor_id=_access().credential.name)


def _utc(value: str | None, name: str) -> str | None:
    """A client's date-time in any offset -> our stored UTC text form, so comparisons are right."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise validation_error([{"loc": ["query", name], "msg": "Invalid date-time", "type": "datetime_parsing"}]) \
            from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def create_item(org: str, workspace: str, project: str, body: dict[str, Any]) -> Reply:
    p = _project()
    new = NewItem.from_body(body)
    try:
        row, created = _store().create_item(p.organization_id, p.id, new,
                                            _actor("agent" if new.source == "runtime" else "user"), plan_links)
    except RefConflict as exc:
        raise APIError(409, str(exc), type_="already_exists_error") from exc
    return item_json(row), 201 if created else 200


def list_items(org: str, workspace: str, project: str, **query: Any) -> Reply:
    f = listing.ItemFilter(
        item_type=query.get("item_type"),
        severity=tuple(query.get("severity") or ()),
        status=tuple(query.get("status") or ()),
        min_severity=query.get("min_severity"),
        category=query.get("category"),
        capability=tuple(query.get("capability") or ()),
        source=tuple(query.get("source") or ()),
        session_id=_lower(query.get("session_id")),
        ref=query.get("ref"),
        q=query.get("q"),
        created_after=_utc(query.get("created_after"), "created_after"),
        created_before=_utc(query.get("created_before"), "created_before"),
        sort=query.get("sort") or "created_at",
        order=query.get("order") or "desc",
        page=int(query.get("page") or 1),
        limit=int(query.get("limit") or 50),
    )
    rows, total = listing.list_items(_store(), _project().id, f)
    total_pages = math.ceil(total / f.limit) if total else 0
    return {
        "items": [item_json(r) for r in rows],
        "total": total,
        "page": f.page,
        "limit": f.limit,
        "total_pages": total_pages,
        "has_next": f.page < total_pages,
        "has_previous": f.page > 1,
    }, 200


async def get_item(org: str, workspace: str, project: str, item_id: str) -> Reply:
    row = _store().get_item(_project().id, item_id.lower())
    if row is None:
        raise APIError(404, "Item not found")
    return item_json(row), 200


def update_item(org: str, workspace: str, project: str, item_id: str, body: dict[str, Any]) -> Reply:
    patch = ItemPatch(
        data=body.get("data"),
        title=body.get("title", UNSET),
        status=body.get("status", UNSET),
        notes=body.get("notes", UNSET),
    )
    try:
        row = _store().update_item(_project().id, item_id.lower(), patch, _actor())
    except ItemNotFound as exc:
        raise APIError(404, str(exc)) from exc
    return item_json(row), 200


def bulk_update_items(org: str, workspace: str, project: str, body: dict[str, Any]) -> Reply:
    ids = [i.lower() for i in body["item_ids"]]
    updated, failed = _store().bulk_update_status(_project().id, ids, body["status"], _actor())
    return {"updated": updated, "failed": [{"item_id": i, "detail": why} for i, why in failed]}, 200


def create_item_link(org: str, workspace: str, project: str, item_id: str, body: dict[str, Any]) -> Reply:
    target_id = body.get("target_item_id")
    try:
        link, created = _store().create_link(
            _project().id, item_id.lower(), body["relationship"],
            target_id.lower() if target_id else None, body.get("target_ref"), _actor(),
        )
    except (ItemNotFound, TargetNotFound) as exc:
        raise APIError(404, str(exc)) from exc
    except InvalidLink as exc:
        field = "target_item_id" if target_id else "target_ref"
        raise validation_error([{"loc": ["body", field], "msg": str(exc), "type": "value_error"}]) from exc
    return link_json(link), 201 if created else 200


def list_item_links(org: str, workspace: str, project: str, item_id: str) -> Reply:
    store, p = _store(), _project()
    item_id = item_id.lower()
    if store.get_item(p.id, item_id) is None:
        raise APIError(404, "Item not found")
    result = []
    for link in store.links_of(item_id):
        outgoing = link.source_item_id == item_id
        other = store.get_item(p.id, link.target_item_id if outgoing else link.source_item_id)
        if other is None:
            continue
        result.append({
            "direction": "outgoing" if outgoing else "incoming",
            "item": item_ref_json(other),
            "link_id": link.id,
            "relationship": link.relationship,
        })
    return {"links": result}, 200


def delete_item_link(org: str, workspace: str, project: str, item_id: str, link_id: str) -> Reply:
    try:
        _store().delete_link(_project().id, item_id.lower(), link_id.lower(), _actor())
    except (ItemNotFound, LinkNotFound) as exc:
        raise APIError(404, str(exc)) from exc
    return NoContent, 204


def list_item_events(org: str, workspace: str, project: str, item_id: str) -> Reply:
    store, p = _store(), _project()
    if store.get_item(p.id, item_id.lower()) is None:
        raise APIError(404, "Item not found")
    return {"events": [event_json(c) for c in store.events_of(item_id.lower())]}, 200


async def get_item_access(org: str, workspace: str, project: str) -> Reply:
    scopes = _access().credential.scopes
    return {"admin": "items:admin" in scopes, "read": "items:read" in scopes,
            "write": "items:write" in scopes}, 200


def item_summary(org: str, workspace: str, project: str, item_type: str | None = None) -> Reply:
    return listing.summary(_store(), _project().id, item_type), 200


def rebuild_items(org: str, workspace: str, project: str, body: dict[str, Any]) -> Reply:
    session_id = _lower(body.get("session_id"))
    run_ids = tuple(dict.fromkeys(body.get("run_ids") or ()))
    if session_id is None and not run_ids:
        raise validation_error([{"loc": ["body"], "msg": "Provide session_id and/or a non-empty run_ids",
                                 "type": "value_error"}])
    rebuild: RebuildFn = context["rebuild"]
    processed = rebuild(_project(), session_id, run_ids, _actor("system"))
    return {"processed": processed}, 200


async def ingest_traces(org: str) -> Reply:
    ingest: IngestFn = context["ingest"]
    body = await request.body()
    headers = request.headers
    answer, media = await run_in_threadpool(ingest, org, body, headers.get("content-type"),
                                            headers.get("content-encoding"))
    return answer, 200, {"Content-Type": media}
