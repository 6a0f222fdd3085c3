"""Response validation against openapi.yaml with openapi-core (SCH001), independent of Schemathesis.

A second, differently built validator: a response Schemathesis' generator never provokes (a rebuild
after seeding, a 409 on a reused ref) is still checked against the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from harness.conformance.http import Exchange
from harness.contract import API_BASE_PATH, load_spec


@dataclass
class _Request:
    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters = field(default_factory=RequestParameters)


@dataclass
class _Response:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


@cache
def _openapi() -> Any:
    return OpenAPI.from_dict(load_spec())


def _root_message(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    while cause is not None:
        errors = getattr(cause, "schema_errors", None)
        if errors:
            parts.append("; ".join(str(getattr(e, "message", e)) for e in errors)[:600])
            break
        parts.append(str(cause)[:300])
        cause = cause.__cause__
    return " <- ".join(parts)


def response_problem(exchange: Exchange) -> str | None:
    """None when the response is documented and valid for its request, else what is wrong."""
    url = urlsplit(exchange.url)
    path = url.path
    prefix = path.find(API_BASE_PATH + "/")
    if prefix > 0:  # a base URL with its own path prefix: keep what follows the server's root
        path = path[prefix:]
    request = _Request(
        host_url=f"{url.scheme}://{url.netloc}",
        path=path,
        method=exchange.method.lower(),
        body=exchange.request_body,
        content_type=exchange.request_headers.get("Content-Type", ""),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qsl(url.query, keep_blank_values=True)),
            header=Headers(list(exchange.request_headers.items())),
            cookie=ImmutableMultiDict(),
        ),
    )
    response = _Response(
        status_code=exchange.status,
        content_type=exchange.content_type,
        headers=Headers(list(exchange.response_headers.items())),
        data=exchange.response_body,
    )
    try:
        _openapi().validate_response(request, response)
    except Exception as exc:  # openapi-core raises a family of errors; each one is a contract breach
        return _root_message(exc)
    return None
