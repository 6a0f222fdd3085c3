"""The OpenTelemetry Collector's `otel_traces` layout: its DDL, and how a `Span` maps onto one row.

Kept apart from the store so the layout (what a collector-fed platform table looks like) can be read
and reviewed on its own. Every row this module writes is one the collector could have written; the
only addition is a sidecar attribute recording the OTLP types that the string-valued maps lose.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.model import Span, SpanEvent

IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_TABLE = "otel_traces"

TYPES_KEY = "harness.attribute_types"
"""Sidecar entry in an attribute map: JSON {key: OTLP type} for every value that is not a string.

The collector stores every attribute as a string, so `false`, `4242` and `["a"]` come back as text.
Rows we write carry this entry so a read gives back the exact `Span`; rows the collector wrote lack
it and read back as strings, which is what a platform reading its own table sees.
"""

# Collector spellings (current: `Kind.String()`; older: `traceutil.SpanKindStr`), both read back.
_KIND_TO_ROW = {
    "UNSPECIFIED": "Unspecified",
    "INTERNAL": "Internal",
    "SERVER": "Server",
    "CLIENT": "Client",
    "PRODUCER": "Producer",
    "CONSUMER": "Consumer",
}
_STATUS_TO_ROW = {"UNSET": "Unset", "OK": "Ok", "ERROR": "Error"}


def quote_identifier(name: str) -> str:
    """A database or table name, checked and back-quoted: identifiers cannot be bound as parameters."""
    if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
        raise ValueError(f"invalid ClickHouse identifier {name!r}: must match {IDENTIFIER_RE.pattern}")
    return f"`{name}`"


def qualified(database: str, table: str) -> str:
    return f"{quote_identifier(database)}.{quote_identifier(table)}"


def create_database_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}"


def create_table_sql(database: str, table: str) -> str:
    """The collector exporter's traces DDL (TTL left out), plus three skip indexes for rebuilds.

    `idx_dn_*` index the (lowercased: ids compare case-insensitively) map elements a rebuild filters
    on, so finding a 100-item session reads about as many granules in a store of 1M spans as of 10k.
    ClickHouse 24+ only matches them when the query reads the map element itself rather than its
    subcolumn (`optimize_functions_to_subcolumns = 0`, which the store sets on its reads). Only
    indexes are added, never columns, so the table stays the collector's layout.
    """
    return f"""CREATE TABLE IF NOT EXISTS {qualified(database, table)} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_dn_session lower(SpanAttributes['dreadnode.session.id']) TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_dn_run lower(SpanAttributes['dreadnode.run.id']) TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_dn_project lower(SpanAttributes['dreadnode.project']) TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""


INSERT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("ParentSpanId", "String"),
    ("TraceState", "String"),
    ("SpanName", "LowCardinality(String)"),
    ("SpanKind", "LowCardinality(String)"),
    ("ServiceName", "LowCardinality(String)"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeName", "String"),
    ("ScopeVersion", "String"),
    ("SpanAttributes", "Map(LowCardinality(String), String)"),
    ("Duration", "UInt64"),
    ("StatusCode", "LowCardinality(String)"),
    ("StatusMessage", "String"),
    ("Events.Timestamp", "Array(DateTime64(9))"),
    ("Events.Name", "Array(LowCardinality(String))"),
    ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
    ("Links.TraceId", "Array(String)"),
    ("Links.SpanId", "Array(String)"),
    ("Links.TraceState", "Array(String)"),
    ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
)
"""Column names and types of an insert, in order (types given so no DESCRIBE round trip is needed)."""

SELECT_COLUMNS = """toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ParentSpanId, SpanName, SpanKind,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage,
    arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Events.Name, Events.Attributes"""
"""What a read selects, in the order `row_to_span` expects; times as integer nanoseconds (exact)."""


# --------------------------------------------------------------------------- attribute values


def _json_default(value: object) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot store {type(value).__name__} in an attribute")


def _stringify(value: Any) -> tuple[str, str | None]:
    """The collector's string for a value (`AsString`), and its type tag when it is not a string."""
    if isinstance(value, str):
        return value, None
    if value is None:
        return "", "empty"
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, float):
        return repr(value), "double"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii"), "bytes"
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default), "kvlist"
    if isinstance(value, (list, tuple)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default), "array"
    raise TypeError(f"cannot store {type(value).__name__} in an attribute")


