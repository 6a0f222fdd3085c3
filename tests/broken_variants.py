"""Deliberately broken variants of the reference server, each a real uvicorn server on 127.0.0.1.

Two kinds: an ASGI wrapper around the real application that breaks what goes in or out (the envelope,
auth, a filter, a status), and a small subclass of the item store that breaks what a rebuild writes.
Each variant names the check of `harness check` that must catch it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from live_server import LiveServer
from server_fixtures import ADMIN

from harness.items.store import ItemStore
from harness.model import ItemRow, RowChanges
from harness.server.app import ServerSettings, create_app
from harness.server.config import Tenancy
from harness.server.runtime import make_ingest, make_rebuild
from harness.spans.source import SpanSource

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

ADMIN_TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")
READER_TOKEN = "reader-token-0123456789"
ACME_TOKEN = "acme-token-0123456789"


# ------------------------------------------------------------------------------------------ ASGI plumbing


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


def _token(scope: Scope) -> str:
    bearer = _header(scope, b"authorization")
    return bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else _header(scope, b"x-api-key")


def _as_admin(scope: Scope) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"authorization", b"x-api-key")]
    return {**scope, "headers": [*headers, (b"authorization", f"Bearer {ADMIN_TOKEN}".encode())]}


def rewrite_requests(app: ASGIApp, rewrite: Callable[[Scope], Scope]) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        await app(rewrite(scope) if scope["type"] == "http" else scope, receive, send)

    return wrapped


ResponseRewrite = Callable[[Scope, int, Headers, bytes], tuple[int, Headers, bytes]]


def rewrite_responses(app: ASGIApp, rewrite: ResponseRewrite) -> ASGIApp:
    """Buffer each response and let `rewrite` change its status, headers and body."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    status, headers, body = rewrite(scope, start["status"], list(start.get("headers", [])),
                                                    b"".join(chunks))
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                    headers.append((b"content-length", str(len(body)).encode()))
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        await app(scope, receive, capture)

    return wrapped


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _with_content_type(headers: Headers, value: bytes) -> Headers:
    return [(k, v) for k, v in headers if k.lower() != b"content-type"] + [(b"content-type", value)]


def rewrite_errors(change: Callable[[int, dict[str, Any]], dict[str, Any]], content_type: bytes = b"application/json"
                   ) -> ResponseRewrite:
    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        parsed = _json(body)
        if status < 400 or not isinstance(parsed, dict):
            return status, headers, body
        return status, _with_content_type(headers, content_type), json.dumps(change(status, parsed)).encode()

    return rewrite


# ------------------------------------------------------------------------------------------ the breakages


def code_always_400(app: ASGIApp) -> ASGIApp:
    return rewrite_responses(app, rewrite_errors(lambda _s, body: {**body, "code": 400}))


def envelope_without_type(app: ASGIApp) -> ASGIApp:
    return rewrite_responses(app, rewrite_errors(lambda _s, body: {k: v for k, v in body.items() if k != "type"}))


def problem_json(app: ASGIApp) -> ASGIApp:
    def as_problem(status: int, body: dict[str, Any]) -> dict[str, Any]:
        return {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                "detail": body.get("detail")}

    return rewrite_responses(app, rewrite_errors(as_problem, b"application/problem+json"))


def reader_may_rebuild(app: ASGIApp) -> ASGIApp:
    def rewrite(scope: Scope) -> Scope:
        if scope["path"].endswith("/items/rebuild") and _token(scope) == READER_TOKEN:
            return _as_admin(scope)
        return scope

    return rewrite_requests(app, rewrite)


def cross_tenant_reads(app: ASGIApp) -> ASGIApp:
    def rewrite(scope: Scope) -> Scope:
        if scope["method"] == "GET" and "/org/example/" in scope["path"] and _token(scope) == ACME_TOKEN:
            return _as_admin(scope)
        return scope

    return rewrite_requests(app, rewrite)


def replay_is_422(app: ASGIApp) -> ASGIApp:
    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if scope["method"] == "POST" and scope["path"].endswith("/items") and status == 200:
            envelope = {"code": 422, "detail": "dedupe_key is already used", "type": "validation_error",
                        "errors": [{"loc": ["body", "dedupe_key"], "msg": "already used", "type": "value_error"}]}
            return 422, _with_content_type(headers, b"application/json"), json.dumps(envelope).encode()
        return status, headers, body

    return rewrite_responses(app, rewrite)


def processed_always_zero(app: ASGIApp) -> ASGIApp:
    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if scope["path"].endswith("/items/rebuild") and status == 200:
            return status, headers, b'{"processed": 0}'
        return status, headers, body

    return rewrite_responses(app, rewrite)


