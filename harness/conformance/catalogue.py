"""The check catalogue: every rule `harness check` verifies, with a stable ID and the authority it stands on.

IDs never change meaning once published, so a CI history of `ENV002` failures stays comparable. Our
own checks have a family prefix; Schemathesis' checks keep their own names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from harness.provenance import Authority, Provenance


class Level(IntEnum):
    """How far a run may go; each level includes the ones below it."""

    CONTRACT = 1
    """Changes nothing (only rejected writes are sent)."""
    STATEFUL = 2
    """Writes tagged items in a scratch project."""
    FULL = 3
    """Also seeds spans over OTLP and rebuilds them."""

    @classmethod
    def parse(cls, name: str) -> Level:
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    rule: str
    basis: str
    """Where the rule comes from: `D<n>` (DECISIONS.md), `documented: <page>` or `standard: <section>`."""
    level: Level
    needs: str = ""
    """An optional credential the check needs: `reader` or `other-tenant`."""

    @property
    def provenance(self) -> Provenance:
        return basis_provenance(self.basis)

    @property
    def authority(self) -> Authority:
        return self.provenance.authority

    @property
    def source(self) -> str:
        return self.provenance.source


def basis_provenance(basis: str) -> Provenance:
    """`documented: ...` and `standard: ...` name their authority; decision numbers are the reference's own."""
    kind, _, rest = basis.partition(":")
    if kind in (Authority.DOCUMENTED, Authority.STANDARD) and rest:
        return Provenance(Authority(kind), rest.strip())
    return Provenance(Authority.REFERENCE, f"DECISIONS.md {basis}")


CONTRACT = Provenance(Authority.DOCUMENTED, "openapi.yaml (an element without x-provenance: the documented contract)")
"""What a failure stands on when nothing more precise can be traced."""


def _c(id_: str, title: str, rule: str, basis: str, level: Level, needs: str = "") -> Check:
    return Check(id_, title, rule, basis, level, needs)


C, S, F = Level.CONTRACT, Level.STATEFUL, Level.FULL
ITEMS_PAGE = "documented: API reference: Items"
REBUILD_PAGE = "documented: API reference: Rebuild items"
ERRORS_PAGE = "documented: API reference: the canonical error envelope (APIErrorPayload)"
SDK = "documented: SDK dreadnode 2.0.52 (tools/report_items.py, tracing/span.py)"
OTLP = "standard: OTLP/HTTP specification (Response, Failures, Partial Success)"

