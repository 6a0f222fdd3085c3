"""openapi.yaml checks itself: a valid OpenAPI 3.0.3 document whose examples obey its own schemas,
whose operations are the 13 the project implements, and whose errors all use the shared envelope."""

from __future__ import annotations

import copy
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from harness.conformance.envelope import TYPE_BY_STATUS
from harness.contract import load_spec, spec_path

JSONObject = dict[str, Any]

SPEC_URI = "urn:items-harness:openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ENVELOPE_REF = "#/components/schemas/APIErrorPayload"

EXPECTED_OPERATIONS: dict[str, tuple[str, str, list[str]]] = {
    # operationId: (method, path relative to the server URL, x-scopes)
    "rebuild_items": ("post", "/org/{org}/ws/{workspace}/projects/{project}/items/rebuild", ["items:admin"]),
    "create_item": ("post", "/org/{org}/ws/{workspace}/projects/{project}/items", ["items:write"]),
    "list_items": ("get", "/org/{org}/ws/{workspace}/projects/{project}/items", ["items:read"]),
    "get_item": ("get", "/org/{org}/ws/{workspace}/projects/{project}/items/{item_id}", ["items:read"]),
    "update_item": ("patch", "/org/{org}/ws/{workspace}/projects/{project}/items/{item_id}", ["items:write"]),
    "bulk_update_items": (
        "post",
        "/org/{org}/ws/{workspace}/projects/{project}/items/bulk-update",
        ["items:write"],
    ),
    "create_item_link": (
        "post",
        "/org/{org}/ws/{workspace}/projects/{project}/items/{item_id}/links",
        ["items:write"],
    ),
    "list_item_links": (
        "get",
        "/org/{org}/ws/{workspace}/projects/{project}/items/{item_id}/links",
        ["items:read"],
    ),
    "delete_item_link": (
        "delete",
        "/org/{org}/ws/{workspace}/projects/{project}/items/{item_id}/links/{link_id}",
        ["items:write"],
    ),
    "list_item_events": (
        "get",
        "/org/{org}/ws/{workspace}/projects/{project}/items/{item_id}/events",
        ["items:read"],
    ),
    "get_item_access": ("get", "/org/{org}/ws/{workspace}/projects/{project}/items/access", []),
    "item_summary": ("get", "/org/{org}/ws/{workspace}/projects/{project}/items/summary", ["items:read"]),
    "ingest_traces": ("post", "/org/{org}/otel/traces", ["items:write"]),
}

ALL_ERROR_STATUSES = frozenset({"400", "401", "403", "404", "409", "422", "426", "429", "500", "502", "504"})
COMMON_ERROR_STATUSES = frozenset({"400", "401", "404", "422", "429", "500"})

SUCCESS_STATUSES: dict[str, frozenset[str]] = {op_id: frozenset({"200"}) for op_id in EXPECTED_OPERATIONS} | {
    "create_item": frozenset({"200", "201"}),
    "create_item_link": frozenset({"200", "201"}),
    "delete_item_link": frozenset({"204"}),
}

D3_TYPES = TYPE_BY_STATUS  # one table of D3 (and the documented alternatives), shared with harness check

SPEC: JSONObject = load_spec()


# --------------------------------------------------------------------------------------------------
# Helpers: walking the document


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(*tokens: str) -> str:
    return "".join("/" + _escape(token) for token in tokens)


def _at(pointer: str) -> Any:
    node: Any = SPEC
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _follow(node: Any, pointer: str) -> tuple[Any, str]:
    """Follow local `$ref`s until a concrete node; return it with its JSON pointer."""
    seen: set[str] = set()
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        assert isinstance(ref, str), f"{pointer}: $ref must be a string"
        assert ref.startswith("#/"), f"{pointer}: only local $refs are allowed, got {ref}"
        assert ref not in seen, f"{pointer}: $ref cycle through {ref}"
        seen.add(ref)
        pointer = ref[1:]
        node = _at(pointer)
    return node, pointer


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    node: JSONObject
    pointer: str

    @property
    def operation_id(self) -> str:
        return str(self.node["operationId"])

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def _operations() -> list[Operation]:
    found: list[Operation] = []
    for path, item in SPEC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                found.append(Operation(path, method, item[method], _pointer("paths", path, method)))
    return found


