"""An item's "reported" links follow its latest report; links a user made are never the rebuild's business.

Pure like the rest of the package: the store passes the item's current reported links and the ids it may
point at, and applies the returned plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from harness.model import ItemEvent, LinkRow, LinkSpec

REPORTED = "reported"


@dataclass
class LinkPlan:
    """The link rows to insert and delete so the item's reported links match its report."""

    add: list[LinkRow] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    """Ids of existing reported links the report no longer asks for (or duplicates of one it does)."""
    unresolved: int = 0
    """Specs whose target is not (yet) an item of the project: skipped, a later rebuild may resolve them."""
    events: list[ItemEvent] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.add or self.remove)


def resolve_link_target(spec: LinkSpec, ref_to_id: Mapping[str, str], known_ids: AbstractSet[str]) -> str | None:
    """The target item id of a spec; `target_item_id` wins over `target_ref` when a spec names both."""
    if spec.target_item_id is not None:
        return spec.target_item_id if spec.target_item_id in known_ids else None
    if spec.target_ref is not None:
        return ref_to_id.get(spec.target_ref)
    return None


def plan_links(
    source_item_id: str,
    specs: Sequence[LinkSpec],
    ref_to_id: Mapping[str, str],
    known_ids: AbstractSet[str],
    current: Sequence[LinkRow],
    *,
    now: str,
    new_id: Callable[[], str],
) -> LinkPlan:
    """Diff the report's resolvable (target, relationship) pairs against the item's current reported links."""
    plan = LinkPlan()
    wanted: dict[tuple[str, str], None] = {}  # insertion-ordered set: adds follow the report's order
    for spec in specs:
        target = resolve_link_target(spec, ref_to_id, known_ids)
        if target is None:
            plan.unresolved += 1
        elif target != source_item_id:
            wanted[(target, spec.relationship)] = None

    kept: set[tuple[str, str]] = set()
    for link in current:
        if link.origin != REPORTED or link.source_item_id != source_item_id:
            continue  # defensive: user links are never passed in, and never touched if they are
        pair = (link.target_item_id, link.relationship)
        if pair in wanted and pair not in kept:
            kept.add(pair)
        else:
            plan.remove.append(link.id)
            plan.events.append(_event("unlinked", source_item_id, link.id, link.relationship, link.target_item_id))

    for target, relationship in wanted:
        if (target, relationship) in kept:
            continue
        link = LinkRow(
            id=new_id(),
            source_item_id=source_item_id,
            target_item_id=target,
            relationship=relationship,
            created_at=now,
            origin=REPORTED,
        )
        plan.add.append(link)
        plan.events.append(_event("linked", source_item_id, link.id, relationship, target))
    return plan


def _event(event_type: str, item_id: str, link_id: str, relationship: str, target_item_id: str) -> ItemEvent:
    return ItemEvent(
        item_id=item_id,
        event_type=event_type,
        actor_type="system",
        actor_id=None,
        payload={"link_id": link_id, "relationship": relationship, "target_item_id": target_item_id},
    )
