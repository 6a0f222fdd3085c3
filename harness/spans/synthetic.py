"""Realistic synthetic item spans at any scale, for load tests and rebuild fixtures.

Every span copies the shape of the SDK's own `tool:report_item` span (reference/
report_item_span.otlp.json): the item envelope in `dreadnode.objects`, its reference in
`dreadnode.outputs`, one agent root span per run. Beside the spans, `posts.jsonl` holds the
`create_item` bodies whose best-effort POST "succeeded", so a test can seed the items table the way
the runtime would have and let a rebuild heal the rest.

Everything comes from one seeded RNG (same seed, same bytes) and is written run by run, so memory
does not grow with the number of items.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from harness.model import Span, SpanEvent
from harness.spans.otlp import encode_otlp_json

FORMATS = ("otlp-jsonl", "mirror")
POSTS_FILE = "posts.jsonl"
SPANS_PER_FILE = 200_000
SPANS_PER_DOCUMENT = 64
EPOCH_NS = 1_767_268_800_000_000_000  # 2026-01-01T12:00:00Z, as the reference span
OFFLOAD_BYTES = 12 * 1024  # the SDK offloads values over 10 KiB to object storage
SDK_VERSION = "2.0.52"

ENVELOPE_SCHEMA = {
    "type": "object",
    "properties": {
        "data": {"type": "object", "properties": {"metadata": {"type": "object"}}},
        "links": {"type": "array", "items": {"type": "object"}},
    },
}
ARGUMENTS_SCHEMA = {"type": "object", "properties": {"links": {"type": "array", "items": {"type": "object"}}}}
SEVERITIES = ("critical", "high", "high", "medium", "medium", "medium", "low", "low", "info")
CATEGORIES = ("CWE-89", "CWE-79", "CWE-22", "CWE-287", "CWE-918", "CWE-200", "OWASP-LLM01", "OWASP-LLM06")
ASSET_TYPES = ("host", "service", "endpoint", "account", "file", "model")
AGENTS = ("recon", "web-scanner", "triage", "exploit", "llm-redteam")
_SLUG_GAP = re.compile(r"[^a-z0-9/@.]+")
MALFORMATIONS = ("truncated_objects", "missing_object", "no_item_type", "envelope_not_object", "truncated_outputs")


@dataclass
class GenerationSummary:
    """What `generate` wrote; decoding the span files gives back exactly these counts."""

    sessions: int = 0
    runs: int = 0
    spans: int = 0
    """Every span written: agent roots, item spans, malformed spans."""
    items: int = 0
    """Item envelopes a decoder can read (`type: "val"`): what a rebuild materializes."""
    offloaded: int = 0
    """Item envelopes recorded as `type: "uri"`: reported, POSTed maybe, never recoverable from spans."""
    malformed: int = 0
    """Spans with one unreadable item output each (one `DecodeStats.malformed` apiece)."""
    item_outputs: int = 0
    """`DecodeStats.item_outputs` of a decode: items + offloaded + malformed, bar a truncated outputs list."""
    posted: int = 0
    """Lines of posts.jsonl: reported items (readable or offloaded) whose POST succeeded."""
    session_ids: list[str] = field(default_factory=list)
    span_files: list[Path] = field(default_factory=list)
    posts_file: Path | None = None


# --------------------------------------------------------------------------- small helpers


def _hex(rng: random.Random, n_bytes: int) -> str:
    return f"{rng.getrandbits(8 * n_bytes):0{2 * n_bytes}x}"


def _uuid4(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _hash16(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    """The SDK's `clean_str`: lowercase, runs of anything but [a-z0-9/@.] become `_`."""
    return _SLUG_GAP.sub("_", text.lower()).strip("_")


def _iso(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % 1_000_000_000) // 1000:06d}+00:00"


def encode_mirror_line(span: Span) -> dict[str, Any]:
    """A span as the SDK's local mirror writes it (microsecond ISO times, flat attributes)."""
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "status": span.status_code,
        "start_time": _iso(span.start_time_unix_nano),
        "end_time": _iso(span.end_time_unix_nano),
        "attributes": span.attributes,
        "events": [
            {"name": e.name, "timestamp": _iso(e.time_unix_nano), "attributes": e.attributes} for e in span.events
        ],
        "resource": span.resource_attributes,
    }


