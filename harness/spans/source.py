"""Where a rebuild reads item spans from: the query it asks and the interface every span store offers.

Both the ClickHouse store and the file store answer the same `SpanQuery`, and `SpanQuery.matches`
is the one definition of which spans a rebuild selects (D1, D13).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.model import DecodeStats, Span, SpanItem
from harness.spans.envelopes import (
    MAX_MALFORMED_REASONS,
    PROJECT_ATTR,
    RUN_ATTR,
    SESSION_ATTR,
    canonical_id,
    items_of_span,
)

ORG_RESOURCE_ATTR = "harness.org"
"""Resource attribute the ingest endpoint stamps with the organization of the request (D13)."""


@dataclass(frozen=True)
class SpanQuery:
    """The spans of one project, optionally narrowed to a session and/or runs (both must hold, D1).

    Ids are compared canonically: session ids case-insensitively, UUID-shaped project keys and run ids
    case-insensitively, anything else (a slug, the run id `example`) exactly.
    """

    project_keys: frozenset[str]
    """Slug and UUID of the project; a span matches when its `dreadnode.project` is one of them."""
    org: str | None = None
    """A span carrying resource attribute `harness.org` must equal it; spans without it match any org."""
    session_id: str | None = None
    run_ids: tuple[str, ...] = ()
    """Empty means any run."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "project_keys", frozenset(canonical_id(k) for k in self.project_keys))
        if self.session_id is not None:
            object.__setattr__(self, "session_id", self.session_id.lower())
        object.__setattr__(self, "run_ids", tuple(canonical_id(r) for r in self.run_ids))

    def matches(self, span: Span) -> bool:
        attributes = span.attributes
        project = attributes.get(PROJECT_ATTR)
        if not isinstance(project, str) or canonical_id(project) not in self.project_keys:
            return False
        if self.org is not None:
            org = span.resource_attributes.get(ORG_RESOURCE_ATTR)
            if org is not None and org != self.org:
                return False
        if self.session_id is not None:
            session = attributes.get(SESSION_ATTR)
            if not isinstance(session, str) or session.lower() != self.session_id:
                return False
        if self.run_ids:
            run_id = attributes.get(RUN_ATTR)
            if not isinstance(run_id, str) or canonical_id(run_id) not in self.run_ids:
                return False
        return True


class SpanSource(Protocol):
    """A store of spans a rebuild can read item spans from."""

    def item_spans(self, query: SpanQuery, stats: DecodeStats) -> Iterator[SpanItem]:
        """Items of the spans `query` selects, streamed (never the whole input in memory).

        Counts what it met in `stats`; raises `SpanStoreUnavailable` / `SpanStoreTimeout` when the
        store fails, never for a bad span.
        """
        ...


# --------------------------------------------------------------------------- units: memoizable decoding


SELECTOR_ATTRIBUTES = (PROJECT_ATTR, SESSION_ATTR, RUN_ATTR)
"""The span attributes `SpanQuery.matches` reads (besides the resource's `ORG_RESOURCE_ATTR`)."""


@dataclass
class DecodedSpan:
    """One span of a unit: what `SpanQuery.matches` reads of it, and what `items_of_span` found."""

    selector: Span
    """The span, or a stand-in carrying (at least) the attributes `SpanQuery.matches` reads."""
    stats: DecodeStats
    """What decoding the span counted (`spans` is 1): added to a rebuild's stats only if it matches."""
    items: list[SpanItem]


@dataclass
class DecodedUnit:
    spans: list[DecodedSpan] = field(default_factory=list)
    stats: DecodeStats = field(default_factory=DecodeStats)
    """What the unit itself counted whatever the query (a line that is not JSON, say)."""
    memoizable: bool = True
    """False when the result depends on more than the unit's content (a reason naming its file and line)."""


@dataclass
class SpanUnit:
    """A piece of span input decoded as a whole: a line of a span file, one span of ClickHouse.

    `key` is a digest of exactly what decoding reads (plus `DECODE_VERSION`), so a unit with a known
    key decodes to a known result; None means never memoize. `decode` may be called more than once.
    """

    key: bytes | None
    decode: Callable[[], DecodedUnit]
    size: int = 1
    """How much of the store's input this unit is, in the unit of the store's `input_size` (bytes of a
    span file, spans of ClickHouse): what a progress bar advances by."""


def decode_span(span: Span) -> DecodedSpan:
    """Decode one span of a unit, counting into its own stats."""
    stats = DecodeStats()
    return DecodedSpan(span, stats, items_of_span(span, stats))


def add_stats(into: DecodeStats, delta: DecodeStats) -> None:
    """`into += delta`, keeping the reasons list bounded as `note_malformed` does."""
    into.spans += delta.spans
    into.item_outputs += delta.item_outputs
    into.offloaded += delta.offloaded
    into.malformed += delta.malformed
    room = MAX_MALFORMED_REASONS - len(into.malformed_reasons)
    if room > 0 and delta.malformed_reasons:
        into.malformed_reasons.extend(delta.malformed_reasons[:room])


def items_of_units(units: Iterable[SpanUnit], query: SpanQuery, stats: DecodeStats) -> Iterator[SpanItem]:
    """The items of the spans `query` selects among `units`, counting as a plain decode would."""
    for unit in units:
        decoded = unit.decode()
        add_stats(stats, decoded.stats)
        for span in decoded.spans:
            if query.matches(span.selector):
                add_stats(stats, span.stats)
                yield from span.items


def selector_values(span: Span) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attributes and resource attributes `SpanQuery.matches` reads, JSON-safe for a memo.

    `matches` only ever compares them with strings, so any value that is neither a string nor None
    is kept as a stand-in that is neither, and the memoized span matches exactly as the real one.
    """

    def safe(value: Any) -> Any:
        return value if value is None or isinstance(value, str) else {"non-string": type(value).__name__}

    attributes = {key: safe(span.attributes[key]) for key in SELECTOR_ATTRIBUTES if key in span.attributes}
    resource = ({ORG_RESOURCE_ATTR: safe(span.resource_attributes[ORG_RESOURCE_ATTR])}
                if ORG_RESOURCE_ATTR in span.resource_attributes else {})
    return attributes, resource


def selector_span(attributes: dict[str, Any], resource: dict[str, Any]) -> Span:
    """A stand-in span that `SpanQuery.matches` judges like the span `selector_values` was taken from."""
    return Span("", "", None, "", "UNSPECIFIED", 0, 0, attributes, resource)


class UnitSource(Protocol):
    """A span store whose item spans can be read as memoizable units (see `SpanUnit`)."""

    def item_units(self, query: SpanQuery, stats: DecodeStats) -> Iterator[SpanUnit]:
        """The units holding the spans `query` selects (and maybe others, which `matches` sorts out)."""
        ...

    def input_size(self, query: SpanQuery) -> int:
        """The sum of the `size` of the units `item_units` will yield for `query` (for a progress bar's
        total and ETA): cheap to ask, exact or close."""
        ...
