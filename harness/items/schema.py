"""The items database layout and its migrations, applied at every start.

Migrations are numbered and recorded in `PRAGMA user_version`, so a database written by an older
harness is brought forward in place and data survives upgrades as well as restarts.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from harness.model import SPAN_OWNED_FIELDS

SEVERITY_RANK_SQL = (
    "CASE severity WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3 "
    "WHEN 'low' THEN 2 WHEN 'info' THEN 1 ELSE 0 END"
)
EFFECTIVE_STATUS_SQL = (
    "COALESCE(disposition_status, CASE WHEN item_type = 'finding' THEN 'needs_review' END)"
)
"""D11, as SQL over the items table, so list filters and the response agree by construction."""


def _v1(db: sqlite_utils.Database) -> None:
    db["items"].create(  # type: ignore[union-attr]
        {
            "id": str,
            "organization_id": str,
            "project_id": str,
            "item_type": str,
            "data": str,
            "title": str,
            "ref": str,
            "dedupe_key": str,
            "schema_ref": str,
            "session_id": str,
            "trace_id": str,
            "span_id": str,
            "capability": str,
            "capability_version": str,
            "source": str,
            "has_disposition": int,
            "disposition_status": str,
            "disposition_notes": str,
            "disposition_updated_at": str,
            "disposition_updated_by": str,
            "created_at": str,
            "created_by": str,
            "updated_at": str,
            "span_order": str,
            "link_specs": str,
            "severity": str,
            "category": str,
            "search_text": str,
        },
        pk="id",
        not_null={"organization_id", "project_id", "item_type", "data", "source", "created_at", "updated_at"},
        defaults={"has_disposition": 0, "link_specs": "[]"},
    )
    items = db["items"]
    items.create_index(["project_id", "dedupe_key"], unique=True)  # type: ignore[union-attr]
    items.create_index(["project_id", "ref"], unique=True)  # type: ignore[union-attr]
    for columns in (
        ["project_id", "created_at"],
        ["project_id", "item_type"],
        ["project_id", "session_id"],
        ["project_id", "severity"],
        ["project_id", "category"],
        ["project_id", "capability"],
        ["project_id", "source"],
        ["project_id", "disposition_status"],
    ):
        items.create_index(columns)  # type: ignore[union-attr]
    db["links"].create(  # type: ignore[union-attr]
        {
            "id": str,
            "project_id": str,
            "source_item_id": str,
            "target_item_id": str,
            "relationship": str,
            "created_at": str,
            "origin": str,
        },
        pk="id",
        not_null={"project_id", "source_item_id", "target_item_id", "relationship", "created_at", "origin"},
    )
    links = db["links"]
    links.create_index(["source_item_id", "target_item_id", "relationship"], unique=True)  # type: ignore[union-attr]
    links.create_index(["target_item_id"])  # type: ignore[union-attr]
    db["events"].create(  # type: ignore[union-attr]
        {
            "id": str,
            "project_id": str,
            "item_id": str,
            "seq": int,
            "event_type": str,
            "actor_type": str,
            "actor_id": str,
            "payload": str,
            "created_at": str,
        },
        pk="id",
        not_null={"project_id", "item_id", "seq", "event_type", "actor_type", "payload", "created_at"},
    )
    db["events"].create_index(["item_id", "seq"], unique=True)  # type: ignore[union-attr]


def _v2(db: sqlite_utils.Database) -> None:
    """Rebuild's memory of what it last wrote, so an unchanged rebuild skips what did not change.

    `item_digests`: per item, the digest of the span report the row fully reflects (every span-owned
    field, links and span order as that report dictates, its ref granted). Written only by rebuild;
    any other write of a span-owned field deletes the entry, so a missing entry means "compare in full".
    `span_digests`: per decoded unit of span input (a span file line, a ClickHouse span), content-addressed,
    what decoding it yielded in brief (dedupe keys, item digests, span orders): an unchanged input is not
    decoded again. Both are caches: emptying them changes no result, only the time a rebuild takes.
    """
    db.execute("CREATE TABLE item_digests (item_id TEXT PRIMARY KEY, digest BLOB NOT NULL) WITHOUT ROWID")
    # A rowid table: its rows are appended, only the small key index takes random inserts.
    db.execute("CREATE TABLE span_digests (key BLOB PRIMARY KEY, decoded TEXT NOT NULL)")
    # Whoever changes what a digest vouches for (the store, a migration, a hand-written UPDATE) voids it.
    vouched = ("id", *SPAN_OWNED_FIELDS, "span_order", "link_specs")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in vouched)
    db.execute(
        f"CREATE TRIGGER item_digests_void AFTER UPDATE OF {', '.join(vouched)} ON items WHEN {changed} "
        "BEGIN DELETE FROM item_digests WHERE item_id = OLD.id; END"
    )
    db.execute(
        "CREATE TRIGGER item_digests_gone AFTER DELETE ON items "
        "BEGIN DELETE FROM item_digests WHERE item_id = OLD.id; END"
    )


def _v3(db: sqlite_utils.Database) -> None:
    """list_items' default order is `created_at, id`: index both, so a page is read off the index instead
    of sorting every row of the project (a rebuild creates its rows with one `created_at`). The new index
    replaces (project_id, created_at), its prefix, so a write maintains as many indexes as before."""
    db.execute("CREATE INDEX idx_items_project_id_created_at_id ON items (project_id, created_at, id)")
    db.execute("DROP INDEX IF EXISTS idx_items_project_id_created_at")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_v1, _v2, _v3)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every migration the file has not seen yet, each in its own transaction; returns the version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    for number, step in enumerate(MIGRATIONS, start=1):
        if number <= version:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        version = number
    return version
