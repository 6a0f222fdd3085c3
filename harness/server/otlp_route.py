"""`POST /v1/traces`: the OTLP/HTTP default path, outside the API's base path (D13: org of the credential)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from harness.server.access import TokenBucket, authenticate, check_rate_limit
from harness.server.config import Tenancy
from harness.server.errors import APIError, envelope_response


def standard_traces_route(
    tenancy: Tenancy, ingest: Callable[..., Any], max_body_bytes: int, rate_limit: TokenBucket | None = None
) -> Callable[[Request], Awaitable[Response]]:
    async def traces(request: Request) -> Response:
        try:
            credential = authenticate(tenancy, request.headers)
            check_rate_limit(rate_limit, credential)
            if "items:write" not in credential.scopes:
                raise APIError(403, "This credential lacks the items:write scope")
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body_bytes:
                    raise APIError(400, f"Request body exceeds the limit of {max_body_bytes} bytes")
                chunks.append(chunk)
            answer, media = await run_in_threadpool(ingest, credential.org, b"".join(chunks),
                                             request.headers.get("content-type"),
                                             request.headers.get("content-encoding"))
        except APIError as error:
            return envelope_response(error)
        return Response(answer, media_type=media)

    return traces
