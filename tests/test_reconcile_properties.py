"""Properties of reconcile and plan_links over generated reports and tables.

Small pools of dedupe_keys, refs and span orders make the interesting cases frequent: several reports
per key, equal span orders, refs held inside and outside the batch, contention and swaps.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.model import (
    SPAN_OWNED_FIELDS,
    Disposition,
    ItemEnvelope,
    ItemEvent,
    ItemRow,
    LinkRow,
    LinkSpec,
    RowChanges,
    SpanItem,
    SpanOrder,
)
from harness.reconcile import plan_links, reconcile

ORG = "org-1"
PROJECT = "proj-1"
NOW = "2025-01-02T00:00:00Z"
LATER = "2025-01-03T00:00:00Z"
EARLIER = "2025-01-01T00:00:00Z"

KEYS = [f"k{i}" for i in range(6)]
REFS = [f"R{i}" for i in range(4)]
REFRESHABLE = {*SPAN_OWNED_FIELDS, "span_order", "link_specs", "updated_at"}

PROPS = settings(max_examples=200, deadline=None)

Table = dict[str, ItemRow]

small_text = st.sampled_from(["a", "b"])
maybe_text = st.none() | small_text
refs = st.none() | st.sampled_from(REFS)
data = st.dictionaries(
    st.sampled_from(["severity", "n", "flag"]),
    st.none() | st.booleans() | st.integers(0, 1) | st.sampled_from(["high", "low"]),
    max_size=2,
)
link_specs = st.lists(
    st.builds(
        LinkSpec,
        relationship=st.sampled_from(["affects", "duplicates"]),
        target_ref=st.none() | st.sampled_from(REFS),
        target_item_id=st.none() | st.sampled_from(["id-k0", "id-k1", "zz"]),
    ),
    max_size=2,
).map(tuple)
orders = st.builds(
    SpanOrder,
    end_time_unix_nano=st.integers(0, 3),
    trace_id=st.sampled_from(["t0", "t1"]),
    span_id=st.sampled_from(["s0", "s1"]),
    position=st.integers(0, 1),
)
dispositions = st.none() | st.builds(
    Disposition,
    status=st.none() | st.sampled_from(["triaged", "dismissed"]),
    notes=maybe_text,
    updated_at=st.just(EARLIER),
    updated_by=st.just("user:1"),
)


# Fields reconcile only copies vary together, in one draw, to keep generation cheap.
provenance: st.SearchStrategy[dict[str, str | None]] = st.sampled_from(
    [
        {"session_id": "s-1", "trace_id": "t0", "span_id": "s0", "schema_ref": None, "capability": None},
        {"session_id": "s-1", "trace_id": "t0", "span_id": "s1", "schema_ref": "f/1", "capability": "c"},
        {"session_id": "s-2", "trace_id": "t1", "span_id": "s0", "schema_ref": "f/2", "capability": "c"},
    ]
)


@st.composite
def envelopes(draw: st.DrawFn, key: st.SearchStrategy[str]) -> ItemEnvelope:
    return ItemEnvelope(
        item_type=draw(st.sampled_from(["finding", "asset"])),
        dedupe_key=draw(key),
        ref=draw(refs),
        title=draw(maybe_text),
        status=draw(st.none() | st.sampled_from(["open", "resolved"])),
        notes=draw(maybe_text),
        capability_version=draw(maybe_text),
        data=draw(data),
        links=draw(link_specs),
        **draw(provenance),
    )


span_items = st.builds(
    SpanItem,
    envelope=envelopes(st.sampled_from(KEYS)),
    project=st.just(PROJECT),
    run_id=st.just("run-1"),
    session_id=st.just("s-1"),
    order=orders,
)


def row_from(env: ItemEnvelope, row_id: str, dedupe_key: str | None, **fields: Any) -> ItemRow:
    row = ItemRow(
        id=row_id,
        organization_id=ORG,
        project_id=PROJECT,
        item_type=env.item_type,
        data=env.data,
        title=env.title,
        ref=env.ref,
        dedupe_key=dedupe_key,
        schema_ref=env.schema_ref,
        session_id=env.session_id,
        trace_id=env.trace_id,
        span_id=env.span_id,
        capability=env.capability,
        capability_version=env.capability_version,
        source="runtime",
        disposition=None,
        created_at=EARLIER,
        created_by="agent:1",
        updated_at=EARLIER,
        link_specs=env.links,
    )
    return dataclasses.replace(row, **fields)


def bools_as_ints(values: dict[str, Any]) -> dict[str, Any]:
    """Equal to `values` for Python's ==, different JSON: what a careless store would hand back."""
    return {name: int(value) if isinstance(value, bool) else value for name, value in values.items()}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[SpanItem], Table]:
    """Reports, and a project table holding rows for some of their keys plus outsiders holding refs."""
    items = draw(st.lists(span_items, max_size=12))
    keys = sorted({item.envelope.dedupe_key for item in items})
    rows: list[ItemRow] = []
    for key in keys:
        if not draw(st.booleans()):
            continue  # its POST failed: rebuild must heal it
        reports = [item for item in items if item.envelope.dedupe_key == key]
        # Either the copy of one report (as a previous rebuild or POST left it) or something else.
        source = draw(st.sampled_from([*reports, None]))
        env = source.envelope if source is not None else draw(envelopes(st.just(key)))
        order = draw(st.none() | orders) if source is None else draw(st.sampled_from([None, source.order]))
        rows.append(
            row_from(
                env,
                f"id-{key}",
                key,
                ref=draw(st.sampled_from([env.ref, env.ref, *REFS])),
                data=draw(st.sampled_from([env.data, bools_as_ints(env.data)])),
                span_order=None if order is None else order.encode(),
                disposition=draw(dispositions),
            )
        )
    for n in range(draw(st.integers(0, 3))):
        outsider_key = draw(st.sampled_from([None, f"x{n}"]))
        rows.append(row_from(draw(envelopes(st.just("unused"))), f"out-{n}", outsider_key))
    # A ref is held by at most one row of the project.
    held: set[str] = set()
    table: Table = {}
    for row in rows:
        if row.ref is not None and row.ref in held:
            row = dataclasses.replace(row, ref=None)
        if row.ref is not None:
            held.add(row.ref)
        table[row.id] = row
    return items, table


