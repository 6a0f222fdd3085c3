"""D9: which ref each rebuilt item ends up with, without ever taking a ref over.

A ref is free for an item when nobody holds it, when the item holds it itself, or when its holder is
rebuilt in the same batch and lets go of it (its report now asks for another ref it obtains, or none).
Among several items asking for one free ref the smallest dedupe_key wins. Holders form chains (X wants
Y's ref, Y wants Z's, ...), followed iteratively with memoisation, so the work is linear; a cycle
(X and Y asking for each other's refs) resolves to "everybody keeps what they hold": the conservative
fixed point, and the one a second rebuild reproduces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.model import RefCollision


@dataclass(frozen=True)
class RefRequest:
    """One rebuilt item: the ref its winning report asks for and the ref its row holds today."""

    desired: str | None
    current: str | None
    row_id: str | None
    """The existing row's id (None for an item being healed): a holder may be named by it."""


def resolve_refs(
    requests: Mapping[str, RefRequest], ref_holders: Mapping[str, str]
) -> tuple[dict[str, str | None], list[RefCollision]]:
    """The final ref of every requesting dedupe_key, and the collisions (sorted by dedupe_key).

    `requests` holds only the items this rebuild writes; an item whose row already reflects a later
    span is left out, so a ref it holds counts as held by an outsider.
    """
    contenders: dict[str, str] = {}
    for key, req in requests.items():
        if req.desired is not None and req.desired != req.current:
            best = contenders.get(req.desired)
            if best is None or key < best:
                contenders[req.desired] = key

    final: dict[str, str | None] = {}
    collisions: dict[str, RefCollision] = {}

    def foreign_holder(key: str) -> str | None:
        """Who else holds the ref `key` asks for (None when nobody else does or nothing is asked)."""
        req = requests[key]
        if req.desired is None or req.desired == req.current:
            return None
        holder = ref_holders.get(req.desired)
        if holder is None or holder == key or holder == req.row_id:
            return None
        return holder

    def decide(key: str) -> str | None:
        """Final ref of `key`, given that a holder in this batch (if any) is decided or in a cycle."""
        req = requests[key]
        if req.desired is None or req.desired == req.current:
            return req.desired
        holder = foreign_holder(key)
        # A holder outside the batch keeps its ref; one inside keeps it unless it ended up elsewhere.
        # A holder still on the path (a cycle) counts as keeping it.
        if holder is not None and (holder not in requests or final.get(holder, req.desired) == req.desired):
            collisions[key] = RefCollision(dedupe_key=key, ref=req.desired, held_by=holder)
            return req.current
        winner = contenders[req.desired]
        if winner != key:
            collisions[key] = RefCollision(dedupe_key=key, ref=req.desired, held_by=winner)
            return req.current
        return req.desired

    for start in sorted(requests):
        path = [start]
        on_path = {start}
        while path:
            key = path[-1]
            if key in final:
                path.pop()
                continue
            holder = foreign_holder(key)
            if holder is not None and holder in requests and holder not in final and holder not in on_path:
                path.append(holder)
                on_path.add(holder)
                continue
            final[key] = decide(key)
            path.pop()

    return final, [collisions[key] for key in sorted(collisions)]
