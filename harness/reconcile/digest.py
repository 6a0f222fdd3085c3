"""Digests that let a rebuild skip what did not change, without deciding anything differently.

A row's digest names the span report it fully reflects: every span-owned field, the links and the span
order as that report dictates, with the ref it asks for granted. When the winning report of a key has
the digest its row carries, reconcile would find nothing to refresh (D8) and confirm the row as
unchanged, so rebuild confirms it without reading the row in full. Rows whose ref was refused (D9), and
rows any other writer changed since, carry no digest and are always compared in full.

Pure, like the rest of the package.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from harness.model import ItemRow, RowChanges, SpanItem

DIGEST_VERSION = "1"
"""Part of every digest: bump it when what a report dictates changes, and every row compares in full once."""


def report_digest(item: SpanItem) -> bytes:
    """A digest of everything in a report that reconcile reads, plus its span order.

    Keys are not sorted: a report read twice from the same span text gives the same digest, and two
    texts that differ only in key order merely compare in full once.
    """
    e = item.envelope
    o = item.order
    text = _encode(
        [DIGEST_VERSION, e.item_type, e.dedupe_key, e.ref, e.title, e.status, e.notes, e.schema_ref, e.session_id,
         e.trace_id, e.span_id, e.capability, e.capability_version, e.data,
         [[link.relationship, link.target_ref, link.target_item_id] for link in e.links] if e.links else None,
         o.end_time_unix_nano, o.trace_id, o.span_id, o.position]
    )
    return hashlib.blake2b(text.encode("ascii"), digest_size=16).digest()


_encode = json.JSONEncoder(separators=(",", ":"), default=repr).encode
"""ASCII output (the fast C path); `default=repr` only for values JSON cannot hold, which decoding never makes."""


def reflected_digests(
    winners: Mapping[str, SpanItem],
    existing: Mapping[str, ItemRow],
    changes: RowChanges,
    digests: Mapping[str, bytes],
) -> dict[str, bytes | None]:
    """Row id -> the digest it carries after `changes` are applied (None: it must carry none).

    `winners` are the reports `changes` were reconciled from, `existing` the rows they met, `digests`
    the digest of each winner by dedupe_key. A row confirmed because it reflects a later span keeps
    whatever it carries and is left out.
    """
    created = {row.dedupe_key: row for row in changes.creates}
    refreshed = {r.item_id: r.changes for r in changes.refreshes}
    result: dict[str, bytes | None] = {}
    for key, item in winners.items():
        desired = item.envelope.ref
        row = existing.get(key)
        if row is None:
            new = created.get(key)
            if new is not None and new.ref == desired:
                result[new.id] = digests[key]
            continue
        if row.span_order is not None and row.span_order > item.order.encode():
            continue
        final_ref = refreshed.get(row.id, {}).get("ref", row.ref)
        result[row.id] = digests[key] if final_ref == desired else None
    return result
