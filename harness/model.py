"""The shared vocabulary of the lower layers: what a span carries and what an item row holds.

`harness.spans` produces `SpanItem`s, `harness.reconcile` turns them (plus existing `ItemRow`s) into
row changes, and `harness.items` stores rows. None of those imports another; all import this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSONObject = dict[str, Any]

ENVELOPE_KEYS: tuple[str, ...] = (
    "item_type",
    "dedupe_key",
    "ref",
    "title",
    "status",
    "notes",
    "schema_ref",
    "session_id",
    "trace_id",
    "span_id",
    "capability",
    "capability_version",
    "data",
    "links",
)
"""The 14 keys of an item envelope as the SDK records it on a span (dreadnode 2.0.52: tools/report_items.py)."""

SPAN_OWNED_FIELDS: tuple[str, ...] = (
    "item_type",
    "data",
    "title",
    "ref",
    "schema_ref",
    "capability",
    "capability_version",
    "session_id",
    "trace_id",
    "span_id",
)
"""Row fields a rebuild refreshes from the span (D8); links are refreshed separately."""

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
DISPOSITION_STATUSES: tuple[str, ...] = ("open", "triaged", "verified", "resolved", "dismissed")
ITEM_SOURCES: tuple[str, ...] = ("api", "runtime", "extracted")


@dataclass(frozen=True)
class LinkSpec:
    """A link as an agent reports it: a relationship to a target named by ref or by item id."""

    relationship: str
    target_ref: str | None = None
    target_item_id: str | None = None


@dataclass(frozen=True)
class ItemEnvelope:
    """One item as recorded on a span, ids already filled from the span where the envelope had null."""

    item_type: str
    dedupe_key: str
    ref: str | None
    title: str | None
    status: str | None
    notes: str | None
    schema_ref: str | None
    session_id: str | None
    trace_id: str | None
    span_id: str | None
    capability: str | None
    capability_version: str | None
    data: JSONObject
    links: tuple[LinkSpec, ...] = ()


@dataclass(frozen=True, order=True)
class SpanOrder:
    """Total order of item reports: a later span wins when one dedupe_key rides on several spans.

    Compared field by field, so the result of a rebuild never depends on the order spans are read in.
    """

    end_time_unix_nano: int
    trace_id: str
    span_id: str
    position: int

    def encode(self) -> str:
        """A string that sorts like the tuple, for storing beside the row."""
        return f"{self.end_time_unix_nano:020d}:{self.trace_id}:{self.span_id}:{self.position:06d}"


@dataclass(frozen=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: JSONObject


@dataclass(frozen=True)
class Span:
    """One span, decoded from any wire or file format into plain Python values.

    Ids are lowercase hex (32 chars for traces, 16 for spans); attribute values are the decoded
    OTLP AnyValue (str, bool, int, float, list or dict).
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    """OTLP kind name without prefix: INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER or UNSPECIFIED."""
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: JSONObject
    resource_attributes: JSONObject = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
    status_code: str = "UNSET"
    status_message: str = ""
    events: tuple[SpanEvent, ...] = ()


@dataclass(frozen=True)
class SpanItem:
    """An envelope together with the span it was read from."""

    envelope: ItemEnvelope
    project: str | None
    """The span's `dreadnode.project` attribute (slug or UUID); None means it belongs to no project (D13)."""
    run_id: str | None
    session_id: str | None
    order: SpanOrder


@dataclass
class DecodeStats:
    """What decoding met besides usable envelopes: never fatal, always counted."""

    spans: int = 0
    item_outputs: int = 0
    offloaded: int = 0
    malformed: int = 0
    malformed_reasons: list[str] = field(default_factory=list)

    def add(self, other: DecodeStats) -> None:
        self.spans += other.spans
        self.item_outputs += other.item_outputs
        self.offloaded += other.offloaded
        self.malformed += other.malformed
        self.malformed_reasons.extend(other.malformed_reasons)


@dataclass(frozen=True)
class Disposition:
    """The human triage overlay (API reference: Items; shape D15). Never written by a rebuild of an existing row."""

    status: str | None
    notes: str | None
    updated_at: str | None
    updated_by: str | None

    def to_json(self) -> JSONObject:
        return {
            "status": self.status,
            "notes": self.notes,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class ItemRow:
    """An item as the store holds it."""

    id: str
    organization_id: str
    project_id: str
    item_type: str
    data: JSONObject
    title: str | None
    ref: str | None
    dedupe_key: str | None
    schema_ref: str | None
    session_id: str | None
    trace_id: str | None
    span_id: str | None
    capability: str | None
    capability_version: str | None
    source: str
    disposition: Disposition | None
    created_at: str
    created_by: str | None
    updated_at: str
    span_order: str | None = None
    """`SpanOrder.encode()` of the span the row was last materialized from; None for a row only POSTed."""
    link_specs: tuple[LinkSpec, ...] = ()
    """The links the item's own report asked for (inline in create_item or on its span)."""


@dataclass(frozen=True)
class ItemEvent:
    """An entry of an item's history; `seq` is assigned by the store."""

    item_id: str
    event_type: str
    """created | updated | linked | unlinked | deleted"""
    actor_type: str
    """agent | user | system"""
    actor_id: str | None
    payload: JSONObject


@dataclass(frozen=True)
class RowRefresh:
    """Span-owned fields of an existing row that a rebuild changes (only those that differ)."""

    item_id: str
    changes: JSONObject
    """Field name -> new value; keys drawn from SPAN_OWNED_FIELDS plus `span_order`, `link_specs` and
    `updated_at`. `updated_at` is present exactly when the refresh is a real change (D8, D10); a refresh
    of `span_order` alone only records which span the row now reflects."""

    @property
    def is_change(self) -> bool:
        return "updated_at" in self.changes


@dataclass(frozen=True)
class RefCollision:
    """A span asked for a ref another item of the project already holds (D9): counted, never taken over."""

    dedupe_key: str
    ref: str
    held_by: str
    """The dedupe_key (or id, for a row without one) of the item that keeps the ref."""


@dataclass
class RowChanges:
    """What one reconcile decided: applied by the items store in one transaction."""

    creates: list[ItemRow] = field(default_factory=list)
    refreshes: list[RowRefresh] = field(default_factory=list)
    events: list[ItemEvent] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    """Ids of existing rows the spans confirmed without a change (a `span_order`-only refresh included)."""
    ref_collisions: list[RefCollision] = field(default_factory=list)
    preserved: list[str] = field(default_factory=list)
    """Ids of existing rows with a disposition that the rebuild touched (refreshed or confirmed) and kept."""
    processed: int = 0
    """D6: distinct items (by dedupe_key) found in the spans and written or confirmed."""
    superseded: int = 0
    """Envelopes passed over because a later span reported the same dedupe_key."""

    @property
    def healed(self) -> list[str]:
        return [row.id for row in self.creates]


@dataclass(frozen=True)
class LinkRow:
    """A stored link between two items of one project (D15 shape, plus who made it)."""

    id: str
    source_item_id: str
    target_item_id: str
    relationship: str
    created_at: str
    origin: str
    """`reported`: asked for by the item's own report (inline on create, or on its span), refreshed by
    rebuild. `user`: made through create_item_link, never touched by a rebuild."""