def counter(prefix: str) -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}-{next(numbers)}"


def run(items: Sequence[SpanItem], table: Table, prefix: str = "new", now: str = NOW) -> RowChanges:
    """What the store does around reconcile: select the rows and ref holders for these reports."""
    keys = {item.envelope.dedupe_key for item in items}
    asked = {item.envelope.ref for item in items if item.envelope.ref is not None}
    existing = {row.dedupe_key: row for row in table.values() if row.dedupe_key in keys}
    holders = {row.ref: row.dedupe_key or row.id for row in table.values() if row.ref in asked}
    return reconcile(
        items,
        existing,
        holders,
        organization_id=ORG,
        project_id=PROJECT,
        now=now,
        new_id=counter(prefix),
    )


def apply(table: Table, changes: RowChanges) -> Table:
    after = dict(table)
    for refresh in changes.refreshes:
        after[refresh.item_id] = dataclasses.replace(after[refresh.item_id], **refresh.changes)
    for row in changes.creates:
        after[row.id] = row
    return after


def latest(items: Sequence[SpanItem], key: str) -> list[SpanItem]:
    """The reports of `key` that share the greatest span order (more than one only on a tie)."""
    reports = [item for item in items if item.envelope.dedupe_key == key]
    top = max(item.order for item in reports)
    return [item for item in reports if item.order == top]


def expected_disposition(env: ItemEnvelope) -> Disposition | None:
    if env.status is None and env.notes is None:
        return None
    return Disposition(status=env.status, notes=env.notes, updated_at=NOW, updated_by=None)


def strict(value: Any) -> str:
    """JSON text with types spelled out, so that true and 1 differ."""
    return json.dumps(value, sort_keys=True, default=repr)


def real_changes(changes: RowChanges) -> list[str]:
    return [refresh.item_id for refresh in changes.refreshes if "updated_at" in refresh.changes]


