"""A rebuild, end to end: spans from a source -> pure reconcile -> the items store, in one transaction.

Used by the server's `rebuild_items` and by `harness reconcile` (offline, on fixture files), so both
decide exactly the same way. Spans stream in batches: memory follows the batch, not the session.
If the span store fails part way, the transaction rolls back and no row has changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from harness.items.store import ItemStore, new_id
from harness.model import DecodeStats, ItemRow, RefCollision, RowChanges, SpanItem
from harness.reconcile import plan_links, reconcile
from harness.spans.source import SpanQuery, SpanSource

BATCH_SIZE = 5_000


@dataclass(frozen=True)
class RebuildScope:
    """The project a rebuild writes into, and which spans belong to it (D1, D13)."""

    organization_id: str
    project_id: str
    project_keys: frozenset[str]
    org: str | None
    session_id: str | None = None
    run_ids: tuple[str, ...] = ()

    def query(self) -> SpanQuery:
        return SpanQuery(project_keys=self.project_keys, org=self.org, session_id=self.session_id,
                         run_ids=self.run_ids)


@dataclass
class RebuildReport:
    """Everything a rebuild met, for `harness reconcile` and for tests; the endpoint answers `processed`."""

    processed: int = 0
    created: list[str] = field(default_factory=list)
    """Ids of rows created from spans (healed: their direct POST never landed)."""
    refreshed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    preserved: list[str] = field(default_factory=list)
    superseded: int = 0
    ref_collisions: list[RefCollision] = field(default_factory=list)
    unresolved_links: int = 0
    stats: DecodeStats = field(default_factory=DecodeStats)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "created": len(self.created),
            "healed": len(self.created),
            "refreshed": len(self.refreshed),
            "unchanged": len(self.unchanged),
            "preserved": len(self.preserved),
            "superseded": self.superseded,
            "ref_collisions": [
                {"dedupe_key": c.dedupe_key, "ref": c.ref, "held_by": c.held_by} for c in self.ref_collisions
            ],
            "unresolved_links": self.unresolved_links,
            "spans": self.stats.spans,
            "item_outputs": self.stats.item_outputs,
            "offloaded": self.stats.offloaded,
            "malformed": self.stats.malformed,
            "malformed_reasons": self.stats.malformed_reasons,
            "dry_run": self.dry_run,
        }


class _DryRun(Exception):
    """Raised inside the transaction to roll it back after a dry run has been computed."""


def _batches(items: Iterable[SpanItem], size: int) -> Iterator[list[SpanItem]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def rebuild(
    store: ItemStore,
    source: SpanSource,
    scope: RebuildScope,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> RebuildReport:
    report = RebuildReport(dry_run=dry_run)
    seen: set[str] = set()
    linked: list[str] = []
    try:
        with store.write():
            for batch in _batches(source.item_spans(scope.query(), report.stats), batch_size):
                keys = sorted({item.envelope.dedupe_key for item in batch})
                existing = store.rows_by_dedupe_keys(scope.project_id, keys)
                refs = sorted({item.envelope.ref for item in batch if item.envelope.ref})
                changes = reconcile(
                    batch,
                    existing,
                    store.ref_holders(scope.project_id, refs),
                    organization_id=scope.organization_id,
                    project_id=scope.project_id,
                    now=store.clock(),
                    new_id=new_id,
                )
                by_id: dict[str, ItemRow] = {row.id: row for row in existing.values()}
                store.apply_changes(changes, scope.project_id, by_id)
                _count(report, changes, seen, keys)
                linked.extend(row.id for row in changes.creates if row.link_specs)
                linked.extend(r.item_id for r in changes.refreshes if by_id[r.item_id].link_specs
                              or "link_specs" in r.changes)
                linked.extend(i for i in changes.unchanged if i in by_id and by_id[i].link_specs)
            report.unresolved_links = store.sync_reported_links(scope.project_id, list(dict.fromkeys(linked)),
                                                                plan_links)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


def _count(report: RebuildReport, changes: RowChanges, seen: set[str], keys: list[str]) -> None:
    """Add one batch's decisions; `processed` counts each dedupe_key once across batches (D6)."""
    report.created.extend(row.id for row in changes.creates)
    report.refreshed.extend(r.item_id for r in changes.refreshes if r.is_change)
    report.unchanged.extend(changes.unchanged)
    report.preserved.extend(changes.preserved)
    report.superseded += changes.superseded
    report.ref_collisions.extend(changes.ref_collisions)
    new_keys = [k for k in keys if k not in seen]
    seen.update(new_keys)
    report.processed += len(new_keys)

