"""Conversion between `ItemRow` and its SQLite columns, and the columns derived from an item's data."""

from __future__ import annotations

import json
from typing import Any

from harness.model import SEVERITIES, Disposition, ItemRow, JSONObject, LinkSpec

ROW_COLUMNS: tuple[str, ...] = (
    "id",
    "organization_id",
    "project_id",
    "item_type",
    "data",
    "title",
    "ref",
    "dedupe_key",
    "schema_ref",
    "session_id",
    "trace_id",
    "span_id",
    "capability",
    "capability_version",
    "source",
    "has_disposition",
    "disposition_status",
    "disposition_notes",
    "disposition_updated_at",
    "disposition_updated_by",
    "created_at",
    "created_by",
    "updated_at",
    "span_order",
    "link_specs",
    "severity",
    "category",
    "search_text",
)
READ_COLUMNS_SQL = ", ".join(c for c in ROW_COLUMNS if c != "search_text")
"""What reading an item selects: every column `row_from_columns` reads. Not `search_text`, a lowercased
copy of the title and data that only the `q` filter reads (as large as the data itself)."""


def dump_json(value: Any) -> str:
    """Compact, key-sorted JSON: equal values always give equal text."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def link_specs_to_json(specs: tuple[LinkSpec, ...]) -> str:
    return dump_json(
        [
            {k: v for k, v in (("relationship", s.relationship), ("target_ref", s.target_ref),
                               ("target_item_id", s.target_item_id)) if v is not None}
            for s in specs
        ]
    )


def link_specs_from_json(text: str | None) -> tuple[LinkSpec, ...]:
    if not text:
        return ()
    return tuple(
        LinkSpec(
            relationship=str(entry["relationship"]),
            target_ref=entry.get("target_ref"),
            target_item_id=entry.get("target_item_id"),
        )
        for entry in json.loads(text)
    )


def _derived(title: str | None, data: JSONObject, data_json: str) -> tuple[str | None, str | None, str]:
    """(severity, category, search_text), given `dump_json(data)` already made."""
    severity = data.get("severity")
    category = data.get("category")
    return (
        severity.lower() if isinstance(severity, str) and severity.lower() in SEVERITIES else None,
        category if isinstance(category, str) else None,
        f"{title or ''}\n{data_json}".lower(),
    )


def row_to_columns(row: ItemRow) -> dict[str, Any]:
    """The row as column name -> stored value."""
    return dict(zip(ROW_COLUMNS, row_to_values(row), strict=True))


def row_to_values(row: ItemRow) -> tuple[Any, ...]:
    """The stored values of the row in ROW_COLUMNS order (what a prepared INSERT binds)."""
    d = row.disposition
    data_json = dump_json(row.data)
    return (
        row.id, row.organization_id, row.project_id, row.item_type, data_json, row.title, row.ref, row.dedupe_key,
        row.schema_ref, row.session_id, row.trace_id, row.span_id, row.capability, row.capability_version,
        row.source, 1 if d is not None else 0, d.status if d else None, d.notes if d else None,
        d.updated_at if d else None, d.updated_by if d else None, row.created_at, row.created_by, row.updated_at,
        row.span_order, link_specs_to_json(row.link_specs) if row.link_specs else "[]",
        *_derived(row.title, row.data, data_json),
    )


def has_link_specs(text: str | None) -> bool:
    """Whether a stored `link_specs` column holds at least one spec (without decoding it)."""
    return bool(text) and text != "[]"


def row_from_columns(c: dict[str, Any]) -> ItemRow:
    disposition = (
        Disposition(
            status=c["disposition_status"],
            notes=c["disposition_notes"],
            updated_at=c["disposition_updated_at"],
            updated_by=c["disposition_updated_by"],
        )
        if c["has_disposition"]
        else None
    )
    return ItemRow(
        id=c["id"],
        organization_id=c["organization_id"],
        project_id=c["project_id"],
        item_type=c["item_type"],
        data=json.loads(c["data"]),
        title=c["title"],
        ref=c["ref"],
        dedupe_key=c["dedupe_key"],
        schema_ref=c["schema_ref"],
        session_id=c["session_id"],
        trace_id=c["trace_id"],
        span_id=c["span_id"],
        capability=c["capability"],
        capability_version=c["capability_version"],
        source=c["source"],
        disposition=disposition,
        created_at=c["created_at"],
        created_by=c["created_by"],
        updated_at=c["updated_at"],
        span_order=c["span_order"],
        link_specs=link_specs_from_json(c["link_specs"]),
    )
