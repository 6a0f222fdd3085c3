"""Errors of the span layer, one class per HTTP answer the server gives for them.

The server maps them without knowing which store or decoder raised them: unavailable -> 502,
timeout -> 504, a bad ingest payload -> 400.
"""

from __future__ import annotations


class SpanStoreError(Exception):
    """Any failure of a span store (base class, so callers can catch the family)."""


class SpanStoreUnavailable(SpanStoreError):
    """The span store is unreachable or answered with an error (HTTP 502)."""


class SpanStoreTimeout(SpanStoreError):
    """The span store did not answer in time (HTTP 504)."""


class InvalidSpanPayload(ValueError):
    """A span payload (ingest body, file line) that cannot be decoded; its str says why (HTTP 400)."""


class PayloadTooDeep(InvalidSpanPayload):
    """Attribute values nested past the limit: a hostile payload, refused whole (never partially stored)."""
