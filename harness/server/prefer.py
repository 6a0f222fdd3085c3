"""Prism's `Prefer: code=NNN`: answer a documented status with its example (only with --allow-prefer).

Lets client authors exercise their error paths against the reference server without staging the
failure. The answer comes from openapi.yaml, so it is the contract's own example.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from harness.contract import load_spec

_CODE = re.compile(r"(?:^|[;,\s])code=(\d{3})\b")


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def documented_examples() -> dict[str, dict[int, tuple[Any, dict[str, str]]]]:
    """operationId -> status -> (example body or None, headers to send)."""
    spec = load_spec()
    found: dict[str, dict[int, tuple[Any, dict[str, str]]]] = {}
    for path_item in spec["paths"].values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            by_status: dict[int, tuple[Any, dict[str, str]]] = {}
            for status, response in operation.get("responses", {}).items():
                if not status.isdigit():
                    continue
                response = _resolve(spec, response)
                media = response.get("content", {}).get("application/json", {})
                examples = media.get("examples") or {}
                body = _resolve(spec, next(iter(examples.values())))["value"] if examples else media.get("example")
                headers = {"Retry-After": "1"} if "Retry-After" in response.get("headers", {}) else {}
                by_status[int(status)] = (body, headers)
            found[operation["operationId"]] = by_status
    return found


class PreferMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.examples = documented_examples()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
        prefer = Headers(scope=scope).get("prefer") if scope["type"] == "http" else None
        match = _CODE.search(prefer or "")
        if operation_id is None or match is None:
            await self.app(scope, receive, send)
            return
        status = int(match.group(1))
        documented = self.examples.get(operation_id.rsplit(".", 1)[-1], {})
        if status not in documented:
            body: Any = {"code": 400, "detail": f"Prefer asked for status {status}, which this operation does "
                         f"not document ({', '.join(str(s) for s in sorted(documented))})",
                         "type": "invalid_request_error"}
            await Response(json.dumps(body), 400, media_type="application/json")(scope, receive, send)
            return
        example, headers = documented[status]
        content = b"" if example is None or status == 204 else json.dumps(example).encode()
        response = Response(content, status, headers=headers,
                            media_type="application/json" if content else None)
        await response(scope, receive, send)
