"""Items riding on a span (as SDK 2.0.52 records them): `dreadnode.outputs` -> `dreadnode.objects` -> envelope.

Runs on every span a rebuild reads (millions), so a span without an item output costs one dict
lookup and one substring test, and each JSON attribute is parsed at most once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from harness.model import DecodeStats, ItemEnvelope, LinkSpec, Span, SpanItem, SpanOrder

OUTPUTS_ATTR = "dreadnode.outputs"
OBJECTS_ATTR = "dreadnode.objects"
SESSION_ATTR = "dreadnode.session.id"
RUN_ATTR = "dreadnode.run.id"
PROJECT_ATTR = "dreadnode.project"
ITEM_OUTPUT = "item"
MAX_MALFORMED_REASONS = 100
DECODE_VERSION = "1"
"""Part of every memo key of decoded span input (harness.spans.source.SpanUnit): bump it whenever what a
span decodes to changes (this module, the OTLP/mirror decoders, the ClickHouse row mapping), so that
results memoized by an older harness are never reused."""

_UUID_LIKE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_OPTIONAL_STRINGS = ("ref", "title", "status", "notes", "schema_ref", "capability", "capability_version")


class _Malformed(Exception):
    """An item output that cannot become an item; its str is the reason recorded in the stats."""


def canonical_id(value: str) -> str:
    """UUIDs and 32-hex ids compare case-insensitively (lowercased); a slug like `example` is kept as is."""
    return value.lower() if _UUID_LIKE.fullmatch(value) else value


def note_malformed(stats: DecodeStats, reason: str, count: int = 1) -> None:
    """Count something unreadable; keep a bounded list of reasons so a bad store cannot grow it."""
    stats.malformed += count
    if len(stats.malformed_reasons) < MAX_MALFORMED_REASONS:
        stats.malformed_reasons.append(reason)


def _str_attr(span: Span, key: str) -> str | None:
    value = span.attributes.get(key)
    return value if isinstance(value, str) and value else None


def _not_finite(text: str) -> float:
    """NaN and infinities would reach the items table and make its JSON unreadable: malformed instead."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_attr(raw: Any) -> Any:
    """A JSON-string attribute parsed; an already structured value (kvlist/array) is taken as is."""
    return json.loads(raw, parse_float=_not_finite, parse_constant=_no_constant) if isinstance(raw, str) else raw


def _optional_str(envelope: Mapping[str, Any], key: str) -> str | None:
    value = envelope.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _Malformed(f"{key} is not a string")


def _links(value: Any) -> tuple[LinkSpec, ...]:
    """Link specs of an envelope; entries without a relationship or a target are skipped, not fatal."""
    if not isinstance(value, list):
        return ()
    links: list[LinkSpec] = []
    for link in value:
        if type(link) is not dict and not isinstance(link, Mapping):
            continue
        relationship = link.get("relationship")
        ref = link.get("target_ref")
        item_id = link.get("target_item_id")
        ref = ref if isinstance(ref, str) and ref else None
        item_id = canonical_id(item_id) if isinstance(item_id, str) and item_id else None
        if isinstance(relationship, str) and relationship and (ref or item_id):
            links.append(LinkSpec(relationship=relationship, target_ref=ref, target_item_id=item_id))
    return tuple(links)


def _envelope(value: Mapping[str, Any], span: Span, position: int) -> ItemEnvelope:
    item_type = value.get("item_type")
    if not isinstance(item_type, str) or not item_type:
        raise _Malformed("item_type missing")
    dedupe_key = value.get("dedupe_key")
    if dedupe_key is None or dedupe_key == "":
        dedupe_key = f"span:{span.trace_id}:{span.span_id}:{position}"  # D7
    elif not isinstance(dedupe_key, str):
        raise _Malformed("dedupe_key is not a string")
    data = value.get("data")
    if data is None:
        data = {}
    elif type(data) is not dict and not isinstance(data, Mapping):
        raise _Malformed("data is not an object")
    strings = {key: _optional_str(value, key) for key in _OPTIONAL_STRINGS}
    session_id = _optional_str(value, "session_id") or _str_attr(span, SESSION_ATTR)
    return ItemEnvelope(
        item_type=item_type,
        dedupe_key=dedupe_key,
        session_id=session_id.lower() if session_id else None,
        trace_id=(_optional_str(value, "trace_id") or span.trace_id).lower(),
        span_id=(_optional_str(value, "span_id") or span.span_id).lower(),
        data=dict(data),
        links=_links(value.get("links")),
        **strings,
    )


