"""OTLP traces in and out: OTLP/JSON and protobuf decoding, the OTLP/HTTP ingest body, and encoders.

Everything lands in `harness.model.Span` (lowercase hex ids, plain Python attribute values), so the
layers above never see a wire format. Bad input only ever raises `InvalidSpanPayload`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from harness.model import Span, SpanEvent
from harness.spans.errors import InvalidSpanPayload, PayloadTooDeep

MiB = 1 << 20
DEFAULT_MAX_ATTRIBUTE_DEPTH = 32
SPAN_KINDS: tuple[str, ...] = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES: tuple[str, ...] = ("UNSET", "OK", "ERROR")
PROTOBUF_MEDIA_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_MEDIA_TYPE = "application/json"

_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_SURROGATE_ESCAPE_TEXT = r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
"""A JSON escape of a UTF-16 surrogate: paired ones are fine, an unpaired one is not Unicode text."""
_SURROGATE_ESCAPE = re.compile(_SURROGATE_ESCAPE_TEXT)
_SURROGATE_ESCAPE_BYTES = re.compile(_SURROGATE_ESCAPE_TEXT.encode())
# Decoding errors that bad input can provoke deep inside the converters; all become InvalidSpanPayload.
_BAD_INPUT = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError)


# --------------------------------------------------------------------------- shared helpers


def hex_id(value: object, n_bytes: int, what: str) -> str:
    """An id as lowercase hex: OTLP/JSON writes hex, the protobuf JSON mapping base64; '' stays ''."""
    if not isinstance(value, str):
        raise InvalidSpanPayload(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        return ""
    if len(value) == 2 * n_bytes and _HEX_RE.fullmatch(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != n_bytes:
        raise InvalidSpanPayload(
            f"{what} {value[:64]!r} is neither {2 * n_bytes} hex digits nor base64 of {n_bytes} bytes"
        )
    return raw.hex()


def enum_name(value: object, names: tuple[str, ...], prefix: str, what: str) -> str:
    """An OTLP enum given as number, full name (`SPAN_KIND_SERVER`) or short name, as the short name.

    Unknown numbers map to the first name (the enum is open in protobuf, so receivers must tolerate them).
    """
    if value is None:
        return names[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else names[0]
    if isinstance(value, str):
        name = value.upper().removeprefix(prefix)
        if name in names:
            return name
        if name.isdigit():
            return enum_name(int(name), names, prefix, what)
    raise InvalidSpanPayload(f"{what} {value!r} is not a known value")


def unix_nanos(value: object, what: str) -> int:
    """A uint64 timestamp, which the protobuf JSON mapping writes as a decimal string."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidSpanPayload(f"{what} must be an integer")
    if isinstance(value, int):
        nanos = value
    elif (isinstance(value, str) and value.isascii() and value.isdigit()) or (
        isinstance(value, float) and value.is_integer()
    ):
        nanos = int(value)
    else:
        raise InvalidSpanPayload(f"{what} {value!r} is not an integer number of nanoseconds")
    if not 0 <= nanos < 1 << 64:
        raise InvalidSpanPayload(f"{what} must be a uint64")
    return nanos


