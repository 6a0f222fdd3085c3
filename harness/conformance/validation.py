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

import harness.provenance as provenance
from harness.conformance.catalogue import CONTRACT
from harness.conformance.http import Exchange
from harness.contract import API_BASE_PATH, load_spec
from harness.provenance import Provenance


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


@dataclass(frozen=True)
class ResponseProblem:
    message: str
    provenance: Provenance
    """The authority of the contract element the response breaks."""


def _schema_errors(exc: BaseException) -> list[Any]:
    cause: BaseException | None = exc
    while cause is not None:
        errors = getattr(cause, "schema_errors", None)
        if errors:
            return list(errors)
        cause = cause.__cause__
    return []


def problem_provenance(exc: BaseException, operation_id: str, status: int) -> Provenance:
    """The authority of what a response breaks: the failing schema keyword, else its status's declaration."""
    spec = load_spec()
    for error in _schema_errors(exc):
        schema = getattr(error, "schema", None)
        found = provenance.of_node(schema, str(getattr(error, "validator", ""))) if isinstance(schema, dict) else None
        if found is not None:
            return found
    return provenance.of_status(spec, operation_id, status) or CONTRACT


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


def _binary_body(exchange: Exchange) -> bool:
    """Whether the operation declares this status and content type as a binary string."""
    media = exchange.content_type.split(";", 1)[0].strip().lower()
    try:
        schema = provenance.response_schema(load_spec(), exchange.operation, exchange.status, media) or {}
    except KeyError:
        return False
    return schema.get("type") == "string" and schema.get("format") == "binary"


def response_problem(exchange: Exchange) -> ResponseProblem | None:
    """None when the response is documented and valid for its request, else what is wrong, on what authority."""
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
        if not exchange.response_body and _binary_body(exchange):
            return None  # zero bytes is a valid binary body (an empty protobuf message); openapi-core calls it missing
        return ResponseProblem(_root_message(exc), problem_provenance(exc, exchange.operation, exchange.status))
    return None
