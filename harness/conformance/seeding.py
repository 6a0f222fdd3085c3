"""Item spans as the SDK exports them, sent over OTLP/HTTP protobuf (gzip) with an X-API-Key header.

The span layout copies a real `tool:report_item` export (shared/reference/report_item_span.otlp.json):
`dreadnode.outputs` lists `{name: "item", hash, ...}` entries and `dreadnode.objects` maps each hash
to `{hash, schema_hash, type: "val", value}` holding the 14-key envelope, both as compact JSON strings.
"""

from __future__ import annotations

import gzip
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from harness.model import ENVELOPE_KEYS, Span
from harness.spans.otlp import encode_otlp_protobuf

RESOURCE = {"service.name": "unknown_service", "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry", "harness.conformance": "seed"}
SCOPE = ("dreadnode", "2.0.52")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def envelope(item_type: str, data: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The 14-key envelope `report_item` records; keys not given are null."""
    value: dict[str, Any] = dict.fromkeys(ENVELOPE_KEYS)
    value.update({"item_type": item_type, "data": data, "links": []}, **fields)
    return value


@dataclass(frozen=True)
class Offloaded:
    """An item output whose value went to object storage (`type: "uri"`): unrecoverable from the span."""

    size: int = 20_000


@dataclass(frozen=True)
class ItemOutput:
    value: dict[str, Any] | Offloaded
    value_key: str = "value"
    """`value_` for envelopes written by older pydantic."""


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


@dataclass
class Trace:
    """One run: a root agent span and the tool:report_item spans under it."""

    project: str
    session_id: str
    run_id: str
    trace_id: str = field(default_factory=new_trace_id)
    root_span_id: str = field(default_factory=new_span_id)
    spans: list[Span] = field(default_factory=list)
    clock: int = field(default_factory=lambda: time.time_ns())
    started: int = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock

    def _attributes(self, kind: str) -> dict[str, Any]:
        return {"dreadnode.version": "2.0.52", "dreadnode.type": kind, "dreadnode.project": self.project,
                "dreadnode.session.id": self.session_id, "dreadnode.run.id": self.run_id}

    def _tick(self) -> tuple[int, int]:
        start = self.clock
        self.clock += 1_000_000
        return start, self.clock

    def report(self, *outputs: ItemOutput) -> str:
        """A tool:report_item span carrying `outputs` (in order); returns its span id."""
        span_id = new_span_id()
        entries: list[dict[str, Any]] = []
        objects: dict[str, Any] = {}
        for output in outputs:
            digest = secrets.token_hex(8)
            if isinstance(output.value, Offloaded):
                objects[digest] = {"hash": digest, "schema_hash": "0" * 16, "type": "uri",
                                   "uri": f"s3://conformance/objects/{digest}", "size": output.value.size}
                label = "offloaded"
            else:
                objects[digest] = {"hash": digest, "schema_hash": "2c62c641bd5cb036", "type": "val",
                                   output.value_key: output.value}
                label = str(output.value.get("title") or "item").lower().replace(" ", "_")
            entries.append({"name": "item", "label": label, "hash": digest, "attributes": None})
        entries.append({"name": "result", "label": "result", "hash": secrets.token_hex(8), "attributes": None})
        attributes = self._attributes("tool") | {
            "dreadnode.tool.name": "report_item", "dreadnode.task.parent_id": self.root_span_id,
            "dreadnode.outputs": _compact(entries), "dreadnode.objects": _compact(objects),
        }
        start, end = self._tick()
        self.spans.append(Span(self.trace_id, span_id, self.root_span_id, "tool:report_item", "INTERNAL", start, end,
                               attributes, dict(RESOURCE), SCOPE[0], SCOPE[1]))
        return span_id

    def export(self) -> list[Span]:
        """The item spans plus the root span (which ends last, as in a real run)."""
        _, end = self._tick()
        attributes = self._attributes("agent") | {"dreadnode.outputs": "[]", "dreadnode.objects": "{}"}
        root = Span(self.trace_id, self.root_span_id, None, "agent:conformance", "INTERNAL", self.started, end,
                    attributes, dict(RESOURCE), SCOPE[0], SCOPE[1])
        return [*self.spans, root]


def otlp_body(spans: list[Span]) -> bytes:
    """gzip(protobuf ExportTraceServiceRequest), as the OTLP/HTTP exporter sends it."""
    return gzip.compress(encode_otlp_protobuf(spans))


OTLP_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}


def bad_span_body(project: str) -> bytes:
    """A protobuf export whose only span has a 3-byte span id (D13: and no project it could pollute)."""
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(new_trace_id())
    span.span_id = b"\x01\x02\x03"
    span.name = "conformance:invalid-span-id"
    span.start_time_unix_nano = span.end_time_unix_nano = time.time_ns()
    kv = span.attributes.add()
    kv.key, kv.value.string_value = "harness.conformance", f"invalid span id for {project}"
    data: bytes = request.SerializeToString()
    return data
