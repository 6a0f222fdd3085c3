"""Pytest fixtures that run the reference server for real: uvicorn on 127.0.0.1, a SQLite file per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer

from harness.items.store import ItemStore
from harness.server.app import ServerSettings, create_app
from harness.server.config import Tenancy, load_tenancy
from harness.server.runtime import make_ingest, make_rebuild
from harness.spans.clickhouse import ClickHouseSpanStore
from harness.spans.files import FileSpanSource
from harness.spans.source import SpanSource

TENANCY_TOML = """
[[projects]]
org = "example"
workspace = "example"
project = "example"

[[projects]]
org = "example"
workspace = "other-ws"
project = "side"

[[projects]]
org = "acme"
workspace = "main"
project = "rockets"

[[credentials]]
name = "admin"
token = "admin-token-0123456789"
org = "example"
scopes = ["items:read", "items:write", "items:admin"]

[[credentials]]
name = "writer"
token = "writer-token-0123456789"
org = "example"
scopes = ["items:read", "items:write"]

[[credentials]]
name = "reader"
token = "reader-token-0123456789"
org = "example"
scopes = ["items:read"]

[[credentials]]
name = "ws-admin"
token = "sha256:{ws_hash}"
org = "example"
workspace = "example"
scopes = ["items:read", "items:write", "items:admin"]

[[credentials]]
name = "acme-admin"
token = "acme-token-0123456789"
org = "acme"
scopes = ["items:read", "items:write", "items:admin"]
"""
WS_ADMIN_TOKEN = "ws-admin-token-0123456789"

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
WRITER = {"Authorization": "Bearer writer-token-0123456789"}
READER = {"X-API-Key": "reader-token-0123456789"}
WS_ADMIN = {"Authorization": f"Bearer {WS_ADMIN_TOKEN}"}
ACME = {"Authorization": "Bearer acme-token-0123456789"}
BASE = "/api/v1/org/example/ws/example/projects/example"


def write_tenancy(directory: Path) -> Path:
    import hashlib

    path = directory / "tenancy.toml"
    path.write_text(TENANCY_TOML.replace("{ws_hash}", hashlib.sha256(WS_ADMIN_TOKEN.encode()).hexdigest()))
    return path


@dataclass
class Running:
    """A server under test and what it was built from."""

    url: str
    client: httpx.Client
    store: ItemStore
    tenancy: Tenancy
    db_path: Path

    def items_table(self) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM items ORDER BY id")


@dataclass
class SpanServer(Running):
    """A server whose rebuild reads a chDB store the test can load spans into."""

    spans: ClickHouseSpanStore


def start_server(
    db_path: Path, tenancy: Tenancy, source: SpanSource, **settings: Any
) -> tuple[LiveServer, ItemStore]:
    store = ItemStore(db_path)
    app = create_app(
        ServerSettings(
            tenancy=tenancy,
            store=store,
            services={"rebuild": make_rebuild(store, source), "ingest": make_ingest(source)},
            validate_responses=True,
            **settings,
        )
    )
    return LiveServer(app).start(), store


@pytest.fixture
def tenancy(tmp_path: Path) -> Tenancy:
    return load_tenancy(write_tenancy(tmp_path))


@pytest.fixture
def server(tmp_path: Path, tenancy: Tenancy) -> Iterator[Running]:
    """The reference server with items only (its span source is an empty folder)."""
    spans = tmp_path / "spans"
    spans.mkdir()
    live, store = start_server(tmp_path / "items.db", tenancy, FileSpanSource([spans]), allow_prefer=True)
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield Running(live.url, client, store, tenancy, tmp_path / "items.db")
    live.stop()
    store.close()


@pytest.fixture
def span_server(tmp_path: Path, tenancy: Tenancy, chdb_store: ClickHouseSpanStore) -> Iterator[SpanServer]:
    """The reference server with a real chDB span store (its own database in the shared engine)."""
    live, store = start_server(tmp_path / "items.db", tenancy, chdb_store)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield SpanServer(live.url, client, store, tenancy, tmp_path / "items.db", chdb_store)
    live.stop()
    store.close()
