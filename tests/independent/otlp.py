"""OTLP/HTTP span ingest: protobuf or OTLP/JSON, optionally gzip, decoded into rows of the span table.

A request holding any span the store cannot keep (ids of the wrong length) is refused whole with 400:
a sender learns at once that its exporter is broken, and nothing half of a batch is kept.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .errors import ApiError
from .validate import strict_json

MAX_DECOMPRESSED = 64 * 1024 * 1024
PROTOBUF, JSON = "application/x-protobuf", "application/json"
INT64_MAX = 2**63 - 1
"""SQLite's integers are signed 64-bit; OTLP times are unsigned."""
ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _refuse(detail: str) -> ApiError:
    return ApiError(400, detail)


def _gunzip(body: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_DECOMPRESSED)
    except zlib.error:
        raise _refuse("The body is not valid gzip") from None
    if inflater.unconsumed_tail:
        raise _refuse("The decompressed body is too large")
    if not inflater.eof:
        raise _refuse("The gzip body is truncated")
    return out


def _hex_ids_to_base64(value: Any) -> None:
    """OTLP/JSON writes ids as hex, the protobuf JSON mapping reads bytes as base64: translate in place."""
    if isinstance(value, list):
        for entry in value:
            _hex_ids_to_base64(entry)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key in ID_FIELDS and isinstance(inner, str):
                try:
                    value[key] = base64.b64encode(bytes.fromhex(inner)).decode()
                except ValueError:
                    raise _refuse(f"{key} {inner[:40]!r} is not hex") from None
            elif key != "attributes":
                _hex_ids_to_base64(inner)


def decode_request(body: bytes, content_type: str | None, encoding: str | None) -> tuple[Any, bool]:
    """The ExportTraceServiceRequest and whether it came as JSON; 400 for anything else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise _refuse("OTLP/HTTP accepts application/x-protobuf or application/json")
    coding = (encoding or "identity").strip().lower()
    if coding == "gzip":
        body = _gunzip(body)
    elif coding != "identity":
        raise _refuse(f"Content-Encoding {coding!r} is not supported (gzip or none)")
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError):
            raise _refuse("The body is not a protobuf ExportTraceServiceRequest") from None
        return request, False
    try:
        parsed = strict_json(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _refuse("The body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _refuse("The body is not an OTLP/JSON ExportTraceServiceRequest")
    _hex_ids_to_base64(parsed)
    try:
        json_format.ParseDict(parsed, request, ignore_unknown_fields=True)
    except Exception:  # ParseError, and the TypeError/ValueError the mapping lets through on odd values
        raise _refuse("The body is not an OTLP/JSON ExportTraceServiceRequest") from None
    return request, True


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as plain JSON-able Python."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "double_value" and value.double_value != value.double_value:  # NaN cannot be stored as JSON
        return None
    return getattr(value, kind)


def span_rows(request: Any, org: str) -> list[dict[str, Any]]:
    """One row per span; any span with invalid ids refuses the whole request (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or not any(span.trace_id):
                    raise _refuse(f"span {span.name[:80]!r}: trace_id must be 16 bytes, not all zero")
                if len(span.span_id) != 8 or not any(span.span_id):
                    raise _refuse(f"span {span.name[:80]!r}: span_id must be 8 bytes, not all zero")
                if len(span.parent_span_id) not in (0, 8):
                    raise _refuse(f"span {span.name[:80]!r}: parent_span_id must be empty or 8 bytes")
                attributes = {kv.key: any_value(kv.value) for kv in span.attributes}

                def text(key: str, attrs: dict[str, Any] = attributes) -> str | None:
                    value = attrs.get(key)
                    return value if isinstance(value, str) and value else None

                rows.append({"org": org, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                             "parent_span_id": span.parent_span_id.hex() or None, "name": span.name,
                             "start_ns": min(span.start_time_unix_nano, INT64_MAX),
                             "end_ns": min(span.end_time_unix_nano, INT64_MAX),
                             "project": text("dreadnode.project"), "session_id": text("dreadnode.session.id"),
                             "run_id": text("dreadnode.run.id"), "attributes": attributes})
    return rows
