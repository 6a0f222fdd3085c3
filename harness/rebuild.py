"""A rebuild, end to end: spans from a source -> pure reconcile -> the items store, in one transaction.

Used by the server's `rebuild_items` and by `harness reconcile` (offline, on fixture files), so both
decide exactly the same way. Spans stream in batches: memory follows the batch, not the session.
If the span store fails part way, the transaction rolls back and no row has changed.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson

from harness.items.store import ItemStore, RowState, SpillSet, new_id
from harness.model import DecodeStats, ItemRow, RefCollision, RowChanges, SpanItem, SpanOrder
from harness.reconcile import latest_reports, plan_links, reconcile, reflected_digests, report_digest
from harness.spans.source import (
    SpanQuery,
    SpanSource,
    SpanUnit,
    add_stats,
    selector_span,
    selector_values,
)

BATCH_SIZE = 5_000
REBUILD_CACHE_MIB = 32
"""SQLite page cache of the connection while it rebuilds (the default is 2 MiB): a rebuild touches
every index of the items table at random places, and a large one ran 10-15 % faster with this."""
MEMO_MAX_ENTRIES = 2_000_000
"""About how many units of span input the span memo remembers (a span-file line, a ClickHouse span):
beyond it the oldest entries are forgotten at the end of each rebuild, so the memo cannot grow without
bound as spans come and go. Some 100-400 MB of the items database at the bound."""
MEMO_LOOKUP_UNITS = 64
"""Units looked up in the memo at once (a span-file line holds up to 64 spans, some 300 KiB)."""
KEPT_IDS = 1_000
"""How many ids of each outcome a `RebuildReport` keeps (all are counted): a report of a million-item
rebuild must not hold a million ids."""


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


REBUILD_GC_THRESHOLD = (50_000, 20, 100)
"""The cyclic garbage collector's thresholds while a rebuild runs (the default is (700, 10, 10)): a
rebuild allocates millions of short-lived containers and makes no reference cycles, and with the
defaults the collector took 15-20 % of a first rebuild. Cycles are still collected, later."""
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """`REBUILD_GC_THRESHOLD` while at least one rebuild of the process runs; the previous thresholds after."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*REBUILD_GC_THRESHOLD)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)


class IdTally:
    """The ids of one outcome of a rebuild: every one counted (`len`), the first `KEPT_IDS` kept."""

    def __init__(self, keep: int = KEPT_IDS) -> None:
        self.count = 0
        self.ids: list[str] = []
        self._keep = keep

    def extend(self, ids: Iterable[str]) -> None:
        for item_id in ids:
            self.count += 1
            if len(self.ids) < self._keep:
                self.ids.append(item_id)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.ids

    def __repr__(self) -> str:
        return f"IdTally(count={self.count}, kept={len(self.ids)})"


@dataclass
class RebuildReport:
    """Everything a rebuild met, for `harness reconcile` and for tests; the endpoint answers `processed`."""

    processed: int = 0
    created: IdTally = field(default_factory=IdTally)
    """Rows created from spans (healed: their direct POST never landed)."""
    refreshed: IdTally = field(default_factory=IdTally)
    unchanged: IdTally = field(default_factory=IdTally)
    preserved: IdTally = field(default_factory=IdTally)
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


@dataclass(frozen=True, slots=True)
class _Report:
    """One item report of the stream: in full, or (a memo hit) known by its key, order and digest alone."""

    dedupe_key: str
    order: SpanOrder
    digest: bytes
    item: SpanItem | None
    unit: SpanUnit | None
    """The unit to decode again, should the full report of a memo hit be needed after all."""


@dataclass
class _Batch:
    reports: list[_Report] = field(default_factory=list)
    memo: list[tuple[bytes, str]] = field(default_factory=list)
    """Memo entries of the units read for this batch: written in its transaction, with its rows."""
    input_read: int = 0
    """The `size` of the units read for this batch (see `SpanUnit.size`), for a progress bar."""