def _field(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    """Protobuf JSON parsers accept the lowerCamelCase and the original field name: so do we."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpanPayload(f"{what} must be an object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if type(value) is list:
        return value
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidSpanPayload(f"{what} must be an array")
    return value


# --------------------------------------------------------------------------- OTLP/JSON decoding


def escapes_unpaired_surrogate(text: str | bytes, parsed: Any) -> bool:
    """Whether JSON `text`, parsed into `parsed`, escapes a lone surrogate: a search of the text first,
    so that only a text holding a surrogate escape at all is walked."""
    found = _SURROGATE_ESCAPE_BYTES.search(text) if isinstance(text, bytes) else _SURROGATE_ESCAPE.search(text)
    return found is not None and has_unpaired_surrogate(parsed)


def has_unpaired_surrogate(value: Any) -> bool:
    """True when a string in `value` (keys included, any depth) holds a lone surrogate (`"\\ud800"`).

    Python's json accepts such escapes, but the text cannot be encoded as UTF-8: SQLite, ClickHouse
    and every client would fail on it later. Walks iteratively, so depth is no problem.
    """
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if not current.isascii():
                try:
                    current.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, (list, tuple)):
            stack.extend(current)
    return False




INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _json_int(value: object) -> int:
    """An int64 AnyValue; beyond 64 bits is refused as protobuf refuses it (and a JSON parser may have
    read such a number as a float: see `harness.spans.files.parse_line`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) or (isinstance(value, float) and value.is_integer() and abs(value) < 2.0**63):
        number = int(value)
    else:
        raise InvalidSpanPayload(f"intValue {value!r} is not an int64 integer")
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidSpanPayload(f"intValue {value!r} is out of the int64 range")
    return number


def _json_double(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return float(value)  # "NaN", "Infinity", "-Infinity" per the protobuf JSON mapping
    raise InvalidSpanPayload(f"doubleValue {value!r} is not a number")


def _json_any(value: object, depth: int, limit: int) -> Any:
    """One AnyValue; `depth` counts array/kvlist nesting so a nesting bomb stops early."""
    if depth > limit:
        raise PayloadTooDeep(f"attribute values are nested deeper than {limit} levels")
    if not isinstance(value, Mapping):
        raise InvalidSpanPayload("an attribute value must be an AnyValue object")
    for key, inner in value.items():
        if key in ("stringValue", "string_value"):
            if not isinstance(inner, str):
                raise InvalidSpanPayload("stringValue must be a string")
            return inner
        if key in ("boolValue", "bool_value"):
            if not isinstance(inner, bool):
                raise InvalidSpanPayload("boolValue must be true or false")
            return inner
        if key in ("intValue", "int_value"):
            return _json_int(inner)
        if key in ("doubleValue", "double_value"):
            return _json_double(inner)
        if key in ("arrayValue", "array_value"):
            values = _list(_mapping(inner, "arrayValue").get("values"), "arrayValue.values")
            return [_json_any(item, depth + 1, limit) for item in values]
        if key in ("kvlistValue", "kvlist_value"):
            values = _list(_mapping(inner, "kvlistValue").get("values"), "kvlistValue.values")
            return _json_attributes(values, depth + 1, limit)
        if key in ("bytesValue", "bytes_value"):
            if not isinstance(inner, str):
                raise InvalidSpanPayload("bytesValue must be a base64 string")
            try:
                return base64.b64encode(base64.b64decode(inner, validate=True)).decode("ascii")
            except (binascii.Error, ValueError) as exc:
                raise InvalidSpanPayload("bytesValue is not valid base64") from exc
    return None  # an empty AnyValue, or only unknown keys (which receivers must ignore)


def _json_attributes(entries: object, depth: int, limit: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for entry in entries if type(entries) is list else _list(entries, "attributes"):
        if type(entry) is not dict:
            entry = _mapping(entry, "an attribute")
        key = entry.get("key")
        if not isinstance(key, str):
            raise InvalidSpanPayload("an attribute key must be a string")
        raw = entry.get("value")
        if type(raw) is dict and len(raw) == 1 and depth <= limit:
            # The common case, decided as `_json_any` would: one key, a string value.
            inner = raw.get("stringValue")
            if type(inner) is str:
                attributes[key] = inner
                continue
        attributes[key] = None if raw is None else _json_any(raw, depth, limit)
    return attributes


def _json_event(event: object, limit: int) -> SpanEvent:
    event = _mapping(event, "an event")
    name = event.get("name") or ""
    if not isinstance(name, str):
        raise InvalidSpanPayload("an event name must be a string")
    return SpanEvent(
        name=name,
        time_unix_nano=unix_nanos(_field(event, "timeUnixNano", "time_unix_nano"), "event timeUnixNano"),
        attributes=_json_attributes(event.get("attributes"), 1, limit),
    )


def _json_span(raw: object, resource: dict[str, Any], scope: tuple[str, str], limit: int) -> Span:
    span = _mapping(raw, "a span")
    trace_id = hex_id(_field(span, "traceId", "trace_id"), 16, "traceId")
    span_id = hex_id(_field(span, "spanId", "span_id"), 8, "spanId")
    if not trace_id or not span_id:
        raise InvalidSpanPayload("a span has no traceId or no spanId")
    parent_raw = _field(span, "parentSpanId", "parent_span_id")
    parent = hex_id(parent_raw, 8, "parentSpanId") if parent_raw is not None else ""
    name = span.get("name") or ""
    if not isinstance(name, str):
        raise InvalidSpanPayload("a span name must be a string")
    status = _mapping(span.get("status"), "status")
    message = status.get("message") or ""
    if not isinstance(message, str):
        raise InvalidSpanPayload("status.message must be a string")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent or None,
        name=name,
        kind=enum_name(span.get("kind"), SPAN_KINDS, "SPAN_KIND_", "kind"),
        start_time_unix_nano=unix_nanos(_field(span, "startTimeUnixNano", "start_time_unix_nano"), "start"),
        end_time_unix_nano=unix_nanos(_field(span, "endTimeUnixNano", "end_time_unix_nano"), "end"),
        attributes=_json_attributes(span.get("attributes"), 1, limit),
        resource_attributes=resource,
        scope_name=scope[0],
        scope_version=scope[1],
        status_code=enum_name(status.get("code"), STATUS_CODES, "STATUS_CODE_", "status.code"),
        status_message=message,
        events=tuple(_json_event(event, limit) for event in _list(span.get("events"), "events")),
    )


def _keep(decode: Callable[[], Span], spans: list[Span], rejected: list[str] | None) -> None:
    """Decode one span into `spans`; with `rejected`, a span that cannot be kept is counted, not fatal.

    A hostile payload (nesting past the limit) is refused whole either way.
    """
    try:
        spans.append(decode())
    except PayloadTooDeep:
        raise
    except InvalidSpanPayload as exc:
        if rejected is None:
            raise
        rejected.append(str(exc))


def _json_spans(doc: object, limit: int, rejected: list[str] | None = None) -> list[Span]:
    """With `rejected`, a span that cannot be kept is left out and its reason appended (OTLP partial success)."""
    if not isinstance(doc, Mapping):
        raise InvalidSpanPayload("an OTLP/JSON document must be an object with resourceSpans")
    spans: list[Span] = []
    for rs in _list(_field(doc, "resourceSpans", "resource_spans"), "resourceSpans"):
        rs = _mapping(rs, "a resourceSpans entry")
        resource_doc = _mapping(rs.get("resource"), "resource")
        resource = _json_attributes(resource_doc.get("attributes"), 1, limit)
        for ss in _list(_field(rs, "scopeSpans", "scope_spans"), "scopeSpans"):
            ss = _mapping(ss, "a scopeSpans entry")
            scope_doc = _mapping(ss.get("scope"), "scope")
            scope = (str(scope_doc.get("name") or ""), str(scope_doc.get("version") or ""))
            for raw in _list(ss.get("spans"), "spans"):
                _keep(functools.partial(_json_span, raw, resource, scope, limit), spans, rejected)
    return spans


def decode_otlp_json(
    doc: Mapping[str, Any], *, max_attribute_depth: int = DEFAULT_MAX_ATTRIBUTE_DEPTH,
    rejected: list[str] | None = None,
) -> list[Span]:
    """Spans of an OTLP/JSON ExportTraceServiceRequest (`{"resourceSpans": [...]}`)."""
    try:
        return _json_spans(doc, max_attribute_depth, rejected)
    except InvalidSpanPayload:
        raise
    except _BAD_INPUT as exc:
        raise InvalidSpanPayload(f"malformed OTLP/JSON document: {exc}") from exc


# --------------------------------------------------------------------------- protobuf decoding


def _pb_any(value: AnyValue, depth: int, limit: int) -> Any:
    if depth > limit:
        raise PayloadTooDeep(f"attribute values are nested deeper than {limit} levels")
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [_pb_any(item, depth + 1, limit) for item in value.array_value.values]
    if which == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values, depth + 1, limit)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def _pb_attributes(entries: Iterable[KeyValue], depth: int, limit: int) -> dict[str, Any]:
    return {kv.key: _pb_any(kv.value, depth, limit) for kv in entries}


def _pb_id(raw: bytes, n_bytes: int, what: str) -> str:
    if len(raw) != n_bytes:
        raise InvalidSpanPayload(f"{what} must be {n_bytes} bytes, got {len(raw)}")
    return raw.hex()


def _pb_span(s: Any, resource: dict[str, Any], scope: Any, limit: int) -> Span:
    return Span(
        trace_id=_pb_id(s.trace_id, 16, "trace_id"),
        span_id=_pb_id(s.span_id, 8, "span_id"),
        parent_span_id=_pb_id(s.parent_span_id, 8, "parent_span_id") if s.parent_span_id else None,
        name=s.name,
        kind=enum_name(s.kind, SPAN_KINDS, "", "kind"),
        start_time_unix_nano=s.start_time_unix_nano,
        end_time_unix_nano=s.end_time_unix_nano,
        attributes=_pb_attributes(s.attributes, 1, limit),
        resource_attributes=resource,
        scope_name=scope.name,
        scope_version=scope.version,
        status_code=enum_name(s.status.code, STATUS_CODES, "", "status.code"),
        status_message=s.status.message,
        events=tuple(
            SpanEvent(e.name, e.time_unix_nano, _pb_attributes(e.attributes, 1, limit)) for e in s.events
        ),
    )


def _pb_spans(request: Any, limit: int, rejected: list[str] | None = None) -> list[Span]:
    spans: list[Span] = []
    for rs in request.resource_spans:
        resource = _pb_attributes(rs.resource.attributes, 1, limit)
        for ss in rs.scope_spans:
            for s in ss.spans:
                _keep(functools.partial(_pb_span, s, resource, ss.scope, limit), spans, rejected)
    return spans


def decode_otlp_protobuf(
    data: bytes, *, max_attribute_depth: int = DEFAULT_MAX_ATTRIBUTE_DEPTH, rejected: list[str] | None = None
) -> list[Span]:
    """Spans of a binary ExportTraceServiceRequest, as the SDK's OTLP/HTTP exporter sends them."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise InvalidSpanPayload(f"body is not a valid OTLP protobuf ExportTraceServiceRequest ({exc})") from exc
    try:
        return _pb_spans(request, max_attribute_depth, rejected)
    except InvalidSpanPayload:
        raise
    except _BAD_INPUT as exc:
        raise InvalidSpanPayload(f"malformed OTLP protobuf request: {exc}") from exc


# --------------------------------------------------------------------------- the OTLP/HTTP body


def _media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress gzip (possibly several members) incrementally, never producing more than `limit` bytes."""
    out = bytearray()
    data = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = data
        while not inflater.eof:
            chunk = inflater.decompress(pending, limit + 1 - len(out))
            if not chunk and not inflater.unconsumed_tail:
                raise InvalidSpanPayload("gzip body is truncated")
            out += chunk
            if len(out) > limit:
                raise InvalidSpanPayload(f"gzip body decompresses to more than {limit} bytes")
            pending = inflater.unconsumed_tail
        data = inflater.unused_data
        if not data:
            return bytes(out)


def _decoded_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        try:
            return _gunzip(body, limit)
        except zlib.error as exc:
            raise InvalidSpanPayload(f"body is not valid gzip ({exc})") from exc
    raise InvalidSpanPayload(f"unsupported Content-Encoding {content_encoding!r}; use gzip or none")


def decode_ingest_payload(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    *,
    max_body_bytes: int = 16 * MiB,
    max_decompressed_bytes: int = 64 * MiB,
    max_attribute_depth: int = DEFAULT_MAX_ATTRIBUTE_DEPTH,
    rejected: list[str] | None = None,
) -> list[Span]:
    """The spans of an OTLP/HTTP traces request body; any bad input raises InvalidSpanPayload only.

    With `rejected`, single spans that cannot be kept (a bad id, a bad enum) are left out and their
    reasons appended, as OTLP's partial success asks; a body that is not a request at all, or a
    hostile one (nesting bomb, gzip bomb), still raises.
    """
    media = _media_type(content_type)
    if media not in PROTOBUF_MEDIA_TYPES and media != JSON_MEDIA_TYPE:
        raise InvalidSpanPayload(
            f"unsupported Content-Type {content_type!r}; use application/x-protobuf or application/json"
        )
    if len(body) > max_body_bytes:
        raise InvalidSpanPayload(f"body is {len(body)} bytes; the limit is {max_body_bytes}")
    data = _decoded_body(body, content_encoding, max_decompressed_bytes)
    if media in PROTOBUF_MEDIA_TYPES:
        return decode_otlp_protobuf(data, max_attribute_depth=max_attribute_depth, rejected=rejected)
    try:
        doc = json.loads(data)
    except RecursionError as exc:
        raise InvalidSpanPayload("JSON body is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidSpanPayload(f"body is not valid JSON ({exc})") from exc
    if escapes_unpaired_surrogate(data, doc):
        raise InvalidSpanPayload("A span holds text that is not valid Unicode (an unpaired UTF-16 surrogate escape)")
    return decode_otlp_json(doc, max_attribute_depth=max_attribute_depth, rejected=rejected)


def encode_export_response(rejected: Sequence[str], content_type: str | None) -> tuple[bytes, str]:
    """OTLP/HTTP's ExportTraceServiceResponse, in the encoding of the request (body, media type).

    OTLP/HTTP: the response uses the request's Content-Type, and `partial_success` is set only when
    spans were rejected, so a full success is `{}` in JSON and zero bytes in protobuf.
    """
    message = "; ".join(rejected[:5]) + (f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else "")
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=len(rejected), error_message=message))
    media = _media_type(content_type)
    if media in PROTOBUF_MEDIA_TYPES:
        return response.SerializeToString(), media
    body: dict[str, Any] = {}
    if rejected:
        body["partialSuccess"] = {"rejectedSpans": len(rejected), "errorMessage": message}
    return json.dumps(body).encode(), JSON_MEDIA_TYPE


