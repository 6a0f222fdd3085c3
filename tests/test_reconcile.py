"""Example-based tests of harness.reconcile: one rule of D6-D10 (and the link rules) per test."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from harness.model import (
    SPAN_OWNED_FIELDS,
    Disposition,
    ItemEnvelope,
    ItemEvent,
    ItemRow,
    LinkRow,
    LinkSpec,
    RefCollision,
    RowChanges,
    SpanItem,
    SpanOrder,
)
from harness.reconcile import json_equal, plan_links, reconcile

ORG = "org-1"
PROJECT = "proj-1"
NOW = "2025-01-02T00:00:00Z"
EARLIER = "2025-01-01T00:00:00Z"
TRACE = "a" * 32
SPAN = "b" * 16


def envelope(key: str, **fields: Any) -> ItemEnvelope:
    base: dict[str, Any] = {
        "item_type": "finding",
        "dedupe_key": key,
        "ref": None,
        "title": f"title {key}",
        "status": None,
        "notes": None,
        "schema_ref": None,
        "session_id": "sess-1",
        "trace_id": TRACE,
        "span_id": SPAN,
        "capability": "cap",
        "capability_version": "1",
        "data": {"severity": "high"},
        "links": (),
    }
    base.update(fields)
    return ItemEnvelope(**base)


def span_item(env: ItemEnvelope, end: int = 100, position: int = 0) -> SpanItem:
    return SpanItem(
        envelope=env,
        project=PROJECT,
        run_id="run-1",
        session_id=env.session_id,
        order=SpanOrder(end_time_unix_nano=end, trace_id=TRACE, span_id=SPAN, position=position),
    )


def row_for(item: SpanItem, row_id: str | None = None, **overrides: Any) -> ItemRow:
    """The row a rebuild of `item` would leave behind, with `overrides` applied."""
    env = item.envelope
    row = ItemRow(
        id=row_id or f"id-{env.dedupe_key}",
        organization_id=ORG,
        project_id=PROJECT,
        item_type=env.item_type,
        data=dict(env.data),
        title=env.title,
        ref=env.ref,
        dedupe_key=env.dedupe_key,
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
        span_order=item.order.encode(),
        link_specs=env.links,
    )
    return dataclasses.replace(row, **overrides)


def counter(prefix: str = "new") -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}-{next(numbers)}"


def run(
    items: Iterable[SpanItem],
    rows: Iterable[ItemRow] = (),
    ref_holders: Mapping[str, str] | None = None,
) -> RowChanges:
    existing = {row.dedupe_key: row for row in rows if row.dedupe_key is not None}
    return reconcile(
        items,
        existing,
        ref_holders or {},
        organization_id=ORG,
        project_id=PROJECT,
        now=NOW,
        new_id=counter(),
    )


# --- heal ------------------------------------------------------------------------------------------


def test_heal_creates_the_row_whose_post_failed() -> None:
    spec = LinkSpec(relationship="affects", target_ref="asset-1")
    item = span_item(envelope("k1", ref="F-1", links=(spec,)))
    changes = run([item])

    assert changes.refreshes == [] and changes.unchanged == []
    [row] = changes.creates
    assert row.id == "new-1" and changes.healed == ["new-1"]
    assert (row.organization_id, row.project_id, row.dedupe_key) == (ORG, PROJECT, "k1")
    assert row.source == "extracted"
    assert row.created_at == row.updated_at == NOW
    assert row.created_by is None
    assert row.span_order == item.order.encode()
    assert row.link_specs == (spec,)
    assert row.disposition is None
    for name in SPAN_OWNED_FIELDS:
        assert getattr(row, name) == getattr(item.envelope, name)
    assert changes.events == [
        ItemEvent(
            item_id="new-1",
            event_type="created",
            actor_type="system",
            actor_id=None,
            payload={"reason": "rebuild", "source": "extracted"},
        )
    ]
    assert changes.processed == 1


@pytest.mark.parametrize(
    ("status", "notes", "expected"),
    [
        (None, None, None),
        ("triaged", None, Disposition("triaged", None, NOW, None)),
        (None, "look at it", Disposition(None, "look at it", NOW, None)),
        ("verified", "confirmed", Disposition("verified", "confirmed", NOW, None)),
    ],
)
def test_healed_disposition_comes_from_the_envelope(
    status: str | None, notes: str | None, expected: Disposition | None
) -> None:
    changes = run([span_item(envelope("k1", status=status, notes=notes))])
    assert changes.creates[0].disposition == expected


# --- refresh ---------------------------------------------------------------------------------------

NEW_VALUES: dict[str, Any] = {
    "item_type": "asset",
    "data": {"severity": "low", "extra": [1, 2]},
    "title": "a better title",
    "ref": "F-9",
    "schema_ref": "schema://finding/v2",
    "capability": "other-cap",
    "capability_version": "2",
    "session_id": "sess-2",
    "trace_id": "c" * 32,
    "span_id": "d" * 16,
}


def test_new_values_cover_every_span_owned_field() -> None:
    assert set(NEW_VALUES) == set(SPAN_OWNED_FIELDS)


@pytest.mark.parametrize("name", SPAN_OWNED_FIELDS)
def test_refresh_changes_only_the_field_that_differs(name: str) -> None:
    old = span_item(envelope("k1"))
    new = span_item(envelope("k1", **{name: NEW_VALUES[name]}), end=200)
    row = row_for(old)
    changes = run([new], [row])

    assert changes.refreshes[0].item_id == row.id
    assert changes.refreshes[0].changes == {
        name: NEW_VALUES[name],
        "updated_at": NOW,
        "span_order": new.order.encode(),
    }
    assert changes.events == [ItemEvent(row.id, "updated", "system", None, {"changed": [name], "reason": "rebuild"})]
    assert changes.unchanged == [] and changes.creates == []


def test_refresh_of_links_is_recorded_under_link_specs() -> None:
    spec = LinkSpec(relationship="affects", target_item_id="id-x")
    item = span_item(envelope("k1", links=(spec,)))
    row = row_for(item, link_specs=())
    changes = run([item], [row])

    assert changes.refreshes[0].changes == {"link_specs": (spec,), "updated_at": NOW}
    assert changes.events[0].payload == {"changed": ["links"], "reason": "rebuild"}


def test_several_changed_fields_are_listed_sorted_in_one_event() -> None:
    item = span_item(envelope("k1", title="t2", data={"severity": "info"}, capability="c2"))
    changes = run([item], [row_for(item, title="t1", data={}, capability="c1")])

    assert changes.refreshes[0].changes == {
        "title": "t2",
        "data": {"severity": "info"},
        "capability": "c2",
        "updated_at": NOW,
    }
    assert [event.payload["changed"] for event in changes.events] == [["capability", "data", "title"]]


def test_a_row_that_already_matches_is_unchanged_without_event_or_updated_at() -> None:
    item = span_item(envelope("k1", ref="F-1"))
    row = row_for(item)
    changes = run([item], [row], {"F-1": "k1"})

    assert changes.refreshes == [] and changes.events == [] and changes.creates == []
    assert changes.unchanged == [row.id]
    assert changes.processed == 1


def test_a_row_only_posted_gets_its_span_order_and_nothing_else() -> None:
    item = span_item(envelope("k1"))
    row = row_for(item, span_order=None)
    changes = run([item], [row])

    assert [r.changes for r in changes.refreshes] == [{"span_order": item.order.encode()}]
    assert changes.events == []
    assert changes.unchanged == [row.id]


def test_identity_and_provenance_are_never_in_the_changes() -> None:
    item = span_item(envelope("k1", title="new"))
    row = row_for(item, title="old", source="api", created_by="user:7")
    changes = run([item], [row])

    assert set(changes.refreshes[0].changes) == {"title", "updated_at"}


def test_bool_and_int_data_values_are_different_json() -> None:
    item = span_item(envelope("k1", data={"flag": True}))
    changes = run([item], [row_for(item, data={"flag": 1})])

    assert changes.refreshes[0].changes["data"] == {"flag": True}
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})
    assert not json_equal({"a": 1}, {"a": True}) and not json_equal([1], {"0": 1})
    assert json_equal(1, 1.0)


# --- disposition -----------------------------------------------------------------------------------

TRIAGE = Disposition(status="dismissed", notes="false positive", updated_at=EARLIER, updated_by="user:1")


def test_refresh_preserves_the_disposition() -> None:
    item = span_item(envelope("k1", title="new title"))
    row = row_for(item, title="old title", disposition=TRIAGE)
    changes = run([item], [row])

    assert "disposition" not in changes.refreshes[0].changes
    assert changes.preserved == [row.id]


def test_confirmed_row_with_disposition_is_listed_as_preserved() -> None:
    item = span_item(envelope("k1"))
    row = row_for(item, disposition=TRIAGE)
    changes = run([item], [row])
    assert changes.preserved == [row.id] and changes.unchanged == [row.id]


@pytest.mark.parametrize("disposition", [None, TRIAGE])
def test_envelope_status_and_notes_never_touch_an_existing_row(disposition: Disposition | None) -> None:
    item = span_item(envelope("k1", status="resolved", notes="fixed by agent"))
    row = row_for(item, disposition=disposition)
    changes = run([item], [row])

    assert changes.refreshes == [] and changes.events == [] and changes.creates == []
    assert changes.unchanged == [row.id]


# --- superseded reports and span order -------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_latest_report_wins_and_the_others_are_superseded(reverse: bool) -> None:
    reports = [
        span_item(envelope("k1", title="first"), end=100),
        span_item(envelope("k1", title="second"), end=200),
        span_item(envelope("k1", title="same span, later position"), end=200, position=1),
    ]
    changes = run(reversed(reports) if reverse else reports)

    assert [row.title for row in changes.creates] == ["same span, later position"]
    assert changes.creates[0].span_order == reports[2].order.encode()
    assert changes.superseded == 2
    assert changes.processed == 1


def test_a_row_from_a_later_span_is_left_alone() -> None:
    later = span_item(envelope("k1", title="later"), end=500)
    row = row_for(later, disposition=TRIAGE)
    changes = run([span_item(envelope("k1", title="older", ref="F-1"), end=100)], [row])

    assert changes.refreshes == [] and changes.events == [] and changes.ref_collisions == []
    assert changes.unchanged == [row.id] and changes.preserved == [row.id]
    assert changes.processed == 1


def test_span_order_encoding_sorts_like_the_tuple() -> None:
    orders = [
        SpanOrder(9, "f" * 32, "0" * 16, 3),
        SpanOrder(10, "0" * 32, "0" * 16, 0),
        SpanOrder(10, "0" * 32, "0" * 16, 1),
        SpanOrder(10, "0" * 32, "1" * 16, 0),
    ]
    assert sorted(orders, key=SpanOrder.encode) == sorted(orders)


def test_input_order_does_not_matter() -> None:
    items = [span_item(envelope(f"k{i}", ref=f"F-{i % 2}"), end=100 + i) for i in range(5)]
    forward, backward = run(items), run(reversed(items))
    assert forward == backward
    assert [row.dedupe_key for row in forward.creates] == ["k0", "k1", "k2", "k3", "k4"]


# --- refs (D9) -------------------------------------------------------------------------------------


def test_ref_held_by_another_item_is_not_taken_over_by_a_new_item() -> None:
    changes = run([span_item(envelope("k1", ref="F-1"))], ref_holders={"F-1": "other-key"})

    assert changes.creates[0].ref is None
    assert changes.ref_collisions == [RefCollision(dedupe_key="k1", ref="F-1", held_by="other-key")]


def test_ref_held_by_another_item_leaves_the_rebuilt_item_its_own_ref() -> None:
    item = span_item(envelope("k1", ref="F-2", title="new"))
    row = row_for(item, ref="F-1", title="old")
    changes = run([item], [row], {"F-2": "row-id-without-key"})

    assert changes.refreshes[0].changes == {"title": "new", "updated_at": NOW}
    assert changes.ref_collisions == [RefCollision("k1", "F-2", "row-id-without-key")]


def test_ref_held_by_the_item_itself_is_fine() -> None:
    item = span_item(envelope("k1", ref="F-1"))
    by_key = run([item], [row_for(item)], {"F-1": "k1"})
    by_id = run([item], [row_for(item, ref=None)], {"F-1": "id-k1"})

    assert by_key.ref_collisions == [] and by_key.refreshes == []
    assert by_id.ref_collisions == [] and by_id.refreshes[0].changes["ref"] == "F-1"


def test_free_ref_is_taken() -> None:
    item = span_item(envelope("k1", ref="F-1"))
    changes = run([item], [row_for(item, ref=None)])
    assert changes.refreshes[0].changes == {"ref": "F-1", "updated_at": NOW}


@pytest.mark.parametrize("reverse", [False, True])
def test_two_reports_asking_for_one_free_ref_smallest_dedupe_key_wins(reverse: bool) -> None:
    items = [span_item(envelope("k-b", ref="F-1"), end=1), span_item(envelope("k-a", ref="F-1"), end=2)]
    changes = run(reversed(items) if reverse else items)

    assert {row.dedupe_key: row.ref for row in changes.creates} == {"k-a": "F-1", "k-b": None}
    assert changes.ref_collisions == [RefCollision("k-b", "F-1", held_by="k-a")]


def test_a_ref_its_holder_gives_up_in_the_same_rebuild_is_free() -> None:
    holder = span_item(envelope("k-z", ref=None))
    taker = span_item(envelope("k-a", ref="F-1"))
    changes = run([holder, taker], [row_for(holder, ref="F-1")], {"F-1": "k-z"})

    assert changes.ref_collisions == []
    assert changes.refreshes[0].changes == {"ref": None, "updated_at": NOW}
    assert changes.creates[0].ref == "F-1"


def test_a_ref_its_holder_keeps_in_the_same_rebuild_collides() -> None:
    # k-z would like F-2, but F-2 belongs to someone outside: k-z keeps F-1, so k-a cannot have it.
    holder = span_item(envelope("k-z", ref="F-2"))
    taker = span_item(envelope("k-a", ref="F-1"))
    changes = run([holder, taker], [row_for(holder, ref="F-1")], {"F-1": "k-z", "F-2": "outsider"})

    assert changes.refreshes == []
    assert changes.creates[0].ref is None
    assert changes.ref_collisions == [
        RefCollision("k-a", "F-1", "k-z"),
        RefCollision("k-z", "F-2", "outsider"),
    ]


def test_two_items_swapping_refs_both_keep_their_own() -> None:
    x = span_item(envelope("k-x", ref="F-2"))
    y = span_item(envelope("k-y", ref="F-1"))
    rows = [row_for(x, ref="F-1"), row_for(y, ref="F-2")]
    changes = run([x, y], rows, {"F-1": "k-x", "F-2": "k-y"})

    assert changes.refreshes == [] and changes.events == []
    assert changes.ref_collisions == [RefCollision("k-x", "F-2", "k-y"), RefCollision("k-y", "F-1", "k-x")]


def test_a_long_chain_of_released_refs_resolves_without_recursion() -> None:
    n = 3000  # deeper than Python's recursion limit
    items = [span_item(envelope(f"k{i:05d}", ref=f"F-{i + 1}")) for i in range(n)]
    rows = [row_for(item, ref=f"F-{i}") for i, item in enumerate(items)]
    holders = {f"F-{i}": f"k{i:05d}" for i in range(n)}
    changes = run(items, rows, holders)

    assert changes.ref_collisions == []
    assert [r.changes["ref"] for r in changes.refreshes] == [f"F-{i + 1}" for i in range(n)]


# --- D6 --------------------------------------------------------------------------------------------


def test_processed_counts_distinct_dedupe_keys_written_or_confirmed() -> None:
    confirmed = span_item(envelope("k1"))
    items = [
        confirmed,
        span_item(envelope("k2")),
        span_item(envelope("k2", title="later"), end=300),
        span_item(envelope("k3", title="changed")),
    ]
    rows = [row_for(confirmed), row_for(span_item(envelope("k3")))]
    changes = run(items, rows)

    assert changes.processed == 3
    assert len(changes.creates) == 1 and len(changes.refreshes) == 1 and len(changes.unchanged) == 1
    assert changes.superseded == 1


def test_no_items_no_changes() -> None:
    assert run([]) == RowChanges()


# --- links -----------------------------------------------------------------------------------------

SRC = "item-src"


def link(link_id: str, target: str, relationship: str = "affects", origin: str = "reported") -> LinkRow:
    return LinkRow(link_id, SRC, target, relationship, EARLIER, origin)


def test_links_are_added_for_resolvable_specs() -> None:
    specs = [
        LinkSpec("affects", target_ref="asset-1"),
        LinkSpec("duplicates", target_item_id="item-b"),
    ]
    plan = plan_links(SRC, specs, {"asset-1": "item-a"}, {"item-a", "item-b"}, [], now=NOW, new_id=counter("l"))

    assert plan.add == [
        LinkRow("l-1", SRC, "item-a", "affects", NOW, "reported"),
        LinkRow("l-2", SRC, "item-b", "duplicates", NOW, "reported"),
    ]
    assert plan.remove == [] and plan.unresolved == 0
    assert plan.events == [
        ItemEvent(
            SRC,
            "linked",
            "system",
            None,
            {"link_id": "l-1", "relationship": "affects", "target_item_id": "item-a"},
        ),
        ItemEvent(
            SRC,
            "linked",
            "system",
            None,
            {"link_id": "l-2", "relationship": "duplicates", "target_item_id": "item-b"},
        ),
    ]


def test_unresolvable_specs_are_counted_and_skipped() -> None:
    specs = [
        LinkSpec("affects", target_ref="nobody"),
        LinkSpec("affects", target_item_id="other-project-item"),
        LinkSpec("affects"),
    ]
    plan = plan_links(SRC, specs, {}, {"item-a"}, [], now=NOW, new_id=counter("l"))
    assert plan.unresolved == 3 and plan.empty and plan.events == []


def test_self_links_and_duplicate_pairs_are_skipped() -> None:
    specs = [
        LinkSpec("affects", target_item_id=SRC),
        LinkSpec("affects", target_ref="me"),
        LinkSpec("affects", target_ref="asset-1"),
        LinkSpec("affects", target_item_id="item-a"),
    ]
    plan = plan_links(SRC, specs, {"me": SRC, "asset-1": "item-a"}, {SRC, "item-a"}, [], now=NOW, new_id=counter("l"))
    assert [(row.target_item_id, row.relationship) for row in plan.add] == [("item-a", "affects")]
    assert plan.unresolved == 0


def test_links_the_report_no_longer_asks_for_are_removed() -> None:
    current = [link("l-old", "item-a"), link("l-keep", "item-b"), link("l-dup", "item-b")]
    specs = [LinkSpec("affects", target_item_id="item-b")]
    plan = plan_links(SRC, specs, {}, {"item-a", "item-b"}, current, now=NOW, new_id=counter("l"))

    assert plan.add == [] and plan.remove == ["l-old", "l-dup"]
    assert [event.event_type for event in plan.events] == ["unlinked", "unlinked"]
    assert plan.events[0].payload == {
        "link_id": "l-old",
        "relationship": "affects",
        "target_item_id": "item-a",
    }


def test_same_target_other_relationship_is_a_different_link() -> None:
    current = [link("l-1", "item-a", "affects")]
    specs = [LinkSpec("duplicates", target_item_id="item-a")]
    plan = plan_links(SRC, specs, {}, {"item-a"}, current, now=NOW, new_id=counter("l"))
    assert plan.remove == ["l-1"] and [row.relationship for row in plan.add] == ["duplicates"]


def test_nothing_changes_when_the_links_already_match() -> None:
    current = [link("l-1", "item-a")]
    specs = [LinkSpec("affects", target_ref="asset-1"), LinkSpec("affects", target_item_id="item-a")]
    plan = plan_links(SRC, specs, {"asset-1": "item-a"}, {"item-a"}, current, now=NOW, new_id=counter("l"))
    assert plan.empty and plan.events == [] and plan.unresolved == 0


def test_an_unresolved_spec_drops_the_link_it_used_to_resolve_to() -> None:
    current = [link("l-1", "item-a")]
    plan = plan_links(
        SRC, [LinkSpec("affects", target_ref="gone")], {}, {"item-a"}, current, now=NOW, new_id=counter("l")
    )
    assert plan.remove == ["l-1"] and plan.unresolved == 1


def test_user_links_are_never_touched() -> None:
    current = [link("l-user", "item-a", origin="user")]
    plan = plan_links(SRC, [], {}, {"item-a"}, current, now=NOW, new_id=counter("l"))
    assert plan.empty and plan.events == []