def _read_batches(
    store: ItemStore, source: SpanSource, query: SpanQuery, stats: DecodeStats, size: int
) -> Iterator[_Batch]:
    """The reports of the selected spans in stream order, `size` per batch.

    A source that reads in units (`UnitSource`) has each unit looked up in the memo first: a known
    unit is not decoded, its reports come from the memo (and its stats too, so they equal a decode's).
    """
    item_units: Callable[[SpanQuery, DecodeStats], Iterator[SpanUnit]] | None = getattr(source, "item_units", None)
    batch = _Batch()
    if item_units is None:
        for item in source.item_spans(query, stats):
            batch.reports.append(_Report(item.envelope.dedupe_key, item.order, report_digest(item), item, None))
            if len(batch.reports) >= size:
                yield batch
                batch = _Batch()
    else:
        units = iter(item_units(query, stats))
        while chunk := list(islice(units, MEMO_LOOKUP_UNITS)):
            known = store.memo_get([unit.key for unit in chunk if unit.key is not None])
            for unit in chunk:
                batch.input_read += unit.size
                entry = known.get(unit.key) if unit.key is not None else None
                reports = _memo_reports(unit, entry, query, stats) if entry is not None else \
                    _decoded_reports(unit, query, stats, batch.memo)
                for report in reports:
                    batch.reports.append(report)
                    if len(batch.reports) >= size:
                        yield batch
                        batch = _Batch()
    if batch.reports or batch.memo:
        yield batch


def _decoded_reports(
    unit: SpanUnit, query: SpanQuery, stats: DecodeStats, memo: list[tuple[bytes, str]]
) -> list[_Report]:
    """Decode a unit the memo does not know; note what it decoded to, in brief, for the memo."""
    decoded = unit.decode()
    add_stats(stats, decoded.stats)
    reports: list[_Report] = []
    brief: list[Any] = []
    for span in decoded.spans:
        digests = [report_digest(item) for item in span.items]
        attributes, resource = selector_values(span.selector)
        st = span.stats
        brief.append([attributes, resource, [st.spans, st.item_outputs, st.offloaded, st.malformed,
                                             st.malformed_reasons],
                      [[i.envelope.dedupe_key, d.hex(), i.order.end_time_unix_nano, i.order.trace_id,
                        i.order.span_id, i.order.position] for i, d in zip(span.items, digests, strict=True)]])
        if query.matches(span.selector):
            add_stats(stats, st)
            reports.extend(_Report(i.envelope.dedupe_key, i.order, d, i, None)
                           for i, d in zip(span.items, digests, strict=True))
    if unit.key is not None and decoded.memoizable:
        memo.append((unit.key, orjson.dumps(brief).decode()))
    return reports


def _memo_reports(unit: SpanUnit, entry: str, query: SpanQuery, stats: DecodeStats) -> list[_Report]:
    """The reports (and stats) of a unit the memo knows, without decoding it."""
    reports: list[_Report] = []
    for attributes, resource, st, refs in orjson.loads(entry):
        if query.matches(selector_span(attributes, resource)):
            add_stats(stats, DecodeStats(st[0], st[1], st[2], st[3], list(st[4])))
            reports.extend(_Report(key, SpanOrder(end, trace_id, span_id, position), bytes.fromhex(digest), None, unit)
                           for key, digest, end, trace_id, span_id, position in refs)
    return reports


def rebuild(
    store: ItemStore,
    source: SpanSource,
    scope: RebuildScope,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    memo_max_entries: int = MEMO_MAX_ENTRIES,
) -> RebuildReport:
    """Reconcile the selected spans into the items table, in one transaction (all of it, or none of it).

    Memory follows the batch: the keys already counted and the items whose links are synced at the end
    are kept in `SpillSet`s (in a temporary table beyond a bound), the report keeps counts.
    `progress`, if given, is called after each batch with two increments: the item reports it held, and
    the span input it read (in the unit of the source's `input_size`: the total for a progress bar's ETA).
    """
    report = RebuildReport(dry_run=dry_run)
    try:
        with _fewer_collections(), store.page_cache(REBUILD_CACHE_MIB), store.write():
            seen = SpillSet(store)
            linked = SpillSet(store)
            try:
                for batch in _read_batches(store, source, scope.query(), report.stats, batch_size):
                    changes = _rebuild_batch(store, scope, batch)
                    _count(report, changes, seen)
                    linked.add(changes.linked)
                    if progress is not None:
                        progress(len(batch.reports), batch.input_read)
                for chunk in linked.chunks(batch_size):
                    report.unresolved_links += store.sync_reported_links(scope.project_id, chunk, plan_links)
                store.memo_prune(memo_max_entries)
            finally:
                seen.close()
                linked.close()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


@dataclass
class _BatchChanges:
    """One batch's decisions as applied, plus the ids whose reported links are synced at the end."""

    changes: RowChanges
    keys: list[str]
    linked: list[str]


class _Hydrator:
    """Full reports of memo hits, decoding each unit at most once per batch."""

    def __init__(self) -> None:
        self._units: dict[int, list[SpanItem]] = {}

    def full(self, report: _Report) -> SpanItem:
        if report.item is not None:
            return report.item
        assert report.unit is not None
        items = self._units.get(id(report.unit))
        if items is None:
            items = [item for span in report.unit.decode().spans for item in span.items]
            self._units[id(report.unit)] = items
        for item in items:
            if item.envelope.dedupe_key == report.dedupe_key and item.order == report.order:
                return item
        raise RuntimeError(f"the span memo entry of {report.dedupe_key} does not match its span; "
                           "the memo was made by a different decoder (see DECODE_VERSION)")