# --------------------------------------------------------------------------- items


@dataclass
class _Item:
    """One report_item call: the envelope, what the agent passed, and the POST body."""

    envelope: dict[str, Any]
    arguments: dict[str, Any]
    offloaded: bool
    legacy_value_key: bool
    with_ids: bool
    """False for an SDK without trace context: envelope and POST then carry no session/trace/span id."""


def _finding(
    rng: random.Random, tag: str, k: int, asset_refs: list[str], big: bool
) -> tuple[dict[str, Any], list[Any]]:
    category = rng.choice(CATEGORIES)
    title = f"{category} in /api/v{rng.randint(1, 3)}/{rng.choice(('login', 'search', 'files', 'chat'))} #{tag}-{k}"
    evidence = f"request {k} returned {rng.choice((200, 302, 500))} with an unexpected body"
    if big:
        evidence += "\n" + ("HTTP/1.1 200 OK transcript line\n" * (OFFLOAD_BYTES // 32 + 1))
    data = {
        "title": title,
        "description": f"Observed behaviour {k} of {tag}; input reaches a sensitive sink.",
        "severity": rng.choice(SEVERITIES),
        "category": category,
        "evidence": evidence,
        "metadata": {"attempt": k} if rng.random() < 0.3 else {},
    }
    links = (
        [{"target_ref": rng.choice(asset_refs), "relationship": "affects"}] if asset_refs and rng.random() < 0.7 else []
    )
    return data, links


def _asset(rng: random.Random, tag: str, k: int, big: bool) -> dict[str, Any]:
    asset_type = rng.choice(ASSET_TYPES)
    description = f"{asset_type} found while enumerating {tag}"
    if big:
        description += "\n" + ("banner line of a very chatty service\n" * (OFFLOAD_BYTES // 36 + 1))
    return {
        "title": f"{asset_type} {tag}-{k}",
        "asset_type": asset_type,
        "identifier": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "description": description,
        "metadata": {},
    }


def _post_body(envelope: dict[str, Any]) -> dict[str, Any]:
    """The SDK's `create_item` body for an envelope: None fields left out, links only when some."""
    body: dict[str, Any] = {"item_type": envelope["item_type"], "data": envelope["data"], "source": "runtime"}
    for key in ("ref", "dedupe_key", "title", "status", "notes", "session_id", "trace_id", "span_id",
                "capability", "capability_version", "schema_ref"):  # fmt: skip
        if envelope.get(key) is not None:
            body[key] = envelope[key]
    if envelope.get("links"):
        body["links"] = envelope["links"]
    return body


# --------------------------------------------------------------------------- spans


@dataclass
class _Run:
    project: str
    session_id: str
    run_id: str
    trace_id: str
    root_span_id: str
    resource: dict[str, Any]
    capability: tuple[str | None, str | None]


def _common_attributes(run: _Run, kind: str, label: str, name: str) -> dict[str, Any]:
    return {
        "dreadnode.version": SDK_VERSION,
        "dreadnode.type": kind,
        "dreadnode.label": label,
        "dreadnode.project": run.project,
        "dreadnode.session.id": run.session_id,
        "logfire.span_type": "span",
        "logfire.msg": name,
    }


def _object(value: Any, schema: Any, *, legacy: bool = False) -> tuple[str, dict[str, Any], str]:
    """(hash, objects entry, schema hash) the way the SDK derives them from the serialized value."""
    schema_hash = _hash16(_compact(schema))
    digest = _hash16(f"{_hash16(_compact(value))}:{schema_hash}")
    return (
        digest,
        {"hash": digest, "schema_hash": schema_hash, ("value_" if legacy else "value"): value, "type": "val"},
        schema_hash,
    )


def _item_span(
    run: _Run, rng: random.Random, span_id: str, items: list[_Item], start: int, malformation: str | None
) -> Span:
    """One tool span recording `items` (several when a tool reports in bulk)."""
    tool = "report_item" if len(items) == 1 else "report_items"
    name = f"tool:{tool}"
    call = f"call_{_hex(rng, 4)}"
    objects: dict[str, Any] = {}
    schemas: dict[str, Any] = {"0000000000000000": {}}
    outputs: list[dict[str, Any]] = []
    arguments = items[0].arguments if len(items) == 1 else {"items": [i.arguments for i in items]}
    arg_hash, arg_entry, arg_schema = _object(arguments, ARGUMENTS_SCHEMA)
    objects[arg_hash] = arg_entry
    schemas[arg_schema] = ARGUMENTS_SCHEMA
    for item in items:
        env = item.envelope
        digest, entry, schema_hash = _object(env, ENVELOPE_SCHEMA, legacy=item.legacy_value_key)
        schemas[schema_hash] = ENVELOPE_SCHEMA
        if item.offloaded:
            size = len(_compact(env).encode())
            entry = {"hash": digest, "schema_hash": schema_hash, "type": "uri", "size": size,
                     "uri": f"s3://dreadnode-objects/{run.project}/cas/objects/{_hash16(_compact(env))}"}  # fmt: skip
        objects[digest] = entry
        severity = env["data"].get("severity") or ""
        summary = {"item_type": env["item_type"], "severity": severity, "status": "", "dedupe_key": env["dedupe_key"]}
        label = _slug(env["title"] or env["item_type"])
        outputs.append({"name": "item", "label": label, "hash": digest, "attributes": summary})
    result = f"Reported {len(items)} item(s)"
    res_hash = _hash16(_compact(result))
    objects[res_hash] = {"hash": res_hash, "schema_hash": "0000000000000000", "value": result, "type": "val"}
    outputs.append({"name": "result", "label": "result", "hash": res_hash, "attributes": None})

    objects_text, outputs_text = _compact(objects), _compact(outputs)
    if malformation == "truncated_objects":  # an attribute length limit cut the JSON short
        objects_text = objects_text[: len(objects_text) // 2]
    elif malformation == "truncated_outputs":
        outputs_text = outputs_text[: outputs_text.index('"item"') + 20]
    elif malformation == "missing_object":
        objects_text = _compact({k: v for k, v in objects.items() if k != outputs[0]["hash"]})
    elif malformation in ("no_item_type", "envelope_not_object"):
        broken = dict(objects[outputs[0]["hash"]])
        key = "value_" if "value_" in broken else "value"
        broken[key] = "<envelope lost>" if malformation == "envelope_not_object" else {**broken[key], "item_type": None}
        objects_text = _compact({**objects, outputs[0]["hash"]: broken})

    end = start + rng.randint(400, 4000) * 1000
    attributes = _common_attributes(run, "tool", call, name) | {
        "dreadnode.task.parent_id": run.root_span_id,
        "dreadnode.run.id": run.run_id,
        "dreadnode.tool.name": tool,
        "dreadnode.tool.call_id": f"{call}{_hex(rng, 2)}",
        "dreadnode.tool.arguments": _compact(arguments),
        "dreadnode.tool.result": result,
        "dreadnode.tool.stopped": False,
        "dreadnode.params": "{}",
        "dreadnode.inputs": _compact(
            [{"name": "arguments", "label": "arguments", "hash": arg_hash, "attributes": None}]
        ),
        "dreadnode.outputs": outputs_text,
        "dreadnode.metrics": "{}",
        "dreadnode.objects": objects_text,
        "dreadnode.object_schemas": _compact(schemas),
        "dreadnode.artifacts": "[]",
        "dreadnode.large_attributes": ["dreadnode.objects", "dreadnode.object_schemas"],
        "dreadnode.schema": '{"type":"object","properties":{"dreadnode.tool.arguments":{"type":"object"}}}',
        "dreadnode.tags": ["tool", tool],
    }
    events = (
        SpanEvent("agent.ToolStart", end - 300_000, {"event_type": "ToolStart", "timestamp": _iso(end - 300_000)}),
        SpanEvent("agent.ToolEnd", end - 150_000, {"event_type": "ToolEnd", "timestamp": _iso(end - 150_000)}),
    )
    return Span(run.trace_id, span_id, run.root_span_id, name, "INTERNAL", start, end, attributes,
                run.resource, "dreadnode", SDK_VERSION, events=events)  # fmt: skip


def _root_span(run: _Run, agent: str, start: int, end: int) -> Span:
    attributes = _common_attributes(run, "agent", agent, f"agent:{agent}") | {
        "dreadnode.run.id": run.run_id,
        "dreadnode.params": "{}",
        "dreadnode.inputs": "[]",
        "dreadnode.outputs": "[]",
        "dreadnode.metrics": "{}",
        "dreadnode.objects": "{}",
        "dreadnode.object_schemas": "{}",
        "dreadnode.artifacts": "[]",
        "dreadnode.schema": "{}",
        "dreadnode.tags": ["agent"],
    }
    return Span(run.trace_id, run.root_span_id, None, f"agent:{agent}", "INTERNAL", start, end, attributes,
                run.resource, "dreadnode", SDK_VERSION)  # fmt: skip


# --------------------------------------------------------------------------- writing


class _Writer:
    """Span files rotated every SPANS_PER_FILE spans, one line per document (OTLP) or span (mirror)."""

    def __init__(self, out_dir: Path, fmt: str, summary: GenerationSummary) -> None:
        self.out_dir, self.fmt, self.summary = out_dir, fmt, summary
        self.fh: IO[str] | None = None
        self.in_file = 0

    def write(self, spans: list[Span]) -> None:
        for at in range(0, len(spans), SPANS_PER_DOCUMENT):
            chunk = spans[at : at + SPANS_PER_DOCUMENT]
            fh = self._file()
            if self.fmt == "mirror":
                fh.writelines(_compact(encode_mirror_line(s)) + "\n" for s in chunk)
            else:
                fh.write(_compact(encode_otlp_json(chunk)) + "\n")
            self.in_file += len(chunk)
            self.summary.spans += len(chunk)

    def _file(self) -> IO[str]:
        if self.fh is None or self.in_file >= SPANS_PER_FILE:
            self.close()
            suffix = "mirror.jsonl" if self.fmt == "mirror" else "otlp.jsonl"
            path = self.out_dir / f"spans-{len(self.summary.span_files):05d}.{suffix}"
            self.summary.span_files.append(path)
            self.fh = path.open("w", encoding="utf-8")
            self.in_file = 0
        return self.fh

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _run_items(rng: random.Random, run: _Run, tag: str, count: int, first_run: bool) -> list[_Item]:
    """`count` items of one run: assets first, then findings linking to them by ref."""
    n_assets = max(1, count // 3) if count > 1 else 0
    asset_refs: list[str] = []
    items: list[_Item] = []
    for k in range(count):
        offloaded = rng.random() < 0.02 or (first_run and k == 1)
        links: list[Any] = []
        if k < n_assets:
            item_type, data = "asset", _asset(rng, tag, k, offloaded)
            ref: str | None = f"{data['asset_type']}-{tag}-{k}"
        else:
            item_type = "finding"
            data, links = _finding(rng, tag, k, asset_refs, offloaded)
            ref = f"finding-{tag}-{k}" if rng.random() < 0.8 else None
        with_ids = rng.random() >= 0.05
        envelope = {
            "item_type": item_type, "dedupe_key": _uuid4(rng).hex, "ref": ref, "title": data["title"],
            "status": None, "notes": None, "schema_ref": f"{item_type}@1",
            "session_id": run.session_id if with_ids else None,
            "trace_id": run.trace_id if with_ids else None,
            "span_id": None,  # set once the item's span is known
            "capability": run.capability[0], "capability_version": run.capability[1],
            "data": data, "links": links or None,
        }  # fmt: skip
        arguments = {"item_type": item_type, **{key: v for key, v in data.items() if v}, "ref": ref, "links": links}
        legacy = rng.random() < 0.05 or (first_run and k == 2)
        items.append(_Item(envelope, arguments, offloaded, legacy, with_ids))
        if item_type == "asset" and ref:
            asset_refs.append(ref)
    return items


def _spans_of_run(
    rng: random.Random,
    run: _Run,
    tag: str,
    start: int,
    count: int,
    first_run: bool,
    summary: GenerationSummary,
    on_item: Callable[[_Item], None],
) -> list[Span]:
    """The run's item spans (sometimes several items on one), maybe a malformed one, then the root."""
    items = _run_items(rng, run, tag, count, first_run)
    spans: list[Span] = []
    at = start + rng.randint(1000, 5000) * 1000
    k = 0
    while k < len(items):
        size = rng.choice((2, 3)) if rng.random() < 0.08 or (first_run and k == 0) else 1
        group = items[k : k + size]
        k += size
        span_id = _hex(rng, 8)
        for item in group:
            item.envelope["span_id"] = span_id if item.with_ids else None
        spans.append(_item_span(run, rng, span_id, group, at, None))
        at = spans[-1].end_time_unix_nano + rng.randint(100, 2000) * 1000
        summary.item_outputs += len(group)
        for item in group:
            summary.offloaded += item.offloaded
            summary.items += not item.offloaded
            on_item(item)
    if first_run or rng.random() < 0.05:
        malformation = MALFORMATIONS[summary.malformed % len(MALFORMATIONS)]
        (victim,) = _run_items(rng, run, f"{tag}-m", 1, False)
        victim.offloaded = victim.legacy_value_key = False
        span_id = _hex(rng, 8)
        victim.envelope["span_id"] = span_id
        spans.append(_item_span(run, rng, span_id, [victim], at, malformation))
        at = spans[-1].end_time_unix_nano
        summary.malformed += 1
        summary.item_outputs += malformation != "truncated_outputs"
    agent = rng.choice(AGENTS)
    spans.append(_root_span(run, agent, start, at + rng.randint(100, 900) * 1000))
    return spans


def _resource(rng: random.Random) -> dict[str, Any]:
    return {
        "process.runtime.name": "cpython",
        "process.runtime.version": "3.12.9",
        "process.runtime.description": "3.12.9 (main) [GCC 12.2.0]",
        "host.name": f"runtime-{_hex(rng, 2)}",
        "host.arch": "x86_64",
        "os.type": "linux",
        "os.version": "6.1.0",
        "service.instance.id": str(_uuid4(rng)),
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.44.0",
        "service.name": "unknown_service",
        "logfire.version": "4.41.0",
        "process.pid": rng.randint(1000, 60000),
    }


def generate(
    out_dir: Path,
    *,
    sessions: int,
    runs_per_session: int,
    items_per_run: int,
    failed_post_fraction: float,
    seed: int,
    project: str = "example",
    fmt: str = "otlp-jsonl",
    progress: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Write span files and `posts.jsonl` for sessions x runs x items into `out_dir`.

    Each run is one trace: an agent root span and `items_per_run` reported items (a few offloaded,
    some sharing a span), now and then one malformed span besides. The first run always has each
    kind, so even a tiny example exercises every decoder path. `progress`, if given, is called after
    each run with the number of items that run reported (an increment, for a progress bar).
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if min(sessions, runs_per_session, items_per_run) < 0:
        raise ValueError("sessions, runs_per_session and items_per_run must not be negative")
    if not 0.0 <= failed_post_fraction <= 1.0:
        raise ValueError("failed_post_fraction must be within [0, 1]")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    summary = GenerationSummary(posts_file=out_dir / POSTS_FILE)
    writer = _Writer(out_dir, fmt, summary)
    with (out_dir / POSTS_FILE).open("w", encoding="utf-8") as posts:

        def on_item(item: _Item) -> None:
            if rng.random() >= failed_post_fraction:
                posts.write(_compact(_post_body(item.envelope)) + "\n")
                summary.posted += 1

        try:
            for si in range(sessions):
                session_id = str(_uuid4(rng))
                summary.session_ids.append(session_id)
                summary.sessions += 1
                resource = _resource(rng)
                capability = ("web-recon", "1.4.0") if rng.random() < 0.3 else (None, None)
                for ri in range(runs_per_session):
                    run_id = _hex(rng, 16) if rng.random() < 0.1 else str(_uuid4(rng))
                    run = _Run(project, session_id, run_id, _hex(rng, 16), _hex(rng, 8), resource, capability)
                    start = EPOCH_NS + si * 30_000_000_000 + ri * 20_000_000_000
                    first = si == 0 and ri == 0
                    writer.write(_spans_of_run(rng, run, f"s{si}r{ri}", start, items_per_run, first, summary, on_item))
                    summary.runs += 1
                    if progress is not None:
                        progress(items_per_run)
        finally:
            writer.close()
    return summary