def assert_reflects_latest_reports(items: Sequence[SpanItem], table: Table, applied: Table) -> None:
    """Each key's row now carries its latest report (the granted ref aside), unless it already had a later one."""
    after = {row.dedupe_key: row for row in applied.values()}
    for key in {item.envelope.dedupe_key for item in items}:
        row, reports = after[key], latest(items, key)
        before = next((r for r in table.values() if r.dedupe_key == key), None)
        if before is not None and before.span_order is not None and before.span_order > reports[0].order.encode():
            assert row == before  # already reflects a later span
            continue
        assert row.span_order == reports[0].order.encode()
        owned = {name: getattr(row, name) for name in SPAN_OWNED_FIELDS if name != "ref"}
        assert any(
            strict(owned) == strict({name: getattr(r.envelope, name) for name in owned})
            and row.link_specs == r.envelope.links
            for r in reports
        )


@PROPS
@given(scenarios())
def test_disposition_is_never_rewritten(scenario: tuple[list[SpanItem], Table]) -> None:
    items, table = scenario
    changes = run(items, table)
    after = apply(table, changes)

    for refresh in changes.refreshes:
        assert set(refresh.changes) <= REFRESHABLE
    for row in table.values():
        kept = after[row.id]
        assert (kept.disposition, kept.id, kept.created_at, kept.created_by, kept.source) == (
            row.disposition,
            row.id,
            row.created_at,
            row.created_by,
            row.source,
        )
    touched = {row.id for row in table.values() if row.dedupe_key in {i.envelope.dedupe_key for i in items}}
    assert set(changes.preserved) == {i for i in touched if table[i].disposition is not None}
    for row in changes.creates:
        assert row.dedupe_key is not None
        assert row.disposition in [expected_disposition(i.envelope) for i in latest(items, row.dedupe_key)]


@PROPS
@given(scenarios())
def test_one_rebuild_converges_and_the_next_changes_nothing(scenario: tuple[list[SpanItem], Table]) -> None:
    items, table = scenario
    first = run(items, table)
    after = apply(table, first)
    assert_reflects_latest_reports(items, table, after)
    second = run(items, after, prefix="again", now=LATER)

    assert second.creates == []
    assert second.refreshes == []
    assert second.events == []
    assert second.ref_collisions == first.ref_collisions
    assert second.processed == first.processed
    assert apply(after, second) == after  # in particular no updated_at moved to LATER


@PROPS
@given(scenarios())
def test_no_duplicates_and_refs_never_taken_over(scenario: tuple[list[SpanItem], Table]) -> None:
    items, table = scenario
    changes = run(items, table)
    after = apply(table, changes)

    created_keys = [row.dedupe_key for row in changes.creates]
    assert len(created_keys) == len(set(created_keys))
    assert not set(created_keys) & {row.dedupe_key for row in table.values()}
    created_ids = [row.id for row in changes.creates]
    assert len(created_ids) == len(set(created_ids)) and not set(created_ids) & set(table)
    assert len(after) == len(table) + len(created_ids)

    held = [row.ref for row in after.values() if row.ref is not None]
    assert len(held) == len(set(held))
    # A row loses its ref only because its own latest report asked for another one (or none).
    for row in table.values():
        if row.ref is None or after[row.id].ref == row.ref:
            continue
        assert row.dedupe_key is not None
        assert after[row.id].ref in [i.envelope.ref for i in latest(items, row.dedupe_key)]
    # Collisions name the item that keeps the ref, and the colliding item did not get it.
    for collision in changes.ref_collisions:
        keeper = [r for r in after.values() if r.ref == collision.ref]
        assert [r.dedupe_key or r.id for r in keeper] == [collision.held_by]
        assert collision.held_by != collision.dedupe_key