def _typed(text: str, tag: str | None) -> Any:
    if tag == "empty":
        return None
    if tag == "bool":
        return text == "true"
    if tag == "int":
        return int(text)
    if tag == "double":
        return float(text)
    if tag == "bytes":
        return base64.b64decode(text)
    if tag in ("kvlist", "array"):
        return json.loads(text)
    return text


def attributes_to_row(attributes: Mapping[str, Any]) -> dict[str, str]:
    """An attribute dict as the collector stores it, plus the `TYPES_KEY` sidecar when needed."""
    row: dict[str, str] = {}
    types: dict[str, str] = {}
    for key, value in attributes.items():
        if key == TYPES_KEY:
            continue
        row[key], tag = _stringify(value)
        if tag is not None:
            types[key] = tag
    if types:
        row[TYPES_KEY] = json.dumps(types, separators=(",", ":"), sort_keys=True)
    return row


_NO_TYPES: Mapping[str, Any] = {}


@functools.lru_cache(maxsize=1024)
def _types_of(raw_types: str) -> Mapping[str, Any]:
    """The sidecar parsed (read only: shared between rows; spans of one kind all carry the same one)."""
    try:
        loaded = json.loads(raw_types)
    except ValueError:
        return _NO_TYPES
    return loaded if isinstance(loaded, dict) else _NO_TYPES


def attributes_from_row(row: Mapping[str, str]) -> dict[str, Any]:
    """The inverse of `attributes_to_row`; a map without a (valid) sidecar reads back as strings."""
    raw_types = row.get(TYPES_KEY)
    types = _types_of(raw_types) if raw_types else _NO_TYPES
    out: dict[str, Any] = {}
    for key, text in row.items():
        if key == TYPES_KEY:
            continue
        tag = types.get(key)
        try:
            out[key] = _typed(text, tag if isinstance(tag, str) else None)
        except ValueError:
            out[key] = text  # a sidecar that lies about a value: keep what the table holds
    return out


# --------------------------------------------------------------------------- rows


def span_to_row(span: Span, org: str | None) -> list[Any]:
    """One insert row (column order of `INSERT_COLUMNS`); `org` becomes resource `harness.org`."""
    resource = dict(span.resource_attributes)
    if org is not None:
        resource["harness.org"] = org
    service = resource.get("service.name")
    return [
        span.start_time_unix_nano,
        span.trace_id,
        span.span_id,
        span.parent_span_id or "",
        "",
        span.name,
        _KIND_TO_ROW.get(span.kind, "Unspecified"),
        service if isinstance(service, str) else "",
        attributes_to_row(resource),
        span.scope_name,
        span.scope_version,
        attributes_to_row(span.attributes),
        max(0, span.end_time_unix_nano - span.start_time_unix_nano),
        _STATUS_TO_ROW.get(span.status_code, "Unset"),
        span.status_message,
        [e.time_unix_nano for e in span.events],
        [e.name for e in span.events],
        [attributes_to_row(e.attributes) for e in span.events],
        [],
        [],
        [],
        [],
    ]


def _enum(value: str, names: Mapping[str, str], prefix: str, default: str) -> str:
    """`Internal` or `SPAN_KIND_INTERNAL` -> `INTERNAL` (the `Span` spelling)."""
    key = value.upper().removeprefix(prefix)
    return key if key in names else default


def row_to_span(row: Sequence[Any]) -> Span:
    """A `Span` from a row selected with `SELECT_COLUMNS`."""
    (
        start,
        trace_id,
        span_id,
        parent,
        name,
        kind,
        resource,
        scope_name,
        scope_version,
        attributes,
        duration,
        status,
        status_message,
        event_times,
        event_names,
        event_attrs,
    ) = row
    return Span(
        trace_id=str(trace_id),
        span_id=str(span_id),
        parent_span_id=str(parent) or None,
        name=str(name),
        kind=_enum(str(kind), _KIND_TO_ROW, "SPAN_KIND_", "UNSPECIFIED"),
        start_time_unix_nano=int(start),
        end_time_unix_nano=int(start) + int(duration),
        attributes=attributes_from_row(attributes),
        resource_attributes=attributes_from_row(resource),
        scope_name=str(scope_name),
        scope_version=str(scope_version),
        status_code=_enum(str(status), _STATUS_TO_ROW, "STATUS_CODE_", "UNSET"),
        status_message=str(status_message),
        events=tuple(
            SpanEvent(name=str(n), time_unix_nano=int(t), attributes=attributes_from_row(a))
            for t, n, a in zip(event_times, event_names, event_attrs, strict=False)
        ),
    )