OPERATIONS = _operations()
OPERATIONS_BY_ID = {op.operation_id: op for op in OPERATIONS if "operationId" in op.node}


def _responses(op: Operation) -> Iterator[tuple[str, JSONObject, str, Any]]:
    """(status, resolved response, its pointer, the raw entry as written in the operation)."""
    for status, raw in op.node["responses"].items():
        resolved, pointer = _follow(raw, op.pointer + _pointer("responses", str(status)))
        yield str(status), resolved, pointer, raw


# --------------------------------------------------------------------------------------------------
# Helpers: validating instances against schemas of the document


def _format_checker() -> Any:
    """OAS 3.0 formats plus jsonschema's own (uuid, date-time, ...), so formats are really checked."""
    jsonschema = importlib.import_module("jsonschema")
    checker = jsonschema.FormatChecker()
    checker.checkers.update(oas30_format_checker.checkers)
    return checker


FORMAT_CHECKER = _format_checker()
REGISTRY: Registry[Any] = Registry().with_resource(
    SPEC_URI, Resource.from_contents(copy.deepcopy(SPEC), default_specification=DRAFT4)
)


def _errors(instance: Any, schema_pointer: str) -> list[str]:
    """Validation errors of `instance` against the schema at `schema_pointer`, $refs resolved."""
    validator = OAS30Validator(
        {"$ref": f"{SPEC_URI}#{schema_pointer}"}, registry=REGISTRY, format_checker=FORMAT_CHECKER
    )
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


@dataclass(frozen=True)
class ExampleCase:
    where: str
    value: Any
    schema_pointer: str


_SUBSCHEMA_KEYS = ("items", "not", "additionalProperties")
_SUBSCHEMA_LIST_KEYS = ("allOf", "oneOf", "anyOf")


def _schema_examples(schema: Any, pointer: str) -> Iterator[ExampleCase]:
    """Schema-level `example`s of an inline schema tree (refs are walked where they are defined)."""
    if not isinstance(schema, Mapping) or "$ref" in schema:
        return
    if "example" in schema:
        yield ExampleCase(f"schema {pointer} example", schema["example"], pointer)
    for key in _SUBSCHEMA_KEYS:
        if isinstance(schema.get(key), Mapping):
            yield from _schema_examples(schema[key], f"{pointer}/{key}")
    for key in _SUBSCHEMA_LIST_KEYS:
        for index, sub in enumerate(schema.get(key, [])):
            yield from _schema_examples(sub, f"{pointer}/{key}/{index}")
    for name, sub in schema.get("properties", {}).items():
        yield from _schema_examples(sub, f"{pointer}/properties/{_escape(name)}")


def _carrier_examples(carrier: Mapping[str, Any], pointer: str, where: str) -> Iterator[ExampleCase]:
    """Examples of a Media Type, Parameter or Header object, against its schema."""
    if "schema" not in carrier:
        return
    schema_pointer = f"{pointer}/schema"
    if "example" in carrier:
        yield ExampleCase(f"{where} example", carrier["example"], schema_pointer)
    for name, raw in carrier.get("examples", {}).items():
        example, _ = _follow(raw, f"{pointer}/examples/{_escape(name)}")
        if "value" in example:
            yield ExampleCase(f"{where} examples/{name}", example["value"], schema_pointer)
    yield from _schema_examples(carrier["schema"], schema_pointer)