OWN_CHECKS: tuple[Check, ...] = (
    # -- the error envelope, on every error response the suite sees (ours and Schemathesis')
    _c("ENV001", "envelope shape", "An error body is an application/json object (never problem+json, HTML or text).",
       ERRORS_PAGE, C),
    _c("ENV002", "envelope code", "The envelope's `code` equals the HTTP status.", ERRORS_PAGE, C),
    _c("ENV003", "envelope type", "The envelope has a `type`: a stable snake_case string.", ERRORS_PAGE, C),
    _c("ENV004", "type per status", "`type` is the one D3 gives for the status (401 may be expired_signature_error, "
       "409 already_exists_error, 500 database_error/configuration_error).", "D3", C),
    _c("ENV005", "envelope detail", "`detail` is a non-empty plain string without a traceback (the SDK reads only "
       "detail).", ERRORS_PAGE, C),
    _c("ENV006", "validation error entries", "Each `errors[]` entry carries loc (a non-empty array), msg and type.",
       ERRORS_PAGE, C),
    _c("ENV007", "Retry-After", "A 429 carries a `Retry-After` header of whole seconds.", "D3", C),
    _c("ENV008", "422 lists its problems", "Every 422 lists at least one `errors[]` entry, its loc FastAPI-style "
       "(body/query/path first).", "D2", C),
    _c("MTH001", "undeclared method", "A method a path does not declare answers 404 not_found_error in the envelope "
       "(not 405).", "D25", C),
    _c("SCH001", "response matches openapi.yaml", "Every response is documented for its operation and validates "
       "against openapi.yaml (openapi-core); each failure takes the authority of the element it breaks.",
       "documented: openapi.yaml, element by element (x-provenance)", C),
    # -- authentication, scopes, order, tenancy
    _c("AUTH001", "no credential", "A request without credential answers 401 authentication_error.", ITEMS_PAGE, C),
    _c("AUTH002", "malformed credential", "A malformed credential (empty Bearer, Basic scheme) answers 401.",
       ITEMS_PAGE, C),
    _c("AUTH003", "unknown credential", "An unknown token (as Bearer and as X-API-Key) answers 401.", ITEMS_PAGE, C),
    _c("AUTH004", "reader cannot write", "A read-only credential answers 403 on every write.", ITEMS_PAGE, C,
       "reader"),
    _c("AUTH005", "reader cannot rebuild", "rebuild_items needs items:admin: a read-only credential answers 403.",
       REBUILD_PAGE, C, "reader"),
    _c("AUTH006", "access reflects grants", "get_item_access answers 200 for any credential that sees the project, "
       "with admin => write => read, and a reader is read-only.", ITEMS_PAGE, C),
    _c("ORD001", "401 before 404", "No credential on an unknown project answers 401, not 404.", "D4", C),
    _c("ORD002", "404 before 403", "A read-only credential writing to an unknown project answers 404, not 403.",
       "D4", C, "reader"),
    _c("ORD003", "403 before 422", "A read-only credential sending invalid input to a write answers 403, not 422.",
       "D4", C, "reader"),
    _c("ORD004", "401 before 422", "No credential with invalid input answers 401, not 400/422.", "D4", C),
    _c("ORD005", "404 before 422", "Invalid input to an unknown project answers 404, not 422.", "D4", C),
    _c("ORD006", "422 before the item lookup", "Invalid input to an item that does not exist answers 400/422, not "
       "404: the request is validated before the handler looks anything up (as FastAPI does).", "D4", S),
    _c("TEN001", "unknown tenant", "An unknown organization, workspace or project answers 404 not_found_error.",
       ITEMS_PAGE, C),
    _c("TEN002", "tenant isolation", "A credential of another organization never gets this project's data: "
       "its requests are refused (4xx).", ITEMS_PAGE, C, "other-tenant"),
    _c("TEN003", "no existence leak", "Another tenant's answer for this (existing) project equals its answer for "
       "a project that does not exist: same status, type and detail.", "D4", C, "other-tenant"),
    _c("TEN004", "404 for another tenant", "A credential of another organization gets 404 on this project, "
       "never 403.", "D4", C, "other-tenant"),
    # -- input
    _c("INP001", "body not JSON", "A body that is not JSON is refused with 400 (D2; FastAPI's 422 differs from "
       "the reference only).", "standard: RFC 9110 §15.5.1 (400 Bad Request)", C),
    _c("INP002", "wrong content type", "A body in a content type the operation does not accept is refused with "
       "400 (D2; 415 or 422 differ from the reference only).", "standard: RFC 9110 §15.5.16 (415)", C),
    _c("INP003", "schema violations", "Input that breaks a documented constraint answers 422 validation_error "
       "(one errors[] entry per problem, loc FastAPI-style: D2).", ITEMS_PAGE, C),
    _c("INP004", "rebuild scope required", "rebuild_items without session_id and without a non-empty run_ids "
       "answers 422 with errors[0].loc == [\"body\"].", "D1", C),
    _c("INP005", "empty body", "An empty body on an operation that requires one answers 400 or 422, never 5xx.",
       "standard: RFC 9110 §15.5 (a client error is a 4xx)", C),
    _c("INP006", "rejected input changes nothing", "The rejected writes left nothing behind: no item holds a "
       "probe's tagged ref or the run's item type.", "standard: RFC 9110 §15.5 (a refused request has no effect)",
       C),
    _c("READ001", "reads answer", "list_items, item_summary and get_item answer 200 for the main credential, and "
       "get_item returns the item as list_items shows it.", ITEMS_PAGE, C),
    _c("EFF001", "effective status", "effective_status is disposition.status when set, else needs_review for a "
       "finding, else null; on every item the suite sees.", "D11", C),
    # -- stateful: items
    _c("DUP001", "create replay", "A create_item replay with an existing dedupe_key creates nothing and answers "
       "2xx with the original item (200 with the original body: D14).", SDK, S),
    _c("DUP002", "create status", "A new item is created (2xx; 201: D14) with every key present, source as sent, "
       "and no disposition without status/notes.", ITEMS_PAGE, S),
    _c("DAT001", "data stored as sent", "create_item stores data as sent, even a finding's that does not follow "
       "FindingData.", "D36", S),
    _c("DAT002", "unresolved inline link kept", "An inline link to a target that does not exist yet never refuses "
       "the item; a later rebuild resolves it.", "D21", S),
    _c("REF001", "ref uniqueness", "A ref another item holds is refused with 409 and creates nothing "
       "(already_exists_error: D3).", ITEMS_PAGE, S),
    _c("PAT001", "data shallow merge", "PATCH data merges its keys onto the stored data; omitted keys are kept.",
       ITEMS_PAGE, S),
    _c("PAT002", "notes keep status", "PATCH notes alone never changes the disposition status.", ITEMS_PAGE, S),
    _c("PAT003", "un-triage", "PATCH \"status\": null removes the status and keeps the notes.", ITEMS_PAGE, S),
    _c("PAT004", "disposition apart from data", "status and notes go into the disposition, never into data.",
       ITEMS_PAGE, S),
    _c("BLK001", "bulk update", "bulk_update_items updates readable ids once each, reports unknown ids as failed, "
       "answers 200 ({updated, failed}: D15).", ITEMS_PAGE, S),
    _c("LNK001", "links", "A link created on an item is listed at both ends and is gone once deleted (201/200, "
       "id == link_id, 204 without body: D14, D15).", ITEMS_PAGE, S),
    _c("EVT001", "events", "list_item_events is oldest first (ascending seq), starting with `created`.",
       ITEMS_PAGE, S),
    _c("LST001", "list filters", "Every list_items filter returns only matching items and all matching items.",
       ITEMS_PAGE, S),
    _c("LST002", "pagination", "Pages are consistent: total_pages = ceil(total/limit), has_next/has_previous, "
       "disjoint pages covering total, a page past the end is empty.", ITEMS_PAGE, S),
    _c("LST003", "sorting", "sort/order are honoured (severity critical first; created_at ascending).",
       ITEMS_PAGE, S),
    _c("SUM001", "summary", "item_summary agrees with list_items (total, by_type, by_severity, by_status).",
       ITEMS_PAGE, S),
    # -- stateful: rebuild without spans
    _c("RBL001", "processed", "rebuild_items answers 200 {processed: integer >= 0}; 0 for a selection without item "
       "spans (D5).", REBUILD_PAGE, S),
    _c("RBL002", "no row deleted", "Every item listed before a rebuild is listed after it.", REBUILD_PAGE, S),
    _c("RBL003", "no duplicate", "After a rebuild, ids and dedupe_keys are unique in the project.", REBUILD_PAGE, S),
    _c("RBL004", "disposition identical", "A rebuild leaves every disposition exactly as it was.", REBUILD_PAGE, S),
    _c("RBL005", "second rebuild changes nothing", "Rebuilding the same selection again changes no item (not even "
       "updated_at) and adds no event.", "D8, D10", S),
    # -- full: spans seeded over OTLP
    _c("ING001", "OTLP ingest", "The SDK's OTLP/HTTP protobuf export (gzip) is accepted with 200; the body is "
       "empty or a protobuf ExportTraceServiceResponse that rejects nothing.", OTLP, F),
    _c("ING002", "invalid span refused or counted", "An export holding a span with an invalid span id is answered "
       "400, or 200 with the span counted in partialSuccess.rejectedSpans; never 5xx, never a silent success.",
       OTLP, F),
    _c("ING003", "partial success", "The good spans of an export with one invalid span are kept and the bad one "
       "counted in partialSuccess.rejectedSpans.", "D19", F),
    _c("SPN001", "heal", "An item whose span exists and whose POST never landed appears after rebuild, with the "
       "span's item_type and data.", REBUILD_PAGE, F),
    _c("SPN002", "refresh", "A changed span refreshes span-owned fields; the disposition stays (id, created_at, "
       "created_by and source stay: D8).", REBUILD_PAGE, F),
    _c("SPN003", "no duplicate on span + POST", "An item both POSTed and on a span is one row.", SDK, F),
    _c("SPN004", "ref collision", "A span asking for a ref another item holds never takes it over; the rebuild "
       "answers 200.", "D9", F),
    _c("SPN005", "offloaded values", "An offloaded (type uri) envelope is not counted and does not fail the "
       "rebuild.", "D6", F),
    _c("SPN006", "session and run filters", "run_ids and session_id select spans (with both they combine and "
       "session ids compare case-insensitively: D1).", REBUILD_PAGE, F),
    _c("SPN007", "processed counts items", "processed equals the distinct items (by upsert key) of the selected "
       "spans.", "D6, D7", F),
    _c("SPN008", "older envelopes", "An envelope under `value_` and several items on one span are all "
       "materialized.", SDK, F),
    _c("SPN009", "rebuild events", "A healed item has a system `created` event, a refreshed one a system "
       "`updated` event.", "D10", F),
    _c("SPN010", "healed item's fields", "A healed item has source extracted and the disposition of the envelope's "
       "status/notes (and created_by null: D20).", "D8", F),
    _c("SPN011", "dedupe key fallback", "An envelope without dedupe_key is materialized under the key "
       "span:{trace}:{span}:{n}.", "D7", F),
)