# --------------------------------------------------------------------------- encoding


def _grouped(spans: Sequence[Span]) -> list[tuple[dict[str, Any], list[tuple[tuple[str, str], list[Span]]]]]:
    """Spans grouped by resource, then by scope, in first-seen order (as an exporter batches them)."""
    resources: dict[str, tuple[dict[str, Any], dict[tuple[str, str], list[Span]]]] = {}
    for span in spans:
        key = json.dumps(span.resource_attributes, sort_keys=True, default=repr)
        _, scopes = resources.setdefault(key, (span.resource_attributes, {}))
        scopes.setdefault((span.scope_name, span.scope_version), []).append(span)
    return [(attrs, list(scopes.items())) for attrs, scopes in resources.values()]


def _json_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value if value == value and abs(value) != float("inf") else str(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _json_kvs(value)}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_json_value(item) for item in value]}}
    raise TypeError(f"cannot encode {type(value).__name__} as an OTLP AnyValue")


def _json_kvs(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _json_value(value)} for key, value in attributes.items()]


def encode_otlp_json(spans: Sequence[Span], *, ids: Literal["hex", "base64"] = "hex") -> dict[str, Any]:
    """An OTLP/JSON ExportTraceServiceRequest (hex ids per the OTLP spec; base64 to test that mapping)."""
    enc: Callable[[str], str] = (
        (lambda h: h) if ids == "hex" else (lambda h: base64.b64encode(bytes.fromhex(h)).decode("ascii"))
    )

    def span_doc(span: Span) -> dict[str, Any]:
        doc: dict[str, Any] = {"traceId": enc(span.trace_id), "spanId": enc(span.span_id)}
        if span.parent_span_id:
            doc["parentSpanId"] = enc(span.parent_span_id)
        doc |= {
            "name": span.name,
            "kind": SPAN_KINDS.index(span.kind) if span.kind in SPAN_KINDS else 0,
            "startTimeUnixNano": str(span.start_time_unix_nano),
            "endTimeUnixNano": str(span.end_time_unix_nano),
            "attributes": _json_kvs(span.attributes),
        }
        if span.events:
            doc["events"] = [
                {"timeUnixNano": str(e.time_unix_nano), "name": e.name, "attributes": _json_kvs(e.attributes)}
                for e in span.events
            ]
        status: dict[str, Any] = {}
        if span.status_code in STATUS_CODES[1:]:
            status["code"] = STATUS_CODES.index(span.status_code)
        if span.status_message:
            status["message"] = span.status_message
        doc["status"] = status
        return doc

    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _json_kvs(resource)},
                "scopeSpans": [
                    {"scope": {"name": name, "version": version}, "spans": [span_doc(s) for s in group]}
                    for (name, version), group in scopes
                ],
            }
            for resource, scopes in _grouped(spans)
        ]
    }


