"""Where a rebuild reads item spans from: the query it asks and the interface every span store offers.

Both the ClickHouse store and the file store answer the same `SpanQuery`, and `SpanQuery.matches`
is the one definition of which spans a rebuild selects (D1, D13).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from harness.model import DecodeStats, Span, SpanItem
from harness.spans.envelopes import PROJECT_ATTR, RUN_ATTR, SESSION_ATTR, canonical_id

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