SCHEMATHESIS_CHECKS: tuple[Check, ...] = tuple(
    Check(name, name.replace("_", " "), rule, basis, Level.CONTRACT)
    for name, rule, basis in (
        ("not_a_server_error", "No 5xx response to any generated request.",
         "standard: RFC 9110 §15.6 (5xx: the server failed a request it should have handled)"),
        ("status_code_conformance", "The status is documented for the operation (authority: the status's).",
         "documented: openapi.yaml responses (x-provenance)"),
        ("content_type_conformance", "The Content-Type is documented for the operation and status.",
         "documented: openapi.yaml responses (x-provenance)"),
        ("response_headers_conformance", "Documented required headers are present and valid.",
         "documented: openapi.yaml headers (x-provenance)"),
        ("response_schema_conformance", "The body validates against the documented schema (authority: the "
         "broken keyword's).", "documented: openapi.yaml schemas (x-provenance)"),
        ("negative_data_rejection", "Schema-invalid requests are rejected (4xx) (authority: the broken "
         "constraint's).", "documented: openapi.yaml schemas (x-provenance)"),
        ("positive_data_acceptance", "Schema-valid requests are accepted (2xx, or a documented refusal: "
                                     "401/403/404/409/429; 422 where the spec has rules JSON Schema cannot say).",
         "documented: openapi.yaml schemas (x-provenance)"),
        ("missing_required_header", "Leaving out a required header is rejected.", ITEMS_PAGE),
        ("use_after_free", "A deleted resource is gone (deleted links answer 404).",
         "standard: RFC 9110 §9.3.5 (DELETE)"),
        ("ensure_resource_availability", "A created resource is available right after creation.",
         "standard: RFC 9110 §15.3.2 (201 Created)"),
        ("ignored_auth", "Requests without or with wrong credentials are rejected.", ITEMS_PAGE),
    )
)

