"""Rebuild's caches (row digests, the decoded-span memo) change how long a rebuild takes, never its result.

Every scenario runs twice on twin databases: once as is (caches warm from earlier rebuilds), once with
both caches emptied before each rebuild (every row compared in full, every span decoded). Reports and
tables must come out the same, through every kind of change a row can see between two rebuilds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import harness.rebuild as rebuild_module
from harness.experiment import ExperimentProject, load_posts
from harness.items.store import Actor, ItemPatch, ItemStore, NewItem, SpillSet
from harness.rebuild import RebuildReport, rebuild
from harness.reconcile import plan_links
from harness.server.config import org_uuid
from harness.spans.clickhouse import ClickHouseSpanStore
from harness.spans.files import FileSpanSource, iter_spans
from harness.spans.source import SpanSource
from harness.spans.synthetic import generate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROJECT = ExperimentProject()
USER = Actor("user", "tester")
COLUMNS = ("dedupe_key", "item_type", "title", "ref", "data", "session_id", "trace_id", "span_id", "source",
           "has_disposition", "disposition_status", "disposition_notes", "link_specs", "span_order", "severity",
           "category", "search_text")


def table(store: ItemStore) -> list[tuple[Any, ...]]:
    """Rows without ids and times, and links and events by what they say (ids differ between twins)."""
    rows = sorted(tuple(r[c] for c in COLUMNS) for r in store.query("SELECT * FROM items"))
    key_of = {r["id"]: r["dedupe_key"] or r["ref"] for r in store.query("SELECT id, dedupe_key, ref FROM items")}
    links = sorted((key_of[r["source_item_id"]], key_of[r["target_item_id"]], r["relationship"], r["origin"])
                   for r in store.query("SELECT * FROM links"))
    events = sorted((key_of[r["item_id"]], r["seq"], r["event_type"], r["actor_type"])
                    for r in store.query("SELECT * FROM events"))
    return [*rows, *links, *events]


def summary(report: RebuildReport) -> dict[str, Any]:
    return report.to_json()


class Twins:
    """The same history applied to a store that keeps its caches and to one that forgets them."""

    def __init__(self, tmp_path: Path, source: SpanSource) -> None:
        self.warm = ItemStore(tmp_path / "warm.db")
        self.cold = ItemStore(tmp_path / "cold.db")
        self.source = source

    def close(self) -> None:
        self.warm.close()
        self.cold.close()

    def both(self, action: Callable[[ItemStore], object]) -> None:
        action(self.warm)
        action(self.cold)

    def rebuild(self, session_id: str | None = None) -> RebuildReport:
        with self.cold.write() as db:
            db.execute("DELETE FROM item_digests")
            db.execute("DELETE FROM span_digests")
        scope = PROJECT.scope(session_id, ())
        warm = rebuild(self.warm, self.source, scope)
        cold = rebuild(self.cold, self.source, scope)
        assert summary(warm) == summary(cold)
        assert table(self.warm) == table(self.cold)
        return warm


@pytest.fixture
def twins_of(tmp_path: Path) -> Iterator[Callable[[SpanSource], Twins]]:
    """Twins over a span source, closed when the test ends."""
    made: list[Twins] = []

    def make(source: SpanSource) -> Twins:
        made.append(Twins(tmp_path, source))
        return made[-1]

    yield make
    for twins in made:
        twins.close()


def sessions_of(store: ItemStore) -> list[str]:
    return sorted({r["session_id"] for r in store.query("SELECT DISTINCT session_id FROM items") if r["session_id"]})


@pytest.fixture
def synthetic(tmp_path: Path) -> Iterator[Path]:
    out = tmp_path / "spans"
    generate(out, sessions=3, runs_per_session=2, items_per_run=40, failed_post_fraction=0.3, seed=11)
    yield out


def _history(twins: Twins, posts: Path | None) -> None:
    """A rebuild after each kind of change a row, a link or the memo can see."""
    if posts is not None:
        twins.both(lambda store: load_posts(store, PROJECT, posts))
    first = twins.rebuild()
    assert first.processed > 0
    again = twins.rebuild()
    assert len(again.created) == 0 and len(again.refreshed) == 0

    def rows(store: ItemStore) -> list[dict[str, Any]]:
        return store.query("SELECT id, dedupe_key FROM items WHERE dedupe_key IS NOT NULL ORDER BY dedupe_key")

    def edit(store: ItemStore) -> None:  # a user rewrites span-owned fields and triages another item
        found = rows(store)
        store.update_item(PROJECT.project_id, found[0]["id"], ItemPatch(data={"severity": "info"}, title="x"), USER)
        store.update_item(PROJECT.project_id, found[1]["id"], ItemPatch(status="verified", notes="seen"), USER)

    twins.both(edit)
    healed = twins.rebuild()
    assert len(healed.refreshed) == 1  # the span's fields come back, the triage stays

    def unlink(store: ItemStore) -> None:  # a user deletes every reported link
        for link in store.query("SELECT id FROM links WHERE origin = 'reported'"):
            store.db.execute("DELETE FROM links WHERE id = ?", [link["id"]])

    twins.both(unlink)
    twins.rebuild()

    def delete_row(store: ItemStore) -> None:  # a row disappears behind the store's back
        victim = rows(store)[2]["id"]
        for table_name, column in (("links", "source_item_id"), ("links", "target_item_id"), ("events", "item_id"),
                                   ("items", "id")):
            store.db.execute(f"DELETE FROM {table_name} WHERE {column} = ?", [victim])

    twins.both(delete_row)
    assert len(twins.rebuild().created) == 1

    def take_refs(store: ItemStore) -> None:  # new items take the refs the spans ask for
        for r in store.query("SELECT id, ref FROM items WHERE ref IS NOT NULL ORDER BY dedupe_key LIMIT 2"):
            store.db.execute("UPDATE items SET ref = NULL WHERE id = ?", [r["id"]])
            store.create_item(org_uuid(PROJECT.org), PROJECT.project_id,
                              NewItem(item_type="finding", data={}, ref=r["ref"], dedupe_key=f"squat-{r['ref']}"),
                              USER, plan_links)

    twins.both(take_refs)
    collided = twins.rebuild()
    assert collided.ref_collisions
    twins.rebuild()


def test_files_history(twins_of: Callable[[SpanSource], Twins], synthetic: Path) -> None:
    _history(twins_of(FileSpanSource([synthetic])), synthetic / "posts.jsonl")


def test_chdb_history(
    twins_of: Callable[[SpanSource], Twins], synthetic: Path, chdb_store: ClickHouseSpanStore
) -> None:
    chdb_store.insert_spans(iter_spans([synthetic]))
    _history(twins_of(chdb_store), synthetic / "posts.jsonl")


@pytest.mark.parametrize("folder", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_fixture_folders(twins_of: Callable[[SpanSource], Twins], folder: str) -> None:
    """Every fixture (malformed, offloaded, mirror, collisions, ...) rebuilt twice, memo warm the second time."""
    twins = twins_of(FileSpanSource([FIXTURES / folder]))
    posts = FIXTURES / folder / "posts.jsonl"
    if posts.exists():
        twins.both(lambda store: load_posts(store, PROJECT, posts))
    first = twins.rebuild()
    second = twins.rebuild()
    assert second.stats == first.stats  # memo hits count exactly what a decode counts


def test_session_rebuild_after_a_project_rebuild_uses_the_memo(
    twins_of: Callable[[SpanSource], Twins], synthetic: Path
) -> None:
    """The memo is filled by one query and read by another: a session's spans are picked from it alike."""
    twins = twins_of(FileSpanSource([synthetic]))
    twins.rebuild()
    sessions = sessions_of(twins.warm)
    assert len(sessions) == 3
    for session_id in sessions:
        report = twins.rebuild(session_id)
        assert report.processed > 0


