"""The items database layout and its migrations, applied at every start.

Migrations are numbered and recorded in `PRAGMA user_version`, so a database written by an older
harness is brought forward in place and data survives upgrades as well as restarts.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

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


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_v1,)


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
