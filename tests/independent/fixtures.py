"""D12: the documentation's own rebuild example (session 2489e9ad-..., run `example`) finds item spans.

Two items on one `tool:report_item` span of project `example`, written straight into the span table
in the shape ingest stores, so `rebuild_items` of that example answers `{"processed": 2}`.
"""

from __future__ import annotations

import json
from typing import Any

from .store import Store

SESSION = "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0"
TRACE, SPAN = "2489e9ad2ee28e008ec932d5f69181c0", "8ec932d5f69181c0"
START_NS = 1_767_268_800_000_000_000


def _envelope(item_type: str, ref: str, title: str, data: dict[str, Any], **more: Any) -> dict[str, Any]:
    value: dict[str, Any] = dict.fromkeys(("dedupe_key", "status", "notes", "schema_ref", "session_id", "trace_id",
                                           "span_id", "capability", "capability_version"))
    return {**value, "item_type": item_type, "ref": ref, "title": title, "data": data, "links": [], **more,
            "dedupe_key": f"d12-{ref}"}


ENVELOPES = (
    _envelope("asset", "web-1", "web-1", {"title": "web-1", "asset_type": "host", "identifier": "10.0.0.5"}),
    _envelope("finding", "sqli-login", "SQL injection in /login",
              {"title": "SQL injection in /login", "severity": "high", "category": "CWE-89",
               "description": "username param is concatenated into SQL"},
              links=[{"relationship": "affects", "target_ref": "web-1"}]),
)


def load(store: Store, org: str = "example", project: str = "example") -> None:
    outputs = [{"name": "item", "label": e["ref"], "hash": f"{n:016x}", "attributes": None}
               for n, e in enumerate(ENVELOPES)]
    objects = {o["hash"]: {"hash": o["hash"], "schema_hash": "0" * 16, "type": "val", "value": e}
               for o, e in zip(outputs, ENVELOPES, strict=True)}
    attributes = {"dreadnode.type": "tool", "dreadnode.project": project, "dreadnode.session.id": SESSION,
                  "dreadnode.run.id": "example", "dreadnode.outputs": json.dumps(outputs),
                  "dreadnode.objects": json.dumps(objects)}
    store.add_spans([{"org": org, "trace_id": TRACE, "span_id": SPAN, "parent_span_id": None,
                      "name": "tool:report_item", "start_ns": START_NS, "end_ns": START_NS + 1_000_000,
                      "project": project, "session_id": SESSION, "run_id": "example", "attributes": attributes}])