def _all_examples() -> list[ExampleCase]:
    cases: list[ExampleCase] = []
    for name, schema in SPEC["components"]["schemas"].items():
        cases.extend(_schema_examples(schema, _pointer("components", "schemas", name)))
    for op in OPERATIONS:
        for index, raw in enumerate(op.node.get("parameters", [])):
            param, pointer = _follow(raw, f"{op.pointer}/parameters/{index}")
            cases.extend(_carrier_examples(param, pointer, f"{op.label} parameter {param['name']}"))
        if "requestBody" in op.node:
            body, body_pointer = _follow(op.node["requestBody"], f"{op.pointer}/requestBody")
            for media, carrier in body.get("content", {}).items():
                cases.extend(
                    _carrier_examples(
                        carrier, f"{body_pointer}/content/{_escape(media)}", f"{op.label} request {media}"
                    )
                )
        for status, response, pointer, _ in _responses(op):
            # A shared component response is checked once, under its own name.
            label = pointer if pointer.startswith("/components/") else f"{op.label} {status}"
            for media, carrier in response.get("content", {}).items():
                cases.extend(
                    _carrier_examples(carrier, f"{pointer}/content/{_escape(media)}", f"{label} {media}")
                )
            for header, raw_header in response.get("headers", {}).items():
                header_node, header_pointer = _follow(raw_header, f"{pointer}/headers/{_escape(header)}")
                cases.extend(_carrier_examples(header_node, header_pointer, f"{label} header {header}"))
    for path, item in SPEC["paths"].items():
        for index, raw in enumerate(item.get("parameters", [])):
            param, pointer = _follow(raw, _pointer("paths", path, "parameters", str(index)))
            label = pointer if pointer.startswith("/components/") else f"{path} parameter {param['name']}"
            cases.extend(_carrier_examples(param, pointer, label))
    unique: dict[str, ExampleCase] = {}
    for case in cases:
        unique.setdefault(case.where, case)
    return list(unique.values())


EXAMPLES = _all_examples()


# --------------------------------------------------------------------------------------------------
# 1. The document is valid OpenAPI 3.0.3


def test_spec_file_is_the_repository_copy() -> None:
    assert spec_path().name == "openapi.yaml"
    assert SPEC["openapi"] == "3.0.3"
    assert SPEC["info"]["title"] == "Items API"
    assert SPEC["info"]["version"] == "1.0.0"
    assert SPEC["servers"] == [{"url": "/api/v1"}]


def test_openapi_spec_validator_accepts_the_spec() -> None:
    validate_spec(copy.deepcopy(SPEC))


def test_all_response_keys_are_strings() -> None:
    """Unquoted YAML status codes load as ints, which some tools silently mishandle."""
    for op in OPERATIONS:
        for status in op.node["responses"]:
            assert isinstance(status, str), f"{op.label}: status {status!r} must be quoted in YAML"


# --------------------------------------------------------------------------------------------------
# 2. Every example validates against its schema


def test_examples_were_found() -> None:
    assert len(EXAMPLES) > 40


@pytest.mark.parametrize("case", EXAMPLES, ids=[case.where for case in EXAMPLES])
def test_example_matches_its_schema(case: ExampleCase) -> None:
    assert _errors(case.value, case.schema_pointer) == []


def _schema(name: str) -> str:
    return _pointer("components", "schemas", name)


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ("RebuildItemsResponse", {"processed": -1}),
        ("RebuildItemsResponse", {}),
        ("RebuildItemsRequest", {"session_id": "not-a-uuid"}),
        ("RebuildItemsRequest", {"run_ids": [""]}),
        ("LinkCreate", {"relationship": "affects"}),
        (
            "LinkCreate",
            {
                "relationship": "affects",
                "target_ref": "web-1",
                "target_item_id": "7c2d4e6f-8a1b-4c3d-9e5f-0a1b2c3d4e5f",
            },
        ),
        ("LinkCreate", {"relationship": "affects", "target_ref": None}),
        ("CreateItemLinkRequest", {"relationship": "affects"}),
        ("CreateItemRequest", {"item_type": ""}),
        ("CreateItemRequest", {"item_type": "finding", "status": "needs_review"}),
        ("BulkUpdateItemsRequest", {"item_ids": ["5b0e3c1a-2f4d-4a8b-9e7c-6d1f2a3b4c5d"]}),
        ("BulkUpdateItemsRequest", {"item_ids": [], "status": None}),
        ("APIErrorPayload", {"code": 418, "detail": "teapot", "type": "teapot_error"}),
        ("APIErrorPayload", {"code": 400, "detail": "x", "type": "Bad-Type"}),
        (
            "APIErrorPayload",
            {"code": 422, "detail": "x", "type": "validation_error", "errors": [{"loc": ["body"]}]},
        ),
        ("ItemSummaryResponse", {"total": 0, "by_severity": {}, "by_status": {}, "by_type": {}}),
        ("Disposition", {"status": "needs_review", "notes": None, "updated_at": None, "updated_by": None}),
        ("LinkResponse", {"id": "x"}),
    ],
)
def test_validator_rejects_bad_instances(schema: str, instance: JSONObject) -> None:
    """The example check is real: the same machinery rejects instances that break the schemas."""
    assert _errors(instance, _schema(schema)) != []


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ("RebuildItemsRequest", {"run_ids": None, "session_id": None}),
        ("RebuildItemsRequest", {}),
        ("RebuildItemsRequest", {"session_id": "2489E9AD-2EE2-8E00-8EC9-32D5F69181C0", "extra": 1}),
        ("LinkCreate", {"relationship": "affects", "target_item_id": "7c2d4e6f-8a1b-4c3d-9e5f-0a1b2c3d4e5f"}),
        (
            "BulkUpdateItemsRequest",
            {"item_ids": ["5b0e3c1a-2f4d-4a8b-9e7c-6d1f2a3b4c5d"] * 2, "status": None},
        ),
        ("UpdateItemRequest", {"status": None}),
        ("Disposition", None),
        (
            "ItemSummaryResponse",
            {"total": 0, "by_severity": {}, "by_status": {}, "by_type": {}, "worst_severity": None},
        ),
    ],
)
def test_validator_accepts_nullable_and_open_instances(schema: str, instance: Any) -> None:
    assert _errors(instance, _schema(schema)) == []