def test_a_memo_entry_is_only_reused_for_the_same_bytes(
    twins_of: Callable[[SpanSource], Twins], synthetic: Path
) -> None:
    """A span file edited in place (one item's title changed) is decoded again, line by line."""
    twins = twins_of(FileSpanSource([synthetic]))
    twins.rebuild()
    span_file = sorted(synthetic.glob("spans-*.jsonl"))[0]
    text = span_file.read_text()
    assert "#s0r0-20" in text
    span_file.write_text(text.replace("#s0r0-20", "#s0r0-20 (edited)"))
    report = twins.rebuild()
    assert len(report.refreshed) >= 1


def test_only_changes_to_what_a_digest_vouches_for_void_it(tmp_path: Path, synthetic: Path) -> None:
    store = ItemStore(tmp_path / "items.db")
    try:
        rebuild(store, FileSpanSource([synthetic]), PROJECT.scope(None, ()))
        first, second = store.query("SELECT item_id FROM item_digests ORDER BY item_id LIMIT 2")
        store.update_item(PROJECT.project_id, first["item_id"], ItemPatch(status="triaged", notes="ok"), USER)
        store.update_item(PROJECT.project_id, second["item_id"], ItemPatch(title="renamed"), USER)
        kept = {r["item_id"] for r in store.query("SELECT item_id FROM item_digests")}
        assert first["item_id"] in kept and second["item_id"] not in kept
    finally:
        store.close()