def _fill_any(target: AnyValue, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, Mapping):
        target.kvlist_value.SetInParent()
        _fill_kvs(target.kvlist_value.values, value)
    elif isinstance(value, (list, tuple)):
        target.array_value.SetInParent()
        for item in value:
            _fill_any(target.array_value.values.add(), item)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as an OTLP AnyValue")


def _fill_kvs(target: Any, attributes: Mapping[str, Any]) -> None:
    for key, value in attributes.items():
        kv = target.add()
        kv.key = key
        _fill_any(kv.value, value)


def encode_otlp_protobuf(spans: Sequence[Span]) -> bytes:
    """A binary ExportTraceServiceRequest, byte for byte what an OTLP/HTTP exporter would send."""
    request = ExportTraceServiceRequest()
    for resource, scopes in _grouped(spans):
        rs = request.resource_spans.add()
        _fill_kvs(rs.resource.attributes, resource)
        for (name, version), group in scopes:
            ss = rs.scope_spans.add()
            ss.scope.name = name
            ss.scope.version = version
            for span in group:
                s = ss.spans.add()
                s.trace_id = bytes.fromhex(span.trace_id)
                s.span_id = bytes.fromhex(span.span_id)
                if span.parent_span_id:
                    s.parent_span_id = bytes.fromhex(span.parent_span_id)
                s.name = span.name
                s.kind = SPAN_KINDS.index(span.kind) if span.kind in SPAN_KINDS else 0
                s.start_time_unix_nano = span.start_time_unix_nano
                s.end_time_unix_nano = span.end_time_unix_nano
                _fill_kvs(s.attributes, span.attributes)
                for event in span.events:
                    e = s.events.add()
                    e.name = event.name
                    e.time_unix_nano = event.time_unix_nano
                    _fill_kvs(e.attributes, event.attributes)
                if span.status_code in STATUS_CODES:
                    s.status.code = STATUS_CODES.index(span.status_code)
                s.status.message = span.status_message
    result: bytes = request.SerializeToString()
    return result
