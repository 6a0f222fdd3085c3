"""Items, links, events and spans in one SQLite file, through plain sqlite3.

One connection, guarded by a lock; every write runs in one transaction, so a failed request leaves
nothing half-written.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .validate import timestamp

Item = dict[str, Any]
ITEM_COLUMNS = ("id", "organization_id", "project_id", "item_type", "data", "title", "ref", "dedupe_key",
                "schema_ref", "session_id", "trace_id", "span_id", "capability", "capability_version", "source",
                "disposition", "created_at", "created_by", "updated_at")
JSON_COLUMNS = ("data", "disposition", "payload", "attributes")
SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, organization_id TEXT NOT NULL,
    project_id TEXT NOT NULL, item_type TEXT NOT NULL, data TEXT NOT NULL, title TEXT, ref TEXT, dedupe_key TEXT,
    schema_ref TEXT, session_id TEXT, trace_id TEXT, span_id TEXT, capability TEXT, capability_version TEXT,
    source TEXT NOT NULL, disposition TEXT, created_at TEXT NOT NULL, created_by TEXT, updated_at TEXT NOT NULL,
    UNIQUE (project_id, dedupe_key), UNIQUE (project_id, ref));
CREATE TABLE IF NOT EXISTS links (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL,
    source_item_id TEXT NOT NULL, target_item_id TEXT NOT NULL, relationship TEXT NOT NULL, created_at TEXT NOT NULL,
    reported INTEGER NOT NULL, UNIQUE (source_item_id, target_item_id, relationship));
CREATE TABLE IF NOT EXISTS events (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, item_id TEXT NOT NULL, seq INTEGER NOT NULL,
    event_type TEXT NOT NULL, actor_type TEXT NOT NULL, actor_id TEXT, payload TEXT NOT NULL,
    created_at TEXT NOT NULL, UNIQUE (item_id, seq));
CREATE TABLE IF NOT EXISTS spans (
    org TEXT NOT NULL, trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT, name TEXT NOT NULL,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, project TEXT, session_id TEXT, run_id TEXT,
    attributes TEXT NOT NULL, PRIMARY KEY (org, trace_id, span_id));
"""


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = {k: row[k] for k in row.keys() if k != "n"}  # noqa: SIM118 (sqlite3.Row is not a mapping)
    for key in JSON_COLUMNS:
        if out.get(key) is not None:
            out[key] = json.loads(out[key])
    return out


def _db_value(key: str, value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if key in JSON_COLUMNS and value is not None else value


class Store:
    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        self.lock = threading.RLock()
        self.last = datetime.now(UTC)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def now(self) -> str:
        """Strictly increasing, so created_at orders items as they were written."""
        with self.lock:
            self.last = max(datetime.now(UTC), self.last + timedelta(microseconds=1))
            return timestamp(self.last)

    def _all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [_row(r) for r in self.db.execute(sql, args).fetchall()]

    def _insert(self, table: str, values: dict[str, Any], verb: str = "INSERT") -> None:
        keys = list(values)
        self.db.execute(f"{verb} INTO {table} ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                        [_db_value(k, values[k]) for k in keys])

    # -- items
    def items(self, project_id: str) -> list[Item]:
        """Every item of a project, oldest first (filtering is done by the caller, in Python)."""
        return self._all("SELECT * FROM items WHERE project_id = ? ORDER BY n", project_id)

    def item(self, project_id: str, item_id: str) -> Item | None:
        found = self._all("SELECT * FROM items WHERE project_id = ? AND id = ?", project_id, item_id)
        return found[0] if found else None

    def item_by(self, project_id: str, column: str, value: str) -> Item | None:
        assert column in ("dedupe_key", "ref")
        found = self._all(f"SELECT * FROM items WHERE project_id = ? AND {column} = ?", project_id, value)
        return found[0] if found else None

    def insert_item(self, item: Item) -> None:
        self._insert("items", {k: item[k] for k in ITEM_COLUMNS})

    def update_item(self, item_id: str, changes: dict[str, Any]) -> None:
        keys = list(changes)
        self.db.execute(f"UPDATE items SET {', '.join(f'{k} = ?' for k in keys)} WHERE id = ?",
                        [*(_db_value(k, changes[k]) for k in keys), item_id])

    # -- events
    def add_event(self, item_id: str, event_type: str, actor_type: str, actor_id: str | None,
                  payload: dict[str, Any]) -> None:
        seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE item_id = ?", (item_id,)).fetchone()
        self._insert("events", {"id": str(uuid.uuid4()), "item_id": item_id, "seq": seq[0], "event_type": event_type,
                                "actor_type": actor_type, "actor_id": actor_id, "payload": payload,
                                "created_at": self.now()})

    def events(self, item_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM events WHERE item_id = ? ORDER BY seq", item_id)

    # -- links
    def links(self, item_id: str) -> list[dict[str, Any]]:
        """The links touching an item, both directions (`reported` is internal and left out)."""
        return self._all("SELECT n, id, project_id, source_item_id, target_item_id, relationship, created_at FROM "
                         "links WHERE source_item_id = ? OR target_item_id = ? ORDER BY n", item_id, item_id)

    def reported_links(self, source_item_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM links WHERE source_item_id = ? AND reported = 1 ORDER BY n", source_item_id)

    def find_link(self, source: str, target: str, relationship: str) -> dict[str, Any] | None:
        found = self._all("SELECT n, id, project_id, source_item_id, target_item_id, relationship, created_at FROM "
                          "links WHERE source_item_id = ? AND target_item_id = ? AND relationship = ?",
                          source, target, relationship)
        return found[0] if found else None

    def insert_link(self, link: dict[str, Any]) -> None:
        self._insert("links", link)

    def delete_link(self, link_id: str) -> None:
        self.db.execute("DELETE FROM links WHERE id = ?", (link_id,))

    # -- spans
    def add_spans(self, rows: list[dict[str, Any]]) -> None:
        """A span sent again (an exporter's retry) replaces itself."""
        with self.transaction():
            for row in rows:
                self._insert("spans", row, "INSERT OR REPLACE")

    def spans(self, org: str, session_id: str | None) -> list[dict[str, Any]]:
        """The org's spans that carry a project, in time order; session ids compare case-insensitively."""
        return self._all("SELECT * FROM spans WHERE org = ? AND project IS NOT NULL AND (? IS NULL OR "
                         "lower(session_id) = ?) ORDER BY start_ns, trace_id, span_id", org, session_id, session_id)