@PROPS
@given(scenarios())
def test_healed_and_processed_account_for_every_key(scenario: tuple[list[SpanItem], Table]) -> None:
    items, table = scenario
    changes = run(items, table)
    keys = {item.envelope.dedupe_key for item in items}

    with_rows = {row.dedupe_key for row in table.values()}
    assert {row.dedupe_key for row in changes.creates} == keys - with_rows
    assert all(row.source == "extracted" and row.created_at == row.updated_at == NOW for row in changes.creates)
    created = [event.item_id for event in changes.events if event.event_type == "created"]
    assert created == changes.healed

    assert changes.processed == len(keys)
    assert changes.superseded == len(items) - len(keys)
    outcomes = [*changes.healed, *real_changes(changes), *changes.unchanged]
    assert len(outcomes) == len(set(outcomes)) == changes.processed
    updated = [event.item_id for event in changes.events if event.event_type == "updated"]
    assert updated == real_changes(changes)


def normalized(changes: RowChanges) -> RowChanges:
    """The changes with generated ids replaced by the dedupe_key they were given to."""
    names = {row.id: f"new:{row.dedupe_key}" for row in changes.creates}
    return dataclasses.replace(
        changes,
        creates=[dataclasses.replace(row, id=names[row.id]) for row in changes.creates],
        events=[
            dataclasses.replace(event, item_id=names.get(event.item_id, event.item_id)) for event in changes.events
        ],
    )


@PROPS
@given(scenarios(), st.data())
def test_input_order_does_not_matter(scenario: tuple[list[SpanItem], Table], data: st.DataObject) -> None:
    items, table = scenario
    shuffled = data.draw(st.permutations(items))
    assert normalized(run(shuffled, table, prefix="p")) == normalized(run(items, table))


# --- links -----------------------------------------------------------------------------------------

TARGETS = ["a", "b", "c", "src"]
link_rows = st.builds(
    LinkRow,
    id=st.sampled_from(["l1", "l2", "l3", "l4"]),
    source_item_id=st.just("src"),
    target_item_id=st.sampled_from(TARGETS),
    relationship=st.sampled_from(["affects", "duplicates"]),
    created_at=st.just(EARLIER),
    origin=st.sampled_from(["reported", "user"]),
)
specs = st.lists(
    st.builds(
        LinkSpec,
        relationship=st.sampled_from(["affects", "duplicates"]),
        target_ref=st.none() | st.sampled_from(REFS),
        target_item_id=st.none() | st.sampled_from([*TARGETS, "elsewhere"]),
    ),
    max_size=5,
)


@PROPS
@given(
    specs,
    st.dictionaries(st.sampled_from(REFS), st.sampled_from(TARGETS), max_size=4),
    st.lists(link_rows, max_size=4, unique_by=lambda link: link.id),
)
def test_link_plan_converges_and_leaves_user_links(
    spec_list: list[LinkSpec], ref_to_id: dict[str, str], current: list[LinkRow]
) -> None:
    known = set(TARGETS)
    plan = plan_links("src", spec_list, ref_to_id, known, current, now=NOW, new_id=counter("n"))

    user_ids = {link.id for link in current if link.origin == "user"}
    assert not set(plan.remove) & user_ids
    assert all(link.origin == "reported" and link.target_item_id != "src" for link in plan.add)
    assert len(plan.events) == len(plan.add) + len(plan.remove)

    reported = [link for link in current if link.origin == "reported" and link.id not in plan.remove]
    reported += plan.add
    pairs = [(link.target_item_id, link.relationship) for link in reported]
    assert len(pairs) == len(set(pairs))
    again = plan_links("src", spec_list, ref_to_id, known, reported, now=NOW, new_id=counter("m"))
    assert again.empty and again.events == [] and again.unresolved == plan.unresolved


def test_events_name_the_item_they_belong_to() -> None:
    """A sanity anchor for the generated tests: events are ItemEvents keyed by the row id."""
    item = SpanItem(
        envelope=ItemEnvelope("finding", "k0", None, None, None, None, None, None, None, None, None, None, {}),
        project=PROJECT,
        run_id=None,
        session_id=None,
        order=SpanOrder(1, "t", "s", 0),
    )
    changes = run([item], {})
    assert changes.events == [
        ItemEvent(changes.healed[0], "created", "system", None, {"reason": "rebuild", "source": "extracted"})
    ]