# --------------------------------------------------------------------------------------------------
# 3. Operations, scopes, handlers


def test_operation_ids_are_exactly_the_thirteen() -> None:
    ids = [op.node.get("operationId") for op in OPERATIONS]
    assert len(ids) == len(set(ids)), f"duplicate operationIds: {ids}"
    assert set(ids) == set(EXPECTED_OPERATIONS)


@pytest.mark.parametrize("operation_id", sorted(EXPECTED_OPERATIONS))
def test_operation_path_method_and_scopes(operation_id: str) -> None:
    method, path, scopes = EXPECTED_OPERATIONS[operation_id]
    op = OPERATIONS_BY_ID[operation_id]
    assert (op.method, op.path) == (method, path)
    assert "x-scopes" in op.node, f"{operation_id} has no x-scopes"
    assert op.node["x-scopes"] == scopes
    assert op.node.get("tags"), f"{operation_id} has no tags"
    for scope in scopes:
        assert scope in op.node["description"], f"{operation_id}: description does not state {scope}"


def test_security_schemes_and_global_requirement() -> None:
    schemes = SPEC["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {**schemes["BearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["ApiKeyAuth"] == {
        **schemes["ApiKeyAuth"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert SPEC["security"] == [{"BearerAuth": []}, {"ApiKeyAuth": []}]
    for op in OPERATIONS:
        assert "security" not in op.node, f"{op.label} overrides the global security"


def test_every_operation_id_resolves_to_a_handler() -> None:
    handlers = importlib.import_module("harness.server.handlers")
    missing = [op_id for op_id in sorted(EXPECTED_OPERATIONS) if not callable(getattr(handlers, op_id, None))]
    assert missing == [], f"harness.server.handlers lacks callables for: {missing}"


def test_path_parameters_are_declared_with_their_limits() -> None:
    for op in OPERATIONS:
        params = {}
        for index, raw in enumerate(
            SPEC["paths"][op.path].get("parameters", []) + op.node.get("parameters", [])
        ):
            param, _ = _follow(raw, f"{op.pointer}/parameters/{index}")
            params[(param["name"], param["in"])] = param
        for name in ("org", "workspace", "project"):
            if "{" + name + "}" not in op.path:
                continue
            schema = params[(name, "path")]["schema"]
            assert (schema["type"], schema["minLength"], schema["maxLength"]) == ("string", 1, 128), op.label
        for name in ("item_id", "link_id"):
            if "{" + name + "}" in op.path:
                schema = params[(name, "path")]["schema"]
                assert (schema["type"], schema["format"]) == ("string", "uuid"), op.label
        declared = {name for (name, where) in params if where == "path"}
        in_path = {segment[1:-1] for segment in op.path.split("/") if segment.startswith("{")}
        assert declared == in_path, f"{op.label}: path parameters {declared} != {in_path}"


def test_success_statuses_follow_d14() -> None:
    for op_id, expected in SUCCESS_STATUSES.items():
        op = OPERATIONS_BY_ID[op_id]
        success = {status for status in op.node["responses"] if str(status).startswith("2")}
        assert success == expected, f"{op_id}: success statuses {success} != {set(expected)}"
    delete = OPERATIONS_BY_ID["delete_item_link"].node["responses"]["204"]
    assert "content" not in delete


def test_openapi_links_point_at_real_operations_and_parameters() -> None:
    checked = 0
    for op in OPERATIONS:
        for status, response, _, _ in _responses(op):
            for name, link in response.get("links", {}).items():
                target = OPERATIONS_BY_ID[link["operationId"]]
                target_params = {
                    _follow(raw, "")[0]["name"]
                    for raw in SPEC["paths"][target.path].get("parameters", [])
                    + target.node.get("parameters", [])
                }
                assert set(link["parameters"]) <= target_params, f"{op.label} {status} link {name}"
                checked += 1
    create_links = {
        status: set(OPERATIONS_BY_ID["create_item"].node["responses"][status]["links"])
        for status in ("200", "201")
    }
    expected = {"GetItem", "UpdateItem", "ListItemLinks", "ListItemEvents", "CreateItemLink"}
    assert create_links == {"200": expected, "201": expected}
    link_links = OPERATIONS_BY_ID["create_item_link"].node["responses"]["201"]["links"]
    assert link_links["DeleteItemLink"]["parameters"]["link_id"] == "$response.body#/link_id"
    assert checked >= 11


# --------------------------------------------------------------------------------------------------
# 4. Errors: one shared envelope, the right statuses, Retry-After on 429


def _error_schema_ref(response: Mapping[str, Any]) -> str | None:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref")
    return ref if isinstance(ref, str) else None


def test_every_error_response_uses_the_envelope() -> None:
    for op in OPERATIONS:
        for status, response, pointer, raw in _responses(op):
            if status.startswith("2"):
                continue
            where = f"{op.label} {status}"
            assert "$ref" in raw, f"{where}: must reference components/responses"
            assert raw["$ref"].startswith("#/components/responses/"), where
            assert _error_schema_ref(response) == ENVELOPE_REF, (
                f"{where}: {pointer} does not use APIErrorPayload"
            )
            assert set(response["content"]) == {"application/json"}, where


def test_every_429_documents_retry_after() -> None:
    for op in OPERATIONS:
        for status, response, _, _ in _responses(op):
            if status == "429":
                header, _ = _follow(response.get("headers", {}).get("Retry-After"), "")
                assert header is not None, f"{op.label}: 429 without Retry-After"
                assert header["schema"]["type"] == "integer"


def test_error_statuses_per_operation() -> None:
    for op in OPERATIONS:
        errors = {status for status in op.node["responses"] if not str(status).startswith("2")}
        assert errors <= ALL_ERROR_STATUSES, f"{op.label}: unexpected statuses {errors - ALL_ERROR_STATUSES}"
        if op.operation_id == "ingest_traces":
            # OTLP/HTTP "Bad Data": a request that is not an ExportTraceServiceRequest is a 400, never a 422.
            assert "422" not in errors, "ingest_traces follows OTLP/HTTP: bad data is 400"
            expected = COMMON_ERROR_STATUSES - {"422"}
        else:
            expected = COMMON_ERROR_STATUSES
        assert errors >= expected, f"{op.label}: missing {expected - errors}"
        if op.operation_id == "get_item_access":
            assert "403" not in errors, "get_item_access needs any valid credential: no 403"
        else:
            assert "403" in errors, f"{op.label}: missing 403"
        if op.operation_id in ("create_item", "create_item_link", "rebuild_items"):
            assert "409" in errors, f"{op.label}: missing 409"
    rebuild = {
        str(s) for s in OPERATIONS_BY_ID["rebuild_items"].node["responses"] if not str(s).startswith("2")
    }
    assert rebuild == ALL_ERROR_STATUSES


def test_shared_error_responses_exist_with_d3_examples() -> None:
    responses = SPEC["components"]["responses"]
    names = {
        "BadRequest": 400,
        "Unauthorized": 401,
        "Forbidden": 403,
        "NotFound": 404,
        "Conflict": 409,
        "ValidationError": 422,
        "UpgradeRequired": 426,
        "RateLimited": 429,
        "InternalError": 500,
        "BadGateway": 502,
        "GatewayTimeout": 504,
    }
    assert set(names) <= set(responses)
    for name, code in names.items():
        media = responses[name]["content"]["application/json"]
        assert media["schema"] == {"$ref": ENVELOPE_REF}, name
        assert media.get("examples"), f"{name} has no named example"
        for example_name, raw in media["examples"].items():
            value = _follow(raw, "")[0]["value"]
            assert value["code"] == code, f"{name}/{example_name}: code {value['code']} != {code}"
            assert value["type"] in D3_TYPES[code], f"{name}/{example_name}: type {value['type']} breaks D3"
    for op in OPERATIONS:
        for status, raw in op.node["responses"].items():
            if "$ref" in raw:
                target = raw["$ref"].rsplit("/", 1)[-1]
                assert names.get(target) == int(status), f"{op.label} {status} references {target}"


def test_envelope_schema_is_complete() -> None:
    envelope = SPEC["components"]["schemas"]["APIErrorPayload"]
    assert envelope["required"] == ["code", "detail", "type"]
    assert sorted(envelope["properties"]["code"]["enum"]) == sorted(int(s) for s in ALL_ERROR_STATUSES)
    assert envelope["properties"]["type"]["pattern"] == "^[a-z][a-z0-9_]*$"
    detail, _ = _follow(envelope["properties"]["errors"]["items"], "")
    assert sorted(detail["required"]) == ["loc", "msg", "type"]


# --------------------------------------------------------------------------------------------------
# 5. Every request body and every response with content has a named example


def test_every_body_has_a_named_example() -> None:
    missing: list[str] = []
    for op in OPERATIONS:
        if "requestBody" in op.node:
            body, _ = _follow(op.node["requestBody"], "")
            for media, carrier in body["content"].items():
                if not carrier.get("examples"):
                    missing.append(f"{op.label} request {media}")
        for status, response, _, _ in _responses(op):
            if not response.get("content"):
                assert status == "204", f"{op.label} {status}: a response without a body must be 204"
                continue
            for media, carrier in response["content"].items():
                if not carrier.get("examples"):
                    missing.append(f"{op.label} {status} {media}")
    assert missing == []


def test_named_examples_have_values() -> None:
    for case_op in OPERATIONS:
        for status, response, pointer, _ in _responses(case_op):
            for media, carrier in response.get("content", {}).items():
                for name, raw in carrier.get("examples", {}).items():
                    example, _ = _follow(raw, f"{pointer}/content/{_escape(media)}/examples/{name}")
                    assert "value" in example, (
                        f"{case_op.label} {status} {media} examples/{name} has no value"
                    )


def test_documentation_example_is_the_rebuild_request_example() -> None:
    op = OPERATIONS_BY_ID["rebuild_items"]
    examples = op.node["requestBody"]["content"]["application/json"]["examples"]
    values = [_follow(raw, "")[0]["value"] for raw in examples.values()]
    assert {"run_ids": ["example"], "session_id": "2489E9AD-2EE2-8E00-8EC9-32D5F69181C0"} in values


# --------------------------------------------------------------------------------------------------
# Decisions are written where a reader finds them


def _text(node: Any) -> str:
    if isinstance(node, Mapping):
        return " ".join(_text(value) for key, value in node.items() if key not in ("examples", "example"))
    if isinstance(node, list):
        return " ".join(_text(value) for value in node)
    return node if isinstance(node, str) else ""


@pytest.mark.parametrize(
    ("where", "decisions"),
    [
        ("/info", ["D2", "D3", "D4", "D12"]),
        ("rebuild_items", ["D1", "D5", "D6", "D7", "D8", "D9", "D10"]),
        ("ingest_traces", ["D13"]),
        ("create_item", ["D14"]),
        ("create_item_link", ["D14"]),
        ("delete_item_link", ["D14"]),
        ("/components/schemas/ItemResponse", ["D11"]),
        ("/components/schemas/LinkResponse", ["D15"]),
        ("/components/schemas/BulkUpdateItemsResponse", ["D15"]),
        ("/components/schemas/Disposition", ["D15"]),
    ],
)
def test_decisions_are_written_down(where: str, decisions: list[str]) -> None:
    node = _at(where) if where.startswith("/") else OPERATIONS_BY_ID[where].node
    text = _text(node)
    for decision in decisions:
        assert decision in text, f"{where} does not mention {decision}"
