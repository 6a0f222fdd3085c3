"""Decoding spans (OTLP/JSON, protobuf, SDK mirror, ingest bodies) and reading items off them."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.model import DecodeStats, LinkSpec, Span, SpanEvent, SpanItem
from harness.spans.envelopes import MAX_MALFORMED_REASONS, items_of_span
from harness.spans.errors import InvalidSpanPayload
from harness.spans.mirror import decode_mirror_line, iso_to_unix_nanos
from harness.spans.otlp import (
    decode_ingest_payload,
    decode_otlp_json,
    decode_otlp_protobuf,
    encode_otlp_json,
    encode_otlp_protobuf,
)

REFERENCE = Path("/work/shared/reference")
if not REFERENCE.is_dir():  # the repository may be checked out elsewhere
    REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
OTLP_JSON = REFERENCE / "report_item_span.otlp.json"
MIRROR = REFERENCE / "report_item_span.sdk-mirror.jsonl"
needs_reference = pytest.mark.skipif(not OTLP_JSON.is_file(), reason="reference spans not available")

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "8f0138c585e542ce"
SESSION = "3F1C2A9E-7B4D-4E8A-9C61-2D5F0B7A1E34"
DEDUPE = "8e2f6b1c4d3a49f0b7c5e1d2a3f4b6c8"


def envelope(**overrides: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "item_type": "finding",
        "dedupe_key": DEDUPE,
        "ref": "sqli-login",
        "title": "SQL injection",
        "status": None,
        "notes": None,
        "schema_ref": "finding@1",
        "session_id": None,
        "trace_id": None,
        "span_id": None,
        "capability": None,
        "capability_version": None,
        "data": {"title": "SQL injection", "severity": "high"},
        "links": [{"target_ref": "web-1", "relationship": "affects"}],
    }
    env.update(overrides)
    return env


def make_span(
    objects: dict[str, Any] | str,
    outputs: list[dict[str, Any]] | str,
    *,
    attributes: dict[str, Any] | None = None,
    end: int = 2_000,
) -> Span:
    attrs: dict[str, Any] = {
        "dreadnode.project": "example",
        "dreadnode.session.id": SESSION,
        "dreadnode.run.id": "run-1",
        "dreadnode.outputs": outputs if isinstance(outputs, str) else json.dumps(outputs),
        "dreadnode.objects": objects if isinstance(objects, str) else json.dumps(objects),
    }
    attrs.update(attributes or {})
    return Span(TRACE, SPAN, None, "tool:report_item", "INTERNAL", 1_000, end, attrs)


def item_output(digest: str, name: str = "item") -> dict[str, Any]:
    return {"name": name, "label": digest, "hash": digest, "attributes": None}


def val(digest: str, value: Any, key: str = "value") -> dict[str, Any]:
    return {"hash": digest, "schema_hash": "0" * 16, key: value, "type": "val"}


def decode(span: Span) -> tuple[list[SpanItem], DecodeStats]:
    stats = DecodeStats()
    return items_of_span(span, stats), stats


# ------------------------------------------------------------------------------- reference spans


@needs_reference
def test_reference_otlp_span_gives_the_documented_item() -> None:
    spans = decode_otlp_json(json.loads(OTLP_JSON.read_text()))
    assert [s.name for s in spans] == ["tool:report_item", "agent:recon"]
    tool = spans[0]
    assert (tool.kind, tool.status_code, tool.parent_span_id) == ("INTERNAL", "UNSET", "9150393ea6bee11f")
    assert tool.resource_attributes["process.pid"] == 4242
    assert tool.attributes["dreadnode.tags"] == ["tool", "report_item"]
    assert tool.attributes["dreadnode.tool.stopped"] is False
    assert tool.events[0] == SpanEvent(
        "agent.ToolStart",
        1767268800002268468,
        {"event_type": "ToolStart", "timestamp": "2026-01-01T12:00:00.002268+00:00"},
    )
    assert (tool.scope_name, tool.scope_version) == ("dreadnode", "2.0.52")

    stats = DecodeStats()
    items = [item for span in spans for item in items_of_span(span, stats)]
    assert (stats.spans, stats.item_outputs, stats.offloaded, stats.malformed) == (2, 1, 0, 0)
    [item] = items
    assert item.project == "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    assert item.run_id == "c7a1d2e3-4b5f-4a6b-8c7d-9e0f1a2b3c4d"
    assert item.session_id == "3f1c2a9e-7b4d-4e8a-9c61-2d5f0b7a1e34"
    env = item.envelope
    assert (env.item_type, env.dedupe_key, env.ref, env.schema_ref) == ("finding", DEDUPE, "sqli-login", "finding@1")
    assert (env.trace_id, env.span_id) == (TRACE, SPAN)
    assert env.data["category"] == "CWE-89" and env.data["metadata"] == {}
    assert env.links == (LinkSpec("affects", target_ref="web-1"),)
    assert item.order.end_time_unix_nano == 1767268800002576405 and item.order.position == 0


@needs_reference
def test_reference_mirror_and_otlp_give_the_same_items() -> None:
    """The two reference files come from two SDK runs, so only the span end times differ."""
    otlp = decode_otlp_json(json.loads(OTLP_JSON.read_text()))
    mirror = [decode_mirror_line(json.loads(line)) for line in MIRROR.read_text().splitlines()]
    assert [(s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind) for s in mirror] == [
        (s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind) for s in otlp
    ]
    assert mirror[0].end_time_unix_nano == iso_to_unix_nanos("2026-11-28T20:36:55.660802+00:00", "t")
    assert mirror[0].resource_attributes["process.pid"] == 12772
    assert mirror[0].events[0].name == "agent.ToolStart"

    def items(spans: list[Span]) -> list[SpanItem]:
        stats = DecodeStats()
        return [
            dataclasses.replace(i, order=dataclasses.replace(i.order, end_time_unix_nano=0))
            for s in spans
            for i in items_of_span(s, stats)
        ]

    assert items(mirror) == items(otlp) != []


@needs_reference
def test_reference_spans_survive_protobuf_and_json_round_trips() -> None:
    spans = decode_otlp_json(json.loads(OTLP_JSON.read_text()))
    assert decode_otlp_protobuf(encode_otlp_protobuf(spans)) == spans
    assert decode_otlp_json(json.loads(json.dumps(encode_otlp_json(spans)))) == spans
    assert decode_otlp_json(encode_otlp_json(spans, ids="base64")) == spans


# ------------------------------------------------------------------------------- envelopes


def test_value_underscore_is_accepted() -> None:
    span = make_span({"h1": val("h1", envelope(), key="value_")}, [item_output("h1")])
    items, stats = decode(span)
    assert [i.envelope.ref for i in items] == ["sqli-login"] and stats.malformed == 0


def test_offloaded_uri_objects_are_counted_not_items() -> None:
    uri = {"hash": "h1", "schema_hash": "s", "uri": "s3://bucket/h1", "size": 48213, "type": "uri"}
    span = make_span({"h1": uri, "h2": val("h2", envelope(dedupe_key="k2"))}, [item_output("h1"), item_output("h2")])
    items, stats = decode(span)
    assert [(i.envelope.dedupe_key, i.order.position) for i in items] == [("k2", 1)]
    assert (stats.item_outputs, stats.offloaded, stats.malformed) == (2, 1, 0)


@pytest.mark.parametrize(
    ("objects", "outputs", "reason"),
    [
        ({}, [item_output("h1")], "missing from dreadnode.objects"),
        ({"h1": val("h1", "just a string")}, [item_output("h1")], "envelope is not an object"),
        ({"h1": val("h1", envelope(item_type=None))}, [item_output("h1")], "item_type missing"),
        ({"h1": val("h1", envelope(data=[1, 2]))}, [item_output("h1")], "data is not an object"),
        ({"h1": val("h1", envelope(title=7))}, [item_output("h1")], "title is not a string"),
        ({"h1": {"hash": "h1", "type": "val"}}, [item_output("h1")], "has no value"),
        ('{"h1": {', [item_output("h1")], "dreadnode.objects is not valid JSON"),
        ("[1]", [item_output("h1")], "dreadnode.objects is not a JSON object"),
        ("{}", '[{"name":"item","hash":', "dreadnode.outputs is not valid JSON"),
        ("{}", '{"name":"item"}', "dreadnode.outputs is not a list"),
    ],
)
def test_malformed_outputs_are_counted_never_raised(objects: Any, outputs: Any, reason: str) -> None:
    items, stats = decode(make_span(objects, outputs))
    assert items == []
    assert stats.malformed == 1
    assert len(stats.malformed_reasons) == 1 and reason in stats.malformed_reasons[0]


def test_malformed_output_does_not_hide_good_ones_and_positions_stay() -> None:
    objects = {"h1": val("h1", envelope(dedupe_key=None)), "h3": val("h3", envelope(dedupe_key=None))}
    outputs = [item_output("h1"), item_output("r", name="result"), item_output("h2"), item_output("h3")]
    items, stats = decode(make_span(objects, outputs))
    assert [i.envelope.dedupe_key for i in items] == [f"span:{TRACE}:{SPAN}:0", f"span:{TRACE}:{SPAN}:2"]
    assert (stats.item_outputs, stats.malformed) == (3, 1)


def test_d7_key_fallback_ids_and_several_items_per_span() -> None:
    objects = {
        "a": val("a", envelope(dedupe_key="", ref=None)),
        "b": val(
            "b",
            envelope(
                dedupe_key="kb",
                session_id="AAAAAAAA-0000-4000-8000-000000000001",
                trace_id="0" * 31 + "1",
                span_id="0" * 15 + "2",
            ),
        ),
        "c": val("c", envelope(dedupe_key=None, ref=None)),
    }
    # The same hash twice is two items (never key by name or hash).
    items, stats = decode(make_span(objects, [item_output("a"), item_output("b"), item_output("c"), item_output("a")]))
    assert [i.envelope.dedupe_key for i in items] == [
        f"span:{TRACE}:{SPAN}:0",
        "kb",
        f"span:{TRACE}:{SPAN}:2",
        f"span:{TRACE}:{SPAN}:3",
    ]
    first, second = items[0].envelope, items[1].envelope
    assert (first.session_id, first.trace_id, first.span_id) == (SESSION.lower(), TRACE, SPAN)
    assert (second.session_id, second.trace_id, second.span_id) == (
        "aaaaaaaa-0000-4000-8000-000000000001",
        "0" * 31 + "1",
        "0" * 15 + "2",
    )
    assert [i.order.position for i in items] == [0, 1, 2, 3]
    assert all(i.session_id == SESSION.lower() and i.run_id == "run-1" for i in items)
    assert stats.item_outputs == 4


def test_no_session_anywhere_and_no_project() -> None:
    span = make_span({"h1": val("h1", envelope())}, [item_output("h1")])
    attrs = {k: v for k, v in span.attributes.items() if k not in ("dreadnode.session.id", "dreadnode.project")}
    [item], _ = decode(dataclasses.replace(span, attributes=attrs))
    assert item.envelope.session_id is None and item.session_id is None and item.project is None


def test_links_and_data_normalized() -> None:
    links = [
        {"target_ref": "web-1", "relationship": "affects"},
        {"target_item_id": "5B0E3C1A-2F4D-4A8B-9E7C-6D1F2A3B4C5D", "relationship": "duplicates"},
        {"relationship": "affects"},
        {"target_ref": "x"},
        "not a link",
        {"target_ref": "", "relationship": "affects"},
    ]
    [item], stats = decode(make_span({"h1": val("h1", envelope(links=links, data=None))}, [item_output("h1")]))
    assert item.envelope.links == (
        LinkSpec("affects", target_ref="web-1"),
        LinkSpec("duplicates", target_item_id="5b0e3c1a-2f4d-4a8b-9e7c-6d1f2a3b4c5d"),
    )
    assert item.envelope.data == {} and stats.malformed == 0
    [item], _ = decode(make_span({"h1": val("h1", envelope(links=None))}, [item_output("h1")]))
    assert item.envelope.links == ()


def test_spans_without_items_take_the_fast_path() -> None:
    stats = DecodeStats()
    plain = Span(TRACE, SPAN, None, "agent", "INTERNAL", 0, 1, {"dreadnode.outputs": "[]"})
    result = make_span("not even json", [item_output("h", name="result")])
    assert items_of_span(plain, stats) == [] and items_of_span(result, stats) == []
    assert (stats.spans, stats.item_outputs, stats.malformed) == (2, 0, 0)


def test_structured_attributes_and_escaped_names_are_read_too() -> None:
    """A kvlist/array attribute (not a JSON string) and a JSON `\\u0069tem` both still find the item."""
    objects = {"h1": val("h1", envelope())}
    span = make_span({}, [])
    span = dataclasses.replace(
        span, attributes=span.attributes | {"dreadnode.objects": objects, "dreadnode.outputs": [item_output("h1")]}
    )
    assert len(decode(span)[0]) == 1
    escaped = make_span(objects, '[{"name":"\\u0069tem","hash":"h1"}]')
    assert len(decode(escaped)[0]) == 1


def test_malformed_reasons_are_capped() -> None:
    stats = DecodeStats()
    bad = make_span({}, [item_output("missing")])
    for _ in range(MAX_MALFORMED_REASONS + 50):
        items_of_span(bad, stats)
    assert stats.malformed == MAX_MALFORMED_REASONS + 50
    assert len(stats.malformed_reasons) == MAX_MALFORMED_REASONS


# ------------------------------------------------------------------------------- OTLP decoding


def otlp_doc(span_fields: dict[str, Any]) -> dict[str, Any]:
    span = {"traceId": TRACE, "spanId": SPAN, "name": "s", "startTimeUnixNano": 1, "endTimeUnixNano": "2"}
    span.update(span_fields)
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}


def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def test_hex_and_base64_ids_decode_the_same() -> None:
    parent = "9150393ea6bee11f"
    hex_span = decode_otlp_json(otlp_doc({"traceId": TRACE.upper(), "parentSpanId": parent}))
    b64_span = decode_otlp_json(otlp_doc({"traceId": b64(TRACE), "spanId": b64(SPAN), "parentSpanId": b64(parent)}))
    assert hex_span == b64_span
    assert (hex_span[0].trace_id, hex_span[0].span_id, hex_span[0].parent_span_id) == (TRACE, SPAN, parent)
    assert decode_otlp_json(otlp_doc({"parentSpanId": ""}))[0].parent_span_id is None


@pytest.mark.parametrize(
    "fields",
    [{"traceId": "abc"}, {"spanId": "not-an-id!"}, {"traceId": ""}, {"spanId": 5}, {"traceId": b64("00" * 8)}],
)
def test_bad_ids_are_invalid(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpanPayload):
        decode_otlp_json(otlp_doc(fields))


def test_any_values_kinds_status_and_times() -> None:
    attributes = [
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "i", "value": {"intValue": "-42"}},
        {"key": "j", "value": {"intValue": 7}},
        {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "bytes", "value": {"bytesValue": "AAE="}},
        {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "y"}]}}},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}},
        {"key": "empty", "value": {}},
        {"key": "emptyarr", "value": {"arrayValue": {}}},
    ]
    [span] = decode_otlp_json(
        otlp_doc({"attributes": attributes, "kind": "SPAN_KIND_SERVER", "status": {"code": 2, "message": "boom"}})
    )
    a = span.attributes
    assert (a["s"], a["i"], a["j"], a["d"], a["b"], a["bytes"]) == ("x", -42, 7, 1.5, True, "AAE=")
    assert a["nan"] != a["nan"]
    assert a["arr"] == [1, "y"] and a["kv"] == {"k": False} and a["empty"] is None and a["emptyarr"] == []
    assert (span.kind, span.status_code, span.status_message) == ("SERVER", "ERROR", "boom")
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (1, 2)
    assert decode_otlp_json(otlp_doc({"kind": 3}))[0].kind == "CLIENT"
    assert decode_otlp_json(otlp_doc({}))[0].kind == "UNSPECIFIED"
    assert decode_otlp_json({"resourceSpans": []}) == [] == decode_otlp_json({})


def sample_spans() -> list[Span]:
    attrs: dict[str, Any] = {
        "s": "x",
        "i": 2**62,
        "f": 0.25,
        "b": False,
        "none": None,
        "l": [1, "a", [True], {}],
        "m": {"nested": {"deep": [1.5]}, "empty": []},
    }
    event = SpanEvent("ev", 5, {"k": "v"})
    return [
        Span(TRACE, SPAN, None, "root", "SERVER", 1, 9, attrs, {"service.name": "a"}, "sc", "1", "OK", "", (event,)),
        Span(TRACE, "0" * 15 + "1", SPAN, "child", "CLIENT", 2, 3, {}, {"service.name": "a"}, "sc", "1", "ERROR", "e"),
        Span("f" * 32, "e" * 16, None, "other", "INTERNAL", 4, 5, {"x": 1}, {"service.name": "b"}, "", ""),
    ]


def test_protobuf_and_json_round_trips_keep_every_field() -> None:
    spans = sample_spans()
    assert decode_otlp_protobuf(encode_otlp_protobuf(spans)) == spans
    assert decode_otlp_json(json.loads(json.dumps(encode_otlp_json(spans)))) == spans
    assert decode_otlp_json(encode_otlp_json(spans, ids="base64")) == spans
    doc = encode_otlp_json(spans)
    assert len(doc["resourceSpans"]) == 2  # grouped by resource
    assert decode_ingest_payload(gzip.compress(encode_otlp_protobuf(spans)), "application/x-protobuf", "gzip") == spans


# ------------------------------------------------------------------------------- ingest bodies


def test_ingest_accepts_protobuf_and_json_with_parameters_and_gzip() -> None:
    spans = sample_spans()
    body = json.dumps(encode_otlp_json(spans)).encode()
    assert decode_ingest_payload(body, "application/json; charset=utf-8", None) == spans
    assert decode_ingest_payload(gzip.compress(body), "Application/JSON", "GZIP") == spans
    two_members = gzip.compress(body[:10]) + gzip.compress(body[10:])
    assert decode_ingest_payload(two_members, "application/json", "gzip") == spans
    assert decode_ingest_payload(encode_otlp_protobuf(spans), "application/x-protobuf", "identity") == spans
    assert decode_ingest_payload(b"", "application/x-protobuf", None) == []


def nested_kvlist_json(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(depth):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return otlp_doc({"attributes": [{"key": "deep", "value": value}]})


def nested_array_protobuf(depth: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = bytes.fromhex(TRACE), bytes.fromhex(SPAN)
    kv = span.attributes.add()
    kv.key = "deep"
    value = kv.value
    for _ in range(depth):
        value = value.array_value.values.add()
    value.string_value = "leaf"
    data: bytes = request.SerializeToString()
    return data


def test_nesting_within_the_limit_is_fine() -> None:
    body = json.dumps(nested_kvlist_json(30)).encode()
    assert decode_ingest_payload(body, "application/json", None)[0].attributes["deep"]["k"]["k"]
    assert decode_ingest_payload(nested_array_protobuf(30), "application/x-protobuf", None)


def gzip_bomb(decompressed: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(decompressed >> 20)]
    return b"".join(parts) + compressor.flush()


TRUNCATED = encode_otlp_protobuf(sample_spans())[:-7]


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "message"),
    [
        (TRUNCATED, "application/x-protobuf", None, "not a valid OTLP protobuf"),
        (b"\xff\xff\xff\xff", "application/x-protobuf", None, "not a valid OTLP protobuf"),
        (b'{"resourceSpans": [', "application/json", None, "not valid JSON"),
        (b"\xff\xfe\x00garbage", "application/json", None, "not valid JSON"),
        (b"[" * 100_000, "application/json", None, "nested too deeply"),
        (b"[]", "application/json", None, "must be an object"),
        (b'{"resourceSpans": 5}', "application/json", None, "must be an array"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{}]}]}]}', "application/json", None, "traceId"),
        (b"{}", "text/plain", None, "unsupported Content-Type"),
        (b"{}", None, None, "unsupported Content-Type"),
        (b"{}", "application/json", "br", "unsupported Content-Encoding"),
        (b"not gzip at all", "application/json", "gzip", "not valid gzip"),
        (gzip.compress(b"{}" * 1000)[:-20], "application/json", "gzip", "truncated"),
        (json.dumps(nested_kvlist_json(40)).encode(), "application/json", None, "nested deeper than 32"),
        (nested_array_protobuf(40), "application/x-protobuf", None, "nested deeper than 32"),
        (nested_array_protobuf(200), "application/x-protobuf", None, "not a valid OTLP protobuf"),
    ],
)
def test_bad_ingest_bodies_raise_invalid_span_payload(
    body: bytes, content_type: str | None, encoding: str | None, message: str
) -> None:
    with pytest.raises(InvalidSpanPayload, match=message):
        decode_ingest_payload(body, content_type, encoding)


def test_body_size_limit() -> None:
    with pytest.raises(InvalidSpanPayload, match="limit is 10"):
        decode_ingest_payload(b"x" * 11, "application/json", None, max_body_bytes=10)


def test_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip_bomb(256 << 20)  # 256 MiB of zeros in about 250 KiB
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(InvalidSpanPayload, match="decompresses to more than"):
            decode_ingest_payload(bomb, "application/x-protobuf", "gzip", max_decompressed_bytes=4 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), json_body=st.booleans(), gzipped=st.booleans())
def test_arbitrary_bytes_only_ever_raise_invalid_span_payload(body: bytes, json_body: bool, gzipped: bool) -> None:
    payload = gzip.compress(body) if gzipped else body
    content_type = "application/json" if json_body else "application/x-protobuf"
    try:
        spans = decode_ingest_payload(payload, content_type, "gzip" if gzipped else None)
    except InvalidSpanPayload as exc:
        assert str(exc)
    else:
        assert all(isinstance(s, Span) for s in spans)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=12,
)


SPAN_KEYS = ["traceId", "spanId", "kind", "attributes", "status", "events", "startTimeUnixNano", "name"]
FUZZ_SPAN = st.dictionaries(st.sampled_from(SPAN_KEYS), JSON_VALUES, max_size=8)
FUZZ_SCOPE = st.fixed_dictionaries({"spans": st.lists(FUZZ_SPAN, max_size=2)})
FUZZ_RESOURCE = st.fixed_dictionaries({"scopeSpans": st.lists(FUZZ_SCOPE, max_size=2)})


@settings(max_examples=150, deadline=None)
@given(doc=st.fixed_dictionaries({"resourceSpans": st.lists(FUZZ_RESOURCE, max_size=2)}))
def test_arbitrary_json_documents_only_ever_raise_invalid_span_payload(doc: dict[str, Any]) -> None:
    try:
        decode_otlp_json(doc)
    except InvalidSpanPayload as exc:
        assert str(exc)


# ------------------------------------------------------------------------------- mirror lines


def test_mirror_variants() -> None:
    line: dict[str, Any] = {
        "trace_id": TRACE.upper(),
        "span_id": SPAN,
        "parent_id": None,
        "name": "x",
        "kind": "INTERNAL",
        "status": "UNSET",
        "start_time": "2026-01-01T12:00:00.123456789Z",
        "end_time": "2026-01-01T13:00:00+01:00",
        "attributes": {"a": 1},
        "events": [],
        "resource": {"service.name": "s"},
    }
    span = decode_mirror_line(line)
    assert span.trace_id == TRACE and span.parent_span_id is None
    assert span.start_time_unix_nano == 1767268800_123456789
    assert span.end_time_unix_nano == 1767268800_000000000
    # OpenTelemetry's ReadableSpan.to_json() shape.
    sdk: dict[str, Any] = {
        "name": "x",
        "context": {"trace_id": "0x" + TRACE, "span_id": "0x" + SPAN, "trace_state": "[]"},
        "kind": "SpanKind.CLIENT",
        "parent_id": "0x9150393ea6bee11f",
        "start_time": "2026-01-01T12:00:00.000001Z",
        "end_time": "2026-01-01T12:00:01Z",
        "status": {"status_code": "ERROR", "description": "bad"},
        "attributes": {},
        "events": [{"name": "e", "timestamp": "2026-01-01T12:00:00Z", "attributes": {}}],
        "resource": {"attributes": {"service.name": "s"}, "schema_url": ""},
    }
    span = decode_mirror_line(sdk)
    assert (span.kind, span.status_code, span.status_message) == ("CLIENT", "ERROR", "bad")
    assert span.parent_span_id == "9150393ea6bee11f" and span.resource_attributes == {"service.name": "s"}


@pytest.mark.parametrize(
    "overrides",
    [{"trace_id": None}, {"span_id": "xyz"}, {"start_time": "yesterday"}, {"attributes": [1]}, {"events": "nope"}],
)
def test_bad_mirror_lines_are_invalid(overrides: dict[str, Any]) -> None:
    line = {"trace_id": TRACE, "span_id": SPAN, "start_time": 0, "end_time": 1} | overrides
    with pytest.raises(InvalidSpanPayload):
        decode_mirror_line(line)


OUTPUT_ENTRY = st.fixed_dictionaries(
    {"name": st.sampled_from(["item", "result", 5]), "hash": st.sampled_from(["h1", "h2", "missing", 7])}
)
ENVELOPE_VALUE = st.dictionaries(
    st.sampled_from(["item_type", "dedupe_key", "ref", "title", "data", "links", "session_id", "trace_id"]),
    JSON_VALUES,
    max_size=6,
)
OBJECT_ENTRY = st.fixed_dictionaries(
    {"type": st.sampled_from(["val", "uri", None])},
    optional={"value": ENVELOPE_VALUE | JSON_VALUES, "value_": ENVELOPE_VALUE},
)


@settings(max_examples=300, deadline=None)
@given(
    outputs=st.lists(OUTPUT_ENTRY, max_size=4) | JSON_VALUES,
    objects=st.dictionaries(st.sampled_from(["h1", "h2"]), OBJECT_ENTRY | JSON_VALUES, max_size=2) | JSON_VALUES,
)
def test_items_of_span_never_raises(outputs: Any, objects: Any) -> None:
    span = make_span(json.dumps(objects), json.dumps(outputs))
    items, stats = decode(span)
    assert stats.spans == 1
    assert stats.item_outputs >= len(items) + stats.offloaded
    for item in items:
        assert item.envelope.item_type and item.envelope.dedupe_key and isinstance(item.envelope.data, dict)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_number_in_an_envelope_is_malformed_not_stored(number: str) -> None:
    """NaN or an infinity would reach the items table and make every page that lists it invalid JSON."""
    from dataclasses import replace as replace_fields

    from harness.spans.report import envelope, item_span

    good = item_span([envelope(item_type="finding", dedupe_key="k1", data={"score": 1.5})], trace_id="a" * 32,
                     span_id="b" * 16, project="example", session_id=None, run_id=None,
                     start_time_unix_nano=1, end_time_unix_nano=2)
    stats = DecodeStats()
    assert len(items_of_span(good, stats)) == 1 and stats.malformed == 0
    objects = str(good.attributes["dreadnode.objects"]).replace("1.5", number)
    stats = DecodeStats()
    assert items_of_span(replace_fields(good, attributes={**good.attributes, "dreadnode.objects": objects}),
                         stats) == []
    assert stats.malformed == 1
