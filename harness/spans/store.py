"""Open the span store a DSN names: chDB (the default, beside the items database), ClickHouse, or files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.spans.clickhouse import ClickHouseSpanStore, dsn_for_data_dir
from harness.spans.files import FileSpanSource, iter_spans
from harness.spans.source import SpanSource


@dataclass(frozen=True)
class SpanStoreConfig:
    dsn: str | None
    """chdb:///path, http(s)://user:pass@host:8123/db, or a file/folder path; None: chDB in data_dir."""
    data_dir: Path
    timeout_s: float = 60.0
    seed_fixtures: Path | None = None
    """Folder loaded into a new, empty default store, so the documentation's example works at once (D12)."""


def is_clickhouse_dsn(dsn: str) -> bool:
    return dsn.startswith(("chdb:", "http://", "https://"))


def open_span_store(config: SpanStoreConfig) -> SpanSource:
    if config.dsn is not None and not is_clickhouse_dsn(config.dsn):
        return FileSpanSource([Path(config.dsn)])
    dsn = config.dsn or dsn_for_data_dir(config.data_dir)
    store = ClickHouseSpanStore(dsn, timeout_s=config.timeout_s)
    store.ensure_schema()
    if config.seed_fixtures is not None and config.seed_fixtures.is_dir() and store.count_spans() == 0:
        store.insert_spans(iter_spans([config.seed_fixtures]))
    return store
