"""Well-formed requests for every operation, harmless to send (random ids, a fresh session, tagged bodies).

Auth, scope and tenancy probes send these so that the only thing wrong with a request is the thing
being probed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from harness.conformance.operations import operations

EMPTY_OTLP = b""
"""An ExportTraceServiceRequest with no spans encodes to zero bytes."""


@dataclass(frozen=True)
class Probe:
    """Keyword arguments for `Api.call`, minus the credential."""

    op_id: str
    path_params: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    content: bytes | None = None
    content_type: str | None = None
    params: dict[str, str | int | list[str]] | None = None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.path_params)
        if self.json_body is not None:
            out["json_body"] = self.json_body
        if self.content is not None:
            out["content"] = self.content
        if self.content_type is not None:
            out["content_type"] = self.content_type
        if self.params is not None:
            out["params"] = self.params
        return out


def rid() -> str:
    return str(uuid.uuid4())


def valid_probe(op_id: str, tag: str) -> Probe:
    """A request that is valid in every respect but the ids it names (which need not exist)."""
    item = {"item_id": rid()}
    bodies: dict[str, Probe] = {
        "get_item": Probe(op_id, item),
        "list_item_events": Probe(op_id, item),
        "list_item_links": Probe(op_id, item),
        "create_item": Probe(op_id, json_body={"item_type": f"hc_{tag}", "dedupe_key": f"{tag}-probe",
                                               "ref": f"{tag}-probe", "data": {}}),
        "update_item": Probe(op_id, item, json_body={"notes": f"{tag} probe"}),
        "bulk_update_items": Probe(op_id, json_body={"item_ids": [rid()], "status": "open"}),
        "create_item_link": Probe(op_id, item, json_body={"relationship": "affects", "target_item_id": rid()}),
        "delete_item_link": Probe(op_id, {**item, "link_id": rid()}),
        "rebuild_items": Probe(op_id, json_body={"session_id": rid()}),
        "ingest_traces": Probe(op_id, content=EMPTY_OTLP, content_type="application/x-protobuf"),
    }
    return bodies.get(op_id, Probe(op_id))


def all_valid_probes(tag: str) -> list[Probe]:
    return [valid_probe(op_id, tag) for op_id in operations()]


def write_ops() -> list[str]:
    return [op.id for op in operations().values() if op.writes]


def project_ops() -> list[str]:
    """Operations under a project path (all but ingest)."""
    return [op.id for op in operations().values() if "{project}" in op.template]