def test_spill_set_keeps_order_and_counts_beyond_its_memory_bound(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "items.db")
    try:
        with store.write():
            spill = SpillSet(store, limit=5)
            values = [f"v{i % 13}" for i in range(40)]
            added = sum(spill.add(values[at : at + 4]) for at in range(0, len(values), 4))
            assert added == len(spill) == 13
            assert [v for chunk in spill.chunks(3) for v in chunk] == list(dict.fromkeys(values))
            spill.close()
    finally:
        store.close()


def test_a_rebuild_that_spills_its_bookkeeping_decides_alike(
    tmp_path: Path, synthetic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = FileSpanSource([synthetic])
    plain = ItemStore(tmp_path / "plain.db")
    spilled = ItemStore(tmp_path / "spilled.db")
    try:
        expected = rebuild(plain, source, PROJECT.scope(None, ()), batch_size=50)
        monkeypatch.setattr(rebuild_module, "SpillSet", functools.partial(SpillSet, limit=7))
        got = rebuild(spilled, source, PROJECT.scope(None, ()), batch_size=50)
        assert summary(got) == summary(expected)
        assert table(spilled) == table(plain)
    finally:
        plain.close()
        spilled.close()


def test_the_memo_keeps_about_its_bound_and_a_pruned_memo_changes_no_result(
    tmp_path: Path, synthetic: Path, chdb_store: ClickHouseSpanStore
) -> None:
    """Past `memo_max_entries` the oldest entries go at the end of a rebuild; the units they described
    are decoded again next time, with the same results."""
    chdb_store.insert_spans(iter_spans([synthetic]))
    bounded, unbounded = ItemStore(tmp_path / "bounded.db"), ItemStore(tmp_path / "unbounded.db")

    def memo_size(store: ItemStore) -> int:
        return int(store.query("SELECT COUNT(*) AS n FROM span_digests")[0]["n"])

    def both(session_id: str | None) -> None:
        scope = PROJECT.scope(session_id, ())
        small = rebuild(bounded, chdb_store, scope, memo_max_entries=5)
        assert memo_size(bounded) <= 5
        assert summary(small) == summary(rebuild(unbounded, chdb_store, scope))
        assert table(bounded) == table(unbounded)

    try:
        both(None)
        both(None)
        for session_id in sessions_of(bounded):
            both(session_id)
        assert memo_size(unbounded) > 5
    finally:
        bounded.close()
        unbounded.close()