def _object_value(output: Mapping[str, Any], objects: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The envelope an item output points at; None when offloaded; _Malformed when unusable."""
    digest = output.get("hash")
    entry = objects.get(digest) if isinstance(digest, str) else None
    if type(entry) is not dict and not isinstance(entry, Mapping):
        raise _Malformed(f"hash {digest!r} missing from dreadnode.objects")
    if entry.get("type") == "uri":
        return None
    if "value" in entry:
        value = entry["value"]
    elif "value_" in entry:  # older pydantic serialized the field under its alias
        value = entry["value_"]
    else:
        raise _Malformed(f"object {digest} has no value")
    if type(value) is not dict and not isinstance(value, Mapping):
        raise _Malformed("envelope is not an object")
    return value


def items_of_span(span: Span, stats: DecodeStats) -> list[SpanItem]:
    """Every item output of the span, in output order; offloaded and malformed ones only counted.

    `stats.item_outputs` counts item outputs of a readable `dreadnode.outputs`. Unreadable
    `dreadnode.outputs` counts one malformed; unreadable `dreadnode.objects` counts each item output
    of the span as malformed. So item_outputs == items + offloaded + malformed, except for the former.
    """
    stats.spans += 1
    raw_outputs = span.attributes.get(OUTPUTS_ATTR)
    # Fast path: no "item" literal (nor a \u escape that could spell one) means no item output.
    if raw_outputs is None or (
        isinstance(raw_outputs, str) and '"item"' not in raw_outputs and "\\u" not in raw_outputs
    ):
        return []
    where = f"span {span.trace_id}:{span.span_id}"
    try:
        outputs = _json_attr(raw_outputs)
    except (ValueError, RecursionError):
        note_malformed(stats, f"{where}: dreadnode.outputs is not valid JSON")
        return []
    if not isinstance(outputs, list):
        note_malformed(stats, f"{where}: dreadnode.outputs is not a list")
        return []
    item_outputs = [o for o in outputs if (type(o) is dict or isinstance(o, Mapping)) and o.get("name") == ITEM_OUTPUT]
    if not item_outputs:
        return []
    stats.item_outputs += len(item_outputs)
    try:
        objects = _json_attr(span.attributes.get(OBJECTS_ATTR, "{}"))
    except (ValueError, RecursionError):
        note_malformed(stats, f"{where}: dreadnode.objects is not valid JSON", len(item_outputs))
        return []
    if type(objects) is not dict and not isinstance(objects, Mapping):
        note_malformed(stats, f"{where}: dreadnode.objects is not a JSON object", len(item_outputs))
        return []

    project = _str_attr(span, PROJECT_ATTR)
    run_id = _str_attr(span, RUN_ATTR)
    session_id = _str_attr(span, SESSION_ATTR)
    items: list[SpanItem] = []
    for position, output in enumerate(item_outputs):
        try:
            value = _object_value(output, objects)
            if value is None:
                stats.offloaded += 1
                continue
            envelope = _envelope(value, span, position)
        except _Malformed as exc:
            note_malformed(stats, f"{where}: item output {position}: {exc}")
            continue
        items.append(
            SpanItem(
                envelope=envelope,
                project=canonical_id(project) if project else None,
                run_id=canonical_id(run_id) if run_id else None,
                session_id=session_id.lower() if session_id else None,
                order=SpanOrder(span.end_time_unix_nano, span.trace_id, span.span_id, position),
            )
        )
    return items