def crash_on_empty_body(app: ASGIApp) -> ASGIApp:
    """An empty POST/PATCH body under a project makes the handler crash: 500 (in a valid envelope)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PATCH") or "/projects/" not in scope["path"]:
            await app(scope, receive, send)
            return
        first = await receive()
        if first.get("body", b"") == b"" and not first.get("more_body") and _token(scope) == ADMIN_TOKEN:
            body = b'{"code": 500, "detail": "Internal server error", "type": "app_error"}'
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        replayed = [first]

        async def replay() -> Message:
            return replayed.pop() if replayed else await receive()

        await app(scope, replay, send)

    return wrapped


def ignores_severity_filter(app: ASGIApp) -> ASGIApp:
    def rewrite(scope: Scope) -> Scope:
        if scope["method"] == "GET" and scope["path"].endswith("/items"):
            pairs = parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
            kept = urlencode([(k, v) for k, v in pairs if k != "severity"]).encode()
            return {**scope, "query_string": kept}
        return scope

    return rewrite_requests(app, rewrite)


class WipesDispositionOnRebuild(ItemStore):
    """Rebuild writes the envelope's (empty) triage over every row it touches."""

    def apply_changes(self, changes: RowChanges, project_id: str, rows: dict[str, ItemRow]) -> None:
        super().apply_changes(changes, project_id, rows)
        for item_id in [r.item_id for r in changes.refreshes] + list(changes.unchanged):
            self.db.execute(
                "UPDATE items SET has_disposition = 0, disposition_status = NULL, disposition_notes = NULL, "
                "disposition_updated_at = NULL, disposition_updated_by = NULL WHERE id = ?", [item_id])


class DropsHealedItems(ItemStore):
    """Rebuild refreshes existing rows but never creates the ones whose POST failed."""

    def apply_changes(self, changes: RowChanges, project_id: str, rows: dict[str, ItemRow]) -> None:
        kept = [e for e in changes.events if e.event_type != "created"]
        super().apply_changes(replace(changes, creates=[], events=kept), project_id, rows)


class DuplicatesPostedItems(ItemStore):
    """Rebuild only knows rows it made itself, and no unique index stops a second row for the same item."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        for name in ("idx_items_project_id_dedupe_key", "idx_items_project_id_ref"):
            self.db.execute(f'DROP INDEX IF EXISTS "{name}"')

    def rows_by_dedupe_keys(self, project_id: str, keys: Sequence[str]) -> dict[str, ItemRow]:
        found = super().rows_by_dedupe_keys(project_id, keys)
        return {key: row for key, row in found.items() if row.source == "extracted"}


# ------------------------------------------------------------------------------------------ the catalogue


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    catches: str
    """The check ID of `harness check` that must fail."""
    level: str
    """The lowest level that catches it."""
    wrap: Callable[[ASGIApp], ASGIApp] | None = None
    store: type[ItemStore] = ItemStore
    needs_spans: bool = False
    reference_only: bool = False
    """Its only fault breaks a decision of the reference (DECISIONS.md): listed as a difference by default,
    a failure only under --strict."""


VARIANTS: tuple[Variant, ...] = (
    Variant("disposition-overwritten", "rebuild overwrites the disposition of the rows it touches", "RBL004",
            "full", store=WipesDispositionOnRebuild, needs_spans=True),
    Variant("healed-missing", "rebuild never creates an item whose POST failed", "SPN001", "full",
            store=DropsHealedItems, needs_spans=True),
    Variant("duplicate-span-post", "an item both POSTed and on a span becomes two rows", "SPN003", "full",
            store=DuplicatesPostedItems, needs_spans=True),
    Variant("code-not-status", "every error envelope says code 400", "ENV002", "contract", wrap=code_always_400),
    Variant("envelope-without-type", "error envelopes lack `type`", "ENV003", "contract", wrap=envelope_without_type),
    Variant("problem-json", "errors are application/problem+json (RFC 9457) instead of the envelope", "ENV001",
            "contract", wrap=problem_json),
    Variant("reader-rebuilds", "a read-only credential may rebuild", "AUTH005", "contract", wrap=reader_may_rebuild),
    Variant("cross-tenant-read", "another organization's credential can read this project", "TEN002", "contract",
            wrap=cross_tenant_reads),
    Variant("replay-422", "a create replay (known dedupe_key) answers 422", "DUP001", "stateful", wrap=replay_is_422),
    Variant("processed-zero", "rebuild always answers processed 0", "SPN007", "full", wrap=processed_always_zero,
            needs_spans=True, reference_only=True),
    Variant("empty-body-500", "an empty request body crashes the handler (500)", "INP005", "contract",
            wrap=crash_on_empty_body),
    Variant("severity-filter-ignored", "list_items ignores `severity`", "LST001", "stateful",
            wrap=ignores_severity_filter),
)
BY_NAME = {variant.name: variant for variant in VARIANTS}


def start_variant(
    variant: Variant, db_path: Path, tenancy: Tenancy, source: SpanSource
) -> tuple[LiveServer, ItemStore]:
    """The reference application with the variant's breakage, served on an ephemeral port."""
    store = variant.store(db_path)
    app: Any = create_app(ServerSettings(
        tenancy=tenancy, store=store,
        services={"rebuild": make_rebuild(store, source), "ingest": make_ingest(source)},
    ))
    if variant.wrap is not None:
        app = variant.wrap(app)
    return LiveServer(app).start(), store
