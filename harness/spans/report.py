"""Build the span the SDK's `report_item` tool records, for tests, seeding and synthetic fixtures.

The layout follows the SDK (dreadnode 2.0.52: tools/report_items.py, tracing/span.py) and a real
export of its spans: `dreadnode.outputs` lists one `item` output per envelope (plus a `result`
output), `dreadnode.objects` holds each envelope under its hash (`value`, or `value_` as older
pydantic wrote it; `type: "uri"` when offloaded).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from harness.model import ENVELOPE_KEYS, Span

SDK_VERSION = "2.0.52"


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def hash16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def envelope(**fields: Any) -> dict[str, Any]:
    """A 14-key envelope: every key present, as the SDK writes it; unspecified keys are null."""
    value: dict[str, Any] = dict.fromkeys(ENVELOPE_KEYS)
    value["data"] = {}
    value["links"] = []
    unknown = set(fields) - set(ENVELOPE_KEYS)
    if unknown:
        raise ValueError(f"not envelope keys: {sorted(unknown)}")
    value.update(fields)
    return value


def item_span(
    envelopes: Sequence[Mapping[str, Any]],
    *,
    trace_id: str,
    span_id: str,
    project: str | None,
    session_id: str | None,
    run_id: str | None,
    start_time_unix_nano: int,
    end_time_unix_nano: int,
    parent_span_id: str | None = None,
    offloaded: Collection[int] = (),
    legacy_value_key: bool = False,
) -> Span:
    """One `tool:report_item` span carrying `envelopes` (positions in `offloaded` are sent as uri objects)."""
    objects: dict[str, Any] = {}
    outputs: list[dict[str, Any]] = []
    for position, value in enumerate(envelopes):
        digest = hash16(f"{position}:{compact(value)}")
        if position in offloaded:
            objects[digest] = {"hash": digest, "schema_hash": "0" * 16, "type": "uri",
                               "uri": f"s3://objects/{digest}", "size": len(compact(value)) + 10_240}
        else:
            objects[digest] = {"hash": digest, "schema_hash": "0" * 16, "type": "val",
                               ("value_" if legacy_value_key else "value"): dict(value)}
        data = value.get("data") or {}
        outputs.append({"name": "item", "label": str(value.get("title") or value.get("item_type")), "hash": digest,
                        "attributes": {"item_type": value.get("item_type"), "severity": data.get("severity") or "",
                                       "status": "", "dedupe_key": value.get("dedupe_key")}})
    result = f"Reported {len(envelopes)} item(s)"
    result_hash = hash16(result)
    objects[result_hash] = {"hash": result_hash, "schema_hash": "0" * 16, "type": "val", "value": result}
    outputs.append({"name": "result", "label": "result", "hash": result_hash, "attributes": None})
    attributes: dict[str, Any] = {
        "dreadnode.version": SDK_VERSION,
        "dreadnode.type": "tool",
        "dreadnode.tool.name": "report_item",
        "dreadnode.outputs": compact(outputs),
        "dreadnode.objects": compact(objects),
        "dreadnode.tags": ["tool", "report_item"],
    }
    for key, text in (("dreadnode.project", project), ("dreadnode.session.id", session_id),
                      ("dreadnode.run.id", run_id)):
        if text is not None:
            attributes[key] = text
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name="tool:report_item",
        kind="INTERNAL",
        start_time_unix_nano=start_time_unix_nano,
        end_time_unix_nano=end_time_unix_nano,
        attributes=attributes,
        resource_attributes={"service.name": "unknown_service", "telemetry.sdk.language": "python"},
        scope_name="dreadnode",
        scope_version=SDK_VERSION,
    )
