"""The SDK's local span mirror (`spans_<session>.jsonl`): one flat JSON span per line.

The mirror is what an operator has on disk when the platform never got the spans, so a rebuild from
it must give the same items as one from OTLP. Also accepts the OpenTelemetry SDK's own
`ReadableSpan.to_json()` shape (`context`, `0x` ids, `SpanKind.X`), which differs only in details.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from harness.model import Span, SpanEvent
from harness.spans.errors import InvalidSpanPayload
from harness.spans.otlp import SPAN_KINDS, STATUS_CODES, enum_name, hex_id

_FRACTION = re.compile(r"\.(\d+)")
_BAD_INPUT = (TypeError, ValueError, AttributeError, KeyError, OverflowError)


def iso_to_unix_nanos(value: object, what: str) -> int:
    """ISO-8601 time (naive means UTC) or integer nanoseconds, to nanoseconds, keeping all 9 digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise InvalidSpanPayload(f"{what} must be an ISO-8601 time")
    fraction = _FRACTION.search(value)
    nanos = 0
    text = value
    if fraction:  # datetime keeps microseconds only; OTel times have nanoseconds
        nanos = int((fraction.group(1) + "000000000")[:9])
        text = value[: fraction.start()] + value[fraction.end() :]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidSpanPayload(f"{what} {value!r} is not an ISO-8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return calendar.timegm(moment.utctimetuple()) * 1_000_000_000 + nanos


def _id(value: object, n_bytes: int, what: str) -> str:
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        value = value[2:]
    return hex_id(value, n_bytes, what)


def _dict(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpanPayload(f"{what} must be an object")
    return dict(value)


def _status(value: object) -> tuple[str, str]:
    if isinstance(value, Mapping):  # ReadableSpan.to_json(): {"status_code": "UNSET", "description": ...}
        code = str(value.get("status_code") or "UNSET").removeprefix("StatusCode.")
        return enum_name(code, STATUS_CODES, "STATUS_CODE_", "status"), str(value.get("description") or "")
    code = str(value or "UNSET").removeprefix("StatusCode.")
    return enum_name(code, STATUS_CODES, "STATUS_CODE_", "status"), ""


def _resource(value: object) -> dict[str, Any]:
    resource = _dict(value, "resource")
    inner = resource.get("attributes")
    if isinstance(inner, Mapping) and set(resource) <= {"attributes", "schema_url"}:
        return dict(inner)  # ReadableSpan.to_json() nests the attributes
    return resource


def _event(value: object) -> SpanEvent:
    event = _dict(value, "an event")
    return SpanEvent(
        name=str(event.get("name") or ""),
        time_unix_nano=iso_to_unix_nanos(event.get("timestamp", 0), "event timestamp"),
        attributes=_dict(event.get("attributes"), "event attributes"),
    )


def _decode(obj: Mapping[str, Any]) -> Span:
    context = obj.get("context")
    ids = context if isinstance(context, Mapping) else obj
    trace_id = _id(ids.get("trace_id"), 16, "trace_id")
    span_id = _id(ids.get("span_id"), 8, "span_id")
    if not trace_id or not span_id:
        raise InvalidSpanPayload("a mirror span has no trace_id or no span_id")
    if "start_time" not in obj or "end_time" not in obj:
        raise InvalidSpanPayload("a mirror span has no start_time or no end_time")
    parent = obj.get("parent_id", obj.get("parent_span_id"))
    name = obj.get("name") or ""
    if not isinstance(name, str):
        raise InvalidSpanPayload("a span name must be a string")
    status_code, status_message = _status(obj.get("status"))
    scope = _dict(obj.get("scope") or obj.get("instrumentation_scope"), "scope")
    events = obj.get("events") or []
    if not isinstance(events, list):
        raise InvalidSpanPayload("events must be an array")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=(_id(parent, 8, "parent_id") or None) if parent is not None else None,
        name=name,
        kind=enum_name(str(obj.get("kind") or "").removeprefix("SpanKind.") or None, SPAN_KINDS, "SPAN_KIND_", "kind"),
        start_time_unix_nano=iso_to_unix_nanos(obj["start_time"], "start_time"),
        end_time_unix_nano=iso_to_unix_nanos(obj["end_time"], "end_time"),
        attributes=_dict(obj.get("attributes"), "attributes"),
        resource_attributes=_resource(obj.get("resource")),
        scope_name=str(scope.get("name") or ""),
        scope_version=str(scope.get("version") or ""),
        status_code=status_code,
        status_message=str(obj.get("status_message") or status_message),
        events=tuple(_event(event) for event in events),
    )


def decode_mirror_line(obj: Mapping[str, Any]) -> Span:
    """One span of the SDK mirror (ISO times, flat attributes, `resource` dict, `parent_id`)."""
    if not isinstance(obj, Mapping):
        raise InvalidSpanPayload("a mirror span must be a JSON object")
    try:
        return _decode(obj)
    except InvalidSpanPayload:
        raise
    except _BAD_INPUT as exc:
        raise InvalidSpanPayload(f"malformed mirror span: {exc}") from exc
