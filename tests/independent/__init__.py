"""A second, independent implementation of the Items API, for tests only.

Written from the platform's documentation and SDK as the project records them (no code of
`harness`, no openapi.yaml loaded), so that `harness check` can be shown to judge an implementation
it was not built beside. Where the documentation is silent it deliberately decides otherwise than the
reference server: `DIFFERENCES` lists those choices. Everywhere else it follows D1-D15, and the
reference's DECISIONS.md where that fills a gap (empty body 422, event payloads, sort ranks, body
caps), except that it enforces only the limits the documentation gives (none of D22's).
"""

from __future__ import annotations

from .app import create_app
from .auth import CREDENTIALS, PROJECTS, Credential, Project, Tenancy

DIFFERENCES: list[tuple[str, str]] = [
    ("update_item, create_item_link and delete_item_link look the item up before reading the body: an item that "
     "does not exist answers 404 even to a body that is not JSON, of the wrong content type, empty or invalid",
     "D4 (the reference validates input, 400/422, before the item's 404)"),
    ("an item healed by rebuild has created_by \"system\"",
     "D20 (a healed item has created_by null)"),
    ("create_item with an inline link whose target does not exist answers 404 not_found_error and creates nothing",
     "D21 (the reference keeps such a link for a later rebuild)"),
    ("OTLP ingest refuses a request holding any invalid span (ids of the wrong length) whole with 400",
     "D19 (the reference stores the good spans and counts the bad in partial_success)"),
    ("only the limits the documentation gives are enforced (no cap on page, run_ids entries, notes, ...)",
     "D22 (limits only the reference's contract sets)"),
]
"""(what this implementation does, the decision of the reference it departs from). A sixth choice, an
OTLP answer of zero bytes for a protobuf export, was a difference until the reference followed OTLP/HTTP
to the same answer (D19)."""

__all__ = ["CREDENTIALS", "DIFFERENCES", "PROJECTS", "Credential", "Project", "Tenancy", "create_app"]