TOUCHED: dict[str, tuple[str, ...]] = {
    "DUP001": ("create_item", "list_items"), "DUP002": ("create_item",), "DAT001": ("create_item",),
    "REF001": ("create_item", "list_items"),
    "PAT001": ("update_item",), "PAT002": ("update_item",), "PAT003": ("update_item",), "PAT004": ("update_item",),
    "BLK001": ("bulk_update_items", "get_item"), "LNK001": ("create_item_link", "list_item_links", "delete_item_link"),
    "EVT001": ("list_item_events",), "LST001": ("list_items",), "LST002": ("list_items",), "LST003": ("list_items",),
    "SUM001": ("item_summary",), "RBL001": ("rebuild_items",), "RBL002": ("rebuild_items",),
    "RBL003": ("rebuild_items",), "RBL004": ("rebuild_items",), "RBL005": ("rebuild_items", "list_item_events"),
    "ING001": ("ingest_traces",), "ING002": ("ingest_traces",), "SPN001": ("rebuild_items",),
    "SPN002": ("rebuild_items",), "SPN003": ("rebuild_items",), "SPN004": ("rebuild_items",),
    "SPN005": ("rebuild_items",), "SPN006": ("rebuild_items", "list_items"), "SPN007": ("rebuild_items",),
    "SPN008": ("rebuild_items",), "SPN009": ("list_item_events",), "SPN010": ("rebuild_items",),
    "SPN011": ("rebuild_items",), "ING003": ("ingest_traces",), "DAT002": ("create_item",),
    "ORD006": ("update_item", "create_item_link", "delete_item_link"),
}
"""Operations each stateful/full check judges: where the matrix says `not run` when the level stops short."""

CATALOGUE: dict[str, Check] = {check.id: check for check in (*OWN_CHECKS, *SCHEMATHESIS_CHECKS)}


def check(id_: str) -> Check:
    return CATALOGUE[id_]


def catalogue_markdown() -> str:
    """The catalogue as docs/conformance.md shows it (a test keeps the two the same)."""
    lines = ["| ID | rule | authority | source | level |", "|---|---|---|---|---|"]
    lines += [f"| `{c.id}` | {c.rule} | {c.authority.value} | {c.source} | {c.level.label} |" for c in OWN_CHECKS]
    lines += ["", "| Schemathesis check | rule | authority | source |", "|---|---|---|---|"]
    lines += [f"| `{c.id}` | {c.rule} | {c.authority.value} | {c.source} |" for c in SCHEMATHESIS_CHECKS]
    return "\n".join(lines) + "\n"