def _winners(reports: list[_Report], hydrator: _Hydrator) -> dict[str, _Report]:
    """The winning report per dedupe_key, decided exactly as `latest_reports` decides (ties by content)."""
    winners: dict[str, _Report] = {}
    tied: dict[str, list[_Report]] = {}
    for report in reports:
        key = report.dedupe_key
        best = winners.get(key)
        if best is None or report.order > best.order:
            winners[key] = report
            tied.pop(key, None)
        elif report.order == best.order:
            tied.setdefault(key, [best]).append(report)
    for key, candidates in tied.items():
        full = [hydrator.full(r) for r in candidates]
        chosen = latest_reports(full)[0][key]
        winners[key] = next(r for r, item in zip(candidates, full, strict=True) if item is chosen)
    return winners


def _rebuild_batch(store: ItemStore, scope: RebuildScope, batch: _Batch) -> _BatchChanges:
    """Reconcile one batch and apply it. Rows whose digest shows they already reflect their winning
    report are confirmed as unchanged without being read or compared (see harness.reconcile.digest);
    everything else goes through `reconcile` exactly as before.
    """
    project_id = scope.project_id
    store.memo_put(batch.memo)
    hydrator = _Hydrator()
    winners = _winners(batch.reports, hydrator)
    keys = sorted(winners)
    states = store.rebuild_states(project_id, keys)
    clean: dict[str, RowState] = {}
    for key, state in states.items():
        if state.digest is not None and state.digest == winners[key].digest:
            clean[key] = state
    dirty = {key: hydrator.full(winners[key]) for key in keys if key not in clean}
    existing = store.rows_by_dedupe_keys(project_id, [key for key in dirty if key in states])
    if dirty:
        refs = sorted({item.envelope.ref for item in dirty.values() if item.envelope.ref})
        changes = reconcile(
            dirty.values(),  # the winners alone: reconcile decides from them only
            existing,
            store.ref_holders(project_id, refs),
            organization_id=scope.organization_id,
            project_id=project_id,
            now=store.clock(),
            new_id=new_id,
        )
    else:
        changes = RowChanges()
    by_id: dict[str, ItemRow] = {row.id: row for row in existing.values()}
    changes = _with_clean(changes, clean, existing, len(batch.reports) - len(winners), len(winners))
    store.apply_changes(changes, project_id, by_id)
    store.record_digests(reflected_digests(dirty, existing, changes, {key: winners[key].digest for key in dirty}))
    clean_by_id = {state.id: state for state in clean.values()}
    linked = [row.id for row in changes.creates if row.link_specs]
    linked.extend(r.item_id for r in changes.refreshes if by_id[r.item_id].link_specs or "link_specs" in r.changes)
    linked.extend(i for i in changes.unchanged
                  if (i in by_id and by_id[i].link_specs) or (i in clean_by_id and clean_by_id[i].has_link_specs))
    return _BatchChanges(changes, keys, linked)


def _with_clean(
    changes: RowChanges, clean: dict[str, RowState], existing: dict[str, ItemRow], superseded: int, processed: int
) -> RowChanges:
    """`changes` plus the rows confirmed by digest, each list in dedupe_key order as `reconcile` makes it."""
    key_of = {row.id: key for key, row in existing.items()}
    for key, state in clean.items():
        key_of[state.id] = key
    return RowChanges(
        creates=changes.creates,
        refreshes=changes.refreshes,
        events=changes.events,
        unchanged=sorted([*changes.unchanged, *(s.id for s in clean.values())], key=key_of.__getitem__),
        ref_collisions=changes.ref_collisions,
        preserved=sorted([*changes.preserved, *(s.id for s in clean.values() if s.has_disposition)],
                         key=key_of.__getitem__),
        processed=processed,
        superseded=superseded,
    )


def _count(report: RebuildReport, batch: _BatchChanges, seen: SpillSet) -> None:
    """Add one batch's decisions; `processed` counts each dedupe_key once across batches (D6)."""
    changes = batch.changes
    report.created.extend(row.id for row in changes.creates)
    report.refreshed.extend(r.item_id for r in changes.refreshes if r.is_change)
    report.unchanged.extend(changes.unchanged)
    report.preserved.extend(changes.preserved)
    report.superseded += changes.superseded
    report.ref_collisions.extend(changes.ref_collisions)
    report.processed += seen.add(batch.keys)
