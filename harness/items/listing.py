"""list_items and item_summary as SQL: every filter bound as a parameter, every filter backed by an index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.items import rows as rowcodec
from harness.items.schema import EFFECTIVE_STATUS_SQL, SEVERITY_RANK_SQL
from harness.items.store import ItemStore
from harness.model import SEVERITIES, ItemRow

STATUS_RANK_SQL = (
    f"CASE {EFFECTIVE_STATUS_SQL} WHEN 'needs_review' THEN 6 WHEN 'open' THEN 5 WHEN 'triaged' THEN 4 "
    "WHEN 'verified' THEN 3 WHEN 'resolved' THEN 2 WHEN 'dismissed' THEN 1 ELSE 0 END"
)
SEVERITY_RANK = {name: 5 - i for i, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class ItemFilter:
    item_type: str | None = None
    severity: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    min_severity: str | None = None
    category: str | None = None
    capability: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    session_id: str | None = None
    ref: str | None = None
    q: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    sort: str = "created_at"
    order: str = "desc"
    page: int = 1
    limit: int = 50


def _in(column: str, values: tuple[str, ...], where: list[str], params: list[Any]) -> None:
    if values:
        where.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)


def _where(project_id: str, f: ItemFilter) -> tuple[str, list[Any]]:
    where = ["project_id = ?"]
    params: list[Any] = [project_id]
    for column, value in (
        ("item_type", f.item_type),
        ("category", f.category),
        ("session_id", f.session_id),
        ("ref", f.ref),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    _in("severity", f.severity, where, params)
    _in(EFFECTIVE_STATUS_SQL, f.status, where, params)
    _in("capability", f.capability, where, params)
    _in("source", f.source, where, params)
    if f.min_severity is not None:
        where.append(f"{SEVERITY_RANK_SQL} >= ?")
        params.append(SEVERITY_RANK[f.min_severity])
    if f.q:
        # instr, not LIKE: LIKE stops at a NUL and gives meaning to % and _; instr matches the text as is.
        where.append("instr(search_text, ?) > 0")
        params.append(f.q.lower())
    if f.created_after is not None:
        where.append("created_at > ?")
        params.append(f.created_after)
    if f.created_before is not None:
        where.append("created_at < ?")
        params.append(f.created_before)
    return " AND ".join(where), params


def _order_by(f: ItemFilter) -> tuple[str, list[Any]]:
    direction = "ASC" if f.order == "asc" else "DESC"
    if f.sort == "severity":
        return f"{SEVERITY_RANK_SQL} {direction}, created_at {direction}, id {direction}", []
    if f.sort == "status":
        return f"{STATUS_RANK_SQL} {direction}, created_at {direction}, id {direction}", []
    if f.sort == "relevance" and f.q:
        # A match in the title ranks above a match only in data.
        return (
            f"(CASE WHEN instr(lower(coalesce(title, '')), ?) > 0 THEN 1 ELSE 0 END) {direction}, "
            f"created_at DESC, id DESC",
            [f.q.lower()],
        )
    return f"created_at {direction}, id {direction}", []


def list_items(store: ItemStore, project_id: str, f: ItemFilter) -> tuple[list[ItemRow], int]:
    where, params = _where(project_id, f)
    total = int(store.query(f"SELECT COUNT(*) AS n FROM items WHERE {where}", params)[0]["n"])
    order, order_params = _order_by(f)
    found = store.query(
        f"SELECT {rowcodec.READ_COLUMNS_SQL} FROM items WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, *order_params, f.limit, (f.page - 1) * f.limit],
    )
    return [rowcodec.row_from_columns(c) for c in found], total


def summary(store: ItemStore, project_id: str, item_type: str | None) -> dict[str, Any]:
    where, params = _where(project_id, ItemFilter(item_type=item_type))
    by_severity = {name: 0 for name in SEVERITIES}
    by_status: dict[str, int] = {}
    by_type: dict[str, int] = {}
    total = 0
    for c in store.query(
        f"SELECT severity, {EFFECTIVE_STATUS_SQL} AS status, item_type, COUNT(*) AS n FROM items "
        f"WHERE {where} GROUP BY 1, 2, 3",
        params,
    ):
        n = int(c["n"])
        total += n
        if c["severity"] is not None:
            by_severity[c["severity"]] += n
        if c["status"] is not None:
            by_status[c["status"]] = by_status.get(c["status"], 0) + n
        by_type[c["item_type"]] = by_type.get(c["item_type"], 0) + n
    worst = next((name for name in SEVERITIES if by_severity[name] > 0), None)
    return {
        "total": total,
        "by_severity": by_severity,
        "by_status": by_status,
        "by_type": by_type,
        "worst_severity": worst,
    }
