"""The HTTP surface: Starlette routes for the twelve operations and OTLP ingest, each wrapped in D4's order.

`endpoint` does credential (401), tenancy (404), scope (403) for every operation; the handler then
does input (400/422) and the work. Any other path or method is a 404 envelope (D3), never a 405.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import fixtures, items, otlp, rebuild, validate
from .auth import ADMIN, READ, WRITE, Credential, Project, Tenancy
from .errors import ApiError, json_response, not_found
from .store import Item, Store

log = logging.getLogger(__name__)
ITEMS = "/api/v1/org/{org}/ws/{workspace}/projects/{project}/items"
MAX_BODY, MAX_OTLP_BODY = 1024 * 1024, 16 * 1024 * 1024


async def read_body(request: Request, cap: int) -> bytes:
    """A body over the cap is 400, refused before it is held in memory."""
    declared = request.headers.get("content-length", "")
    too_large = ApiError(400, f"The body exceeds {cap} bytes")
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Call:
    """What a handler gets once D4's first three checks passed."""

    request: Request
    credential: Credential
    project: Project
    store: Store

    async def body(self) -> Any:
        return validate.parse_json(await read_body(self.request, MAX_BODY), self.request.headers.get("content-type"))

    def item(self) -> Item:
        """The path's item, looked up before any body is read (DIFFERENCES[0])."""
        item_id = validate.path_uuid(self.request.path_params["item_id"], "item_id")
        found = self.store.item(self.project.id, item_id)
        if found is None:
            raise not_found("Item")
        return found


Handler = Callable[[Call], Awaitable[Response]]


def endpoint(scope: str | None, handler: Handler, store: Store, tenancy: Tenancy) -> Callable[[Request],
                                                                                                Awaitable[Response]]:
    """One operation: D4's credential, tenancy and scope checks, then the handler; an ApiError anywhere is
    answered as its envelope, anything else as a 500 app_error (never a traceback)."""
    async def run(request: Request) -> Response:
        try:
            credential = tenancy.authenticate(request.headers)
            p = request.path_params
            project = tenancy.project(credential, p["org"], p["workspace"], p["project"])
            if scope is not None:
                tenancy.require(credential, scope)
            return await handler(Call(request, credential, project, store))
        except ApiError as error:
            return error.response()
        except Exception:
            log.exception("unexpected error")
            return ApiError(500, "Internal server error").response()

    return run


async def create_item(call: Call) -> Response:
    item, created = items.create(call.store, call.project, call.credential, validate.create_item(await call.body()))
    return json_response(items.present(item), 201 if created else 200)


async def list_items(call: Call) -> Response:
    filters = validate.list_query(call.request.query_params)
    return json_response(items.list_page(call.store.items(call.project.id), filters))


async def get_item(call: Call) -> Response:
    return json_response(items.present(call.item()))


async def update_item(call: Call) -> Response:
    item = call.item()
    patch = validate.update_item(await call.body())
    return json_response(items.present(items.update(call.store, item, patch, call.credential)))


async def bulk_update_items(call: Call) -> Response:
    ids, status = validate.bulk_update(await call.body())
    return json_response(items.bulk(call.store, call.project, call.credential, ids, status))


async def create_item_link(call: Call) -> Response:
    source = call.item()
    body = validate.create_link(await call.body())
    with call.store.transaction():
        target = items.resolve_target(call.store, call.project, body)
        link, created = items.add_link(call.store, source, target, body["relationship"], items.actor(call.credential),
                                       items.target_loc(body, ["body"]))
    return json_response(items.link_out(link), 201 if created else 200)


async def list_item_links(call: Call) -> Response:
    return json_response({"links": items.list_links(call.store, call.project, call.item())})


async def delete_item_link(call: Call) -> Response:
    item = call.item()
    link_id = validate.path_uuid(call.request.path_params["link_id"], "link_id")
    items.delete_link(call.store, item, link_id, call.credential)
    return Response(status_code=204)


async def list_item_events(call: Call) -> Response:
    return json_response({"events": call.store.events(call.item()["id"])})


async def get_item_access(call: Call) -> Response:
    scopes = call.credential.scopes
    return json_response({"admin": ADMIN in scopes, "read": READ in scopes, "write": WRITE in scopes})


async def item_summary(call: Call) -> Response:
    filters = validate.summary_query(call.request.query_params)
    return json_response(items.summary(call.store.items(call.project.id), filters.item_type))


async def rebuild_items(call: Call) -> Response:
    run_ids, session_id = validate.rebuild(await call.body())
    return json_response({"processed": rebuild.rebuild(call.store, call.project, run_ids, session_id)})


def ingest(store: Store, tenancy: Tenancy) -> Callable[[Request], Awaitable[Response]]:
    """OTLP/HTTP (items:write); D13: spans belong to the path's org, or the credential's on /v1/traces."""
    async def run(request: Request) -> Response:
        try:
            credential = tenancy.authenticate(request.headers)
            org = request.path_params.get("org", credential.org)
            tenancy.organization(credential, org)
            tenancy.require(credential, WRITE)
            export, as_json = otlp.decode_request(await read_body(request, MAX_OTLP_BODY),
                                                  request.headers.get("content-type"),
                                                  request.headers.get("content-encoding"))
            store.add_spans(otlp.span_rows(export, org))
        except ApiError as error:
            return error.response()
        except Exception:
            log.exception("unexpected error in ingest")
            return ApiError(500, "Internal server error").response()
        if as_json:  # DIFFERENCES[4]: {} for JSON, an empty protobuf response for protobuf
            return json_response({})
        return Response(b"", 200, media_type=otlp.PROTOBUF)

    return run


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and undeclared methods (D3): a 404 envelope, never 405 and never HTML."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status in (404, 405):
        return ApiError(404, "Not found").response()
    return ApiError(status if status in (400, 401, 403, 409, 422) else 500, str(getattr(exc, "detail", "Error"))
                    ).response()


def create_app(db_path: str | Path, tenancy: Tenancy | None = None, *, d12_fixtures: bool = True) -> Starlette:
    """The application over one SQLite file; `d12_fixtures` loads the documentation example's spans (D12)."""
    store, tenancy = Store(db_path), tenancy or Tenancy()
    if d12_fixtures:
        fixtures.load(store)

    def route(path: str, method: str, scope: str | None, handler: Handler) -> Route:
        return Route(ITEMS + path, endpoint(scope, handler, store, tenancy), methods=[method])

    routes = [
        route("/rebuild", "POST", ADMIN, rebuild_items),
        route("/bulk-update", "POST", WRITE, bulk_update_items),
        route("/access", "GET", None, get_item_access),
        route("/summary", "GET", READ, item_summary),
        route("", "POST", WRITE, create_item),
        route("", "GET", READ, list_items),
        route("/{item_id}", "GET", READ, get_item),
        route("/{item_id}", "PATCH", WRITE, update_item),
        route("/{item_id}/links", "GET", READ, list_item_links),
        route("/{item_id}/links", "POST", WRITE, create_item_link),
        route("/{item_id}/links/{link_id}", "DELETE", WRITE, delete_item_link),
        route("/{item_id}/events", "GET", READ, list_item_events),
        Route("/api/v1/org/{org}/otel/traces", ingest(store, tenancy), methods=["POST"]),
        Route("/v1/traces", ingest(store, tenancy), methods=["POST"]),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.router.redirect_slashes = False
    return app
