"""Shared fixtures.

chDB hosts one engine (one data path) per process, so all tests of a process share one path and
each test gets a database of its own inside it. Anything else that needs a chDB store in tests
should build its DSN from `chdb_dsn` (or `chdb_path`), never from a fresh temporary directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from harness.spans.clickhouse import ClickHouseSpanStore, chdb_engine_client, chdb_engine_path


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The process's one chDB data path (the one already open, if something opened an engine first)."""
    opened = chdb_engine_path()
    if opened is not None and opened != ":memory:":
        return Path(opened)
    return (tmp_path_factory.mktemp("chdb") / "engine").resolve()


@pytest.fixture
def chdb_dsn(chdb_path: Path) -> Iterator[str]:
    """A DSN naming a fresh database in the shared engine; the database is dropped afterwards."""
    database = f"t_{uuid.uuid4().hex[:16]}"
    yield f"chdb://{quote(str(chdb_path))}?database={database}"
    chdb_engine_client(str(chdb_path)).command(f"DROP DATABASE IF EXISTS `{database}` SYNC")


@pytest.fixture
def chdb_store(chdb_dsn: str) -> Iterator[ClickHouseSpanStore]:
    """A span store with its schema, alone in its database."""
    store = ClickHouseSpanStore(chdb_dsn, timeout_s=30.0)
    store.ensure_schema()
    yield store
    store.close()


from server_fixtures import server, span_server, tenancy  # noqa: E402, F401  (fixtures for every test module)
