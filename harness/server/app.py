"""The Connexion application: openapi.yaml routed to `handlers`, wrapped in auth and the error envelope."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connexion import AsyncApp
from connexion.datastructures import MediaTypeDict
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import RelativeResolver
from starlette.exceptions import HTTPException

from harness.contract import API_BASE_PATH, spec_path
from harness.items.store import ItemStore
from harness.server.access import AccessMiddleware, TokenBucket
from harness.server.config import Tenancy
from harness.server.errors import handle_exception
from harness.server.otlp_route import standard_traces_route
from harness.server.prefer import PreferMiddleware
from harness.server.serialize import ResponseJsonifier
from harness.server.validation import VALIDATOR_MAP


@dataclass
class ServerSettings:
    tenancy: Tenancy
    store: ItemStore
    services: dict[str, Any] = field(default_factory=dict)
    """Callables the handlers reach through the context: `rebuild`, `ingest`."""
    validate_responses: bool = False
    allow_prefer: bool = False
    max_body_bytes: int = 1024 * 1024
    max_ingest_bytes: int = 16 * 1024 * 1024
    """OTLP batches are larger than API bodies: the SDK exports up to 512 spans at once."""
    rate_limit_per_second: float = 0.0
    rate_limit_burst: int = 200


class _EnvelopeServerErrors(ServerErrorMiddleware):  # type: ignore[misc]
    """The last line of defence: even an error outside every handler leaves as the envelope."""

    def __init__(self, next_app: Any) -> None:
        super().__init__(next_app, handler=handle_exception)


QUIET_LOGGERS: dict[str, int] = {
    "connexion.decorators.parameter": logging.CRITICAL,
    "connexion.operations": logging.ERROR,
}
"""Connexion logs, per request, text the client chose (unknown query parameter names, unsanitized, at
ERROR) and a warning for every body of an operation with two content types: noise at best, forged
log lines at worst. What a client did wrong is in its 400/422; the server log keeps our own errors."""


def quiet_framework_logs() -> None:
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def create_app(settings: ServerSettings) -> AsyncApp:
    quiet_framework_logs()
    rate_limit = (
        TokenBucket(settings.rate_limit_per_second, settings.rate_limit_burst)
        if settings.rate_limit_per_second > 0
        else None
    )
    access = functools.partial(
        AccessMiddleware,
        tenancy=settings.tenancy,
        context={"store": settings.store, **settings.services},
        max_body_bytes=settings.max_body_bytes,
        max_ingest_bytes=settings.max_ingest_bytes,
        rate_limit=rate_limit,
    )
    middlewares: list[Any] = [
        _EnvelopeServerErrors,
        ExceptionMiddleware,
        SwaggerUIMiddleware,
        RoutingMiddleware,
    ]
    if settings.allow_prefer:
        middlewares.append(PreferMiddleware)
    middlewares += [
        access,
        RequestValidationMiddleware,
        ResponseValidationMiddleware,
        LifespanMiddleware,
        ContextMiddleware,
    ]
    app = AsyncApp(__name__, middlewares=middlewares, jsonifier=ResponseJsonifier())
    validator_map = dict(VALIDATOR_MAP)
    validator_map["body"] = MediaTypeDict(VALIDATOR_MAP["body"])
    app.add_api(
        Path(spec_path()),
        base_path=API_BASE_PATH,
        resolver=RelativeResolver("harness.server.handlers"),
        validator_map=validator_map,
        validate_responses=settings.validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, spec_path="/openapi.json"),
    )
    if "ingest" in settings.services:
        app.add_url_rule("/v1/traces", "otlp_traces",
                         standard_traces_route(settings.tenancy, settings.services["ingest"],
                                               settings.max_ingest_bytes, rate_limit), methods=["POST"])
    for error in (Exception, HTTPException):
        app.add_error_handler(error, handle_exception)
    for status in (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 501, 502, 504):
        app.add_error_handler(status, handle_exception)
    return app
