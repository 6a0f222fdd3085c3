"""Who may do what: credential (401), then tenancy (404), then scope (403), then input (D4).

Runs after Connexion's routing (so it knows the operation) and before its validation (so a bad body
from an unknown caller is still a 401). Required scopes come from each operation's `x-scopes` in
openapi.yaml. The body is read here, once, with a size cap, so an oversized body is refused before
it is held in memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.contract import load_spec
from harness.server.config import Credential, Project, Tenancy
from harness.server.errors import APIError, envelope_response

CONTEXT_KEY = "connexion_context"


@dataclass(frozen=True)
class Access:
    """What a handler may rely on: the caller and the project it addressed."""

    credential: Credential
    org: str
    project: Project | None


def operation_scopes() -> dict[str, frozenset[str]]:
    """operationId -> the scopes it needs, read from the spec (`x-scopes`)."""
    scopes: dict[str, frozenset[str]] = {}
    for path_item in load_spec()["paths"].values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                scopes[operation["operationId"]] = frozenset(operation.get("x-scopes", []))
    return scopes


class TokenBucket:
    """Per-credential rate limit: `rate` requests a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when a request may go ahead, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def check_rate_limit(bucket: TokenBucket | None, credential: Credential) -> None:
    """429 with `Retry-After` (whole seconds) when the credential's bucket is empty; nothing was done yet.

    Checked right after the credential, before the body is read: a limited request has no side effect.
    """
    if bucket is None:
        return
    wait = bucket.take(credential.name)
    if wait > 0:
        raise APIError(429, "Rate limit exceeded for this credential; retry later",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})


def authenticate(tenancy: Tenancy, headers: Headers) -> Credential:
    """The credential of `Authorization: Bearer` or `X-API-Key`, or a 401 that says how to send one."""
    candidates: list[str] = []
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            candidates.append(token.strip())
    api_key = headers.get("x-api-key")
    if api_key and api_key.strip():
        candidates.append(api_key.strip())
    if not candidates:
        raise APIError(401, "Authentication failed: send 'Authorization: Bearer <token>' or 'X-API-Key'")
    for presented in candidates:
        credential = tenancy.authenticate(presented)
        if credential is not None:
            return credential
    raise APIError(401, "Authentication failed")


class AccessMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        tenancy: Tenancy,
        context: dict[str, Any],
        max_body_bytes: int,
        rate_limit: TokenBucket | None,
        max_ingest_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.tenancy = tenancy
        self.context = context
        self.max_body_bytes = max_body_bytes
        self.max_ingest_bytes = max_ingest_bytes
        self.rate_limit = rate_limit
        self.scopes = operation_scopes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
        if scope["type"] != "http" or operation_id is None:
            await self.app(scope, receive, send)
            return
        try:
            access = self.authorize(scope, operation_id)
            limit = self.max_ingest_bytes if operation_id.endswith("ingest_traces") else self.max_body_bytes
            receive = await self.buffer_body(scope, receive, limit)
        except APIError as error:
            await envelope_response(error)(scope, receive, send)
            return
        context = scope.setdefault("extensions", {}).setdefault(CONTEXT_KEY, {})
        context.update(self.context)
        context["access"] = access
        await self.app(scope, receive, send)

    def authorize(self, scope: Scope, operation_id: str) -> Access:
        headers = Headers(scope=scope)
        credential = self.authenticate(headers)
        check_rate_limit(self.rate_limit, credential)
        params: dict[str, str] = scope.get("path_params", {})
        org = params.get("org", "")
        project: Project | None = None
        if "project" in params:
            project = self.tenancy.find_project(org, params.get("workspace", ""), params["project"])
            if project is None or not credential.sees(project.org, project.workspace):
                raise APIError(404, "Project not found")
        elif not self.tenancy.org_exists(org) or not credential.sees(org, None):
            raise APIError(404, "Organization not found")
        needed = self.scopes.get(operation_id.rsplit(".", 1)[-1], frozenset({"items:admin"}))
        missing = sorted(needed - credential.scopes)
        if missing:
            raise APIError(403, f"This credential lacks the {', '.join(missing)} scope")
        return Access(credential=credential, org=org, project=project)

    def authenticate(self, headers: Headers) -> Credential:
        return authenticate(self.tenancy, headers)

    async def buffer_body(self, scope: Scope, receive: Receive, limit: int) -> Receive:
        """Read the whole body under the cap and replay it, with a Content-Length that is true."""
        headers = MutableHeaders(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise APIError(400, "Invalid Content-Length header")
            if int(declared) > limit:
                raise APIError(400, f"Request body exceeds the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise APIError(400, "Client disconnected before the body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise APIError(400, f"Request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        headers["content-length"] = str(len(body))
        replayed: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> MutableMapping[str, Any]:
            if replayed:
                return replayed.pop()
            return await receive()

        return replay
