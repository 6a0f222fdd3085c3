"""Wiring for `harness serve`: options -> tenancy, item store, span store, and the services handlers call.

The options travel to uvicorn's worker processes through one environment variable, so every worker
builds the same application.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from connexion import AsyncApp

from harness.items.store import Actor, ItemStore
from harness.rebuild import RebuildScope, rebuild
from harness.server.app import ServerSettings, create_app
from harness.server.config import Project, development_tenancy, load_tenancy
from harness.server.errors import BUSY_RETRY_AFTER_S, APIError, is_database_busy
from harness.spans.clickhouse import ClickHouseSpanStore
from harness.spans.errors import InvalidSpanPayload, SpanStoreTimeout, SpanStoreUnavailable
from harness.spans.otlp import decode_ingest_payload, encode_export_response
from harness.spans.source import SpanSource
from harness.spans.store import SpanStoreConfig, open_span_store

ENV_OPTIONS = "HARNESS_SERVE_OPTIONS"
FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"
logger = logging.getLogger("harness.server")


@dataclass(frozen=True)
class RuntimeOptions:
    db_path: Path
    config_path: Path | None = None
    spans_dsn: str | None = None
    allow_prefer: bool = False
    validate_responses: bool = False
    rate_limit: float = 0.0
    rate_limit_burst: int = 200
    rebuild_timeout: float = 60.0
    max_body_bytes: int = 1024 * 1024

    def to_json(self) -> str:
        raw = asdict(self)
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in raw.items()})

    @classmethod
    def from_json(cls, text: str) -> RuntimeOptions:
        raw: dict[str, Any] = json.loads(text)
        raw["db_path"] = Path(raw["db_path"])
        raw["config_path"] = Path(raw["config_path"]) if raw.get("config_path") else None
        return cls(**raw)


def export_options(options: RuntimeOptions) -> None:
    os.environ[ENV_OPTIONS] = options.to_json()


def _scope_of(project: Project, org: str | None, session_id: str | None, run_ids: tuple[str, ...]) -> RebuildScope:
    return RebuildScope(
        organization_id=project.organization_id,
        project_id=project.id,
        project_keys=project.keys,
        org=org,
        session_id=session_id,
        run_ids=run_ids,
    )


def make_rebuild(store: ItemStore, source: SpanSource) -> Callable[..., int]:
    def run(project: Project, session_id: str | None, run_ids: tuple[str, ...], actor: Actor) -> int:
        try:
            return rebuild(store, source, _scope_of(project, project.org, session_id, run_ids)).processed
        except SpanStoreTimeout as exc:
            raise APIError(504, f"The span store did not answer in time: {exc}") from exc
        except SpanStoreUnavailable as exc:
            raise APIError(502, f"The span store is unreachable or failing: {exc}") from exc
        except sqlite3.OperationalError as exc:
            if is_database_busy(exc):  # another write held the lock for the whole busy timeout
                raise APIError(409, "Another write to this project is in progress; retry",
                               type_="conflict_error",
                               headers={"Retry-After": str(BUSY_RETRY_AFTER_S)}) from exc
            raise

    return run


def make_ingest(source: Any) -> Callable[..., tuple[bytes, str]]:
    """The OTLP ingest service: stores what it can and answers OTLP's ExportTraceServiceResponse.

    A single span that cannot be kept (a bad id) is left out and counted in `rejectedSpans` (D19), so
    the exporter does not drop the good spans of its batch; a body that is not a request is a 400.
    The answer is (body, media type), in the encoding of the request as OTLP/HTTP asks.
    """

    def ingest(org: str, body: bytes, content_type: str | None, content_encoding: str | None) -> tuple[bytes, str]:
        rejected: list[str] = []
        try:
            spans = decode_ingest_payload(body, content_type, content_encoding, rejected=rejected)
        except InvalidSpanPayload as exc:
            raise APIError(400, str(exc)) from exc
        if not hasattr(source, "insert_spans"):
            raise APIError(400, "This server reads spans from files; OTLP ingest needs a ClickHouse or chDB "
                                "span store (harness serve --spans)")
        try:
            source.insert_spans(spans, org=org)
        except SpanStoreTimeout as exc:
            raise APIError(504, f"The span store did not accept the spans in time: {exc}") from exc
        except SpanStoreUnavailable as exc:
            raise APIError(502, f"The span store is unreachable or failing: {exc}") from exc
        return encode_export_response(rejected, content_type)

    return ingest


def open_spans(options: RuntimeOptions) -> SpanSource:
    """The span store of `options`; a ClickHouse server that is down at start does not stop the server.

    Rebuild and ingest answer 502 until it is back (the table is expected to exist by then, as a
    collector's does). chDB and span files have no such excuse: their errors stop the start.
    """
    config = SpanStoreConfig(
        dsn=options.spans_dsn, data_dir=options.db_path.parent, timeout_s=options.rebuild_timeout,
        seed_fixtures=FIXTURES_DIR if options.spans_dsn is None else None,
    )
    try:
        return open_span_store(config)
    except (SpanStoreUnavailable, SpanStoreTimeout) as exc:
        if not (options.spans_dsn or "").startswith(("http://", "https://")):
            raise
        logger.warning("span store unavailable at start, serving anyway (rebuild and ingest answer 502 "
                       "until it is back): %s", exc)
        return ClickHouseSpanStore(options.spans_dsn or "", timeout_s=options.rebuild_timeout)


def build_app(options: RuntimeOptions) -> AsyncApp:
    tenancy = load_tenancy(options.config_path) if options.config_path else development_tenancy()
    store = ItemStore(options.db_path)
    source = open_spans(options)
    ingest = make_ingest(source)
    settings = ServerSettings(
        tenancy=tenancy,
        store=store,
        services={"rebuild": make_rebuild(store, source), "ingest": ingest},
        validate_responses=options.validate_responses,
        allow_prefer=options.allow_prefer,
        max_body_bytes=options.max_body_bytes,
        rate_limit_per_second=options.rate_limit,
        rate_limit_burst=options.rate_limit_burst,
    )
    return create_app(settings)


def app_from_environment() -> AsyncApp:
    """uvicorn's factory: each worker reads the options `harness serve` exported."""
    return build_app(RuntimeOptions.from_json(os.environ[ENV_OPTIONS]))
