"""Every status, limit, enum, required field and rule of openapi.yaml says on what authority it stands.

`harness check` may fail someone else's deployment only on `documented` and `standard` rules and reports
`reference` differences, so the contract must mark each element (`x-provenance`), and every decision it
cites must be written down in DECISIONS.md. Nothing in the repository may point at notes outside it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.contract import load_spec, spec_path
from harness.provenance import (
    DECISION,
    EXTENSION,
    HTTP_METHODS,
    Authority,
    constraints,
    nodes,
    of_node,
    pointer,
    sources,
    unmarked,
)

ROOT = Path(__file__).resolve().parents[1]
AUTHORITIES = frozenset(a.value for a in Authority)
OUTSIDE_NOTES = "items-api" + ".md"  # spelled apart so this file does not mention it

SPEC: dict[str, Any] = load_spec()
Pointer = tuple[str | int, ...]


def _decisions() -> set[str]:
    text = (ROOT / "DECISIONS.md").read_text(encoding="utf-8")
    return {f"D{n}" for n in re.findall(r"^\*\*D(\d+)\. ", text, flags=re.MULTILINE)}


DECISIONS = _decisions()


# --------------------------------------------------------------------------------------------------
# Walking the document structurally: schema nodes, parameters, headers, operations. harness.provenance walks
# every mapping generically; this walk follows the OpenAPI structure instead, so each checks the other.


def _schema_nodes(schema: Any, path: Pointer) -> Iterator[tuple[Pointer, Mapping[str, Any]]]:
    """A schema and its subschemas (a `$ref` node is checked where it points)."""
    if not isinstance(schema, Mapping) or "$ref" in schema:
        return
    yield path, schema
    for key in ("items", "not", "additionalProperties"):
        yield from _schema_nodes(schema.get(key), (*path, key))
    for key in ("allOf", "oneOf", "anyOf"):
        for index, sub in enumerate(schema.get(key, [])):
            yield from _schema_nodes(sub, (*path, key, index))
    for name, sub in schema.get("properties", {}).items():
        yield from _schema_nodes(sub, (*path, "properties", name))


def _content_schemas(content: Mapping[str, Any], path: Pointer) -> Iterator[tuple[Pointer, Mapping[str, Any]]]:
    for media, carrier in content.items():
        yield from _schema_nodes(carrier.get("schema"), (*path, media, "schema"))


def _parameters() -> Iterator[tuple[Pointer, Mapping[str, Any]]]:
    """Every parameter object where it is written (a `$ref` entry is checked where it points)."""
    for name, param in SPEC["components"].get("parameters", {}).items():
        yield ("components", "parameters", name), param
    for template, item in SPEC["paths"].items():
        lists: list[tuple[Pointer, list[Any]]] = [(("paths", template, "parameters"), item.get("parameters", []))]
        lists += [(("paths", template, m, "parameters"), item[m].get("parameters", [])) for m in HTTP_METHODS
                  if m in item]
        for path, params in lists:
            for index, param in enumerate(params):
                if "$ref" not in param:
                    yield (*path, index), param


def _responses() -> Iterator[tuple[Pointer, Mapping[str, Any]]]:
    """Every response object where it is written: shared ones and those inline in operations."""
    for name, response in SPEC["components"].get("responses", {}).items():
        yield ("components", "responses", name), response
    for path, op in _operations():
        for status, response in op["responses"].items():
            if "$ref" not in response:
                yield (*path, "responses", str(status)), response


def _headers() -> Iterator[tuple[Pointer, Mapping[str, Any]]]:
    for name, header in SPEC["components"].get("headers", {}).items():
        yield ("components", "headers", name), header
    for path, response in _responses():
        for name, header in response.get("headers", {}).items():
            if "$ref" not in header:
                yield (*path, "headers", name), header


def _operations() -> Iterator[tuple[Pointer, Mapping[str, Any]]]:
    for template, item in SPEC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield ("paths", template, method), item[method]


def _all_schema_nodes() -> list[tuple[Pointer, Mapping[str, Any]]]:
    found: list[tuple[Pointer, Mapping[str, Any]]] = []
    for name, schema in SPEC["components"].get("schemas", {}).items():
        found += _schema_nodes(schema, ("components", "schemas", name))
    for path, param in _parameters():
        found += _schema_nodes(param.get("schema"), (*path, "schema"))
    for path, header in _headers():
        found += _schema_nodes(header.get("schema"), (*path, "schema"))
    for path, response in _responses():
        found += _content_schemas(response.get("content", {}), (*path, "content"))
    for name, body in SPEC["components"].get("requestBodies", {}).items():
        found += _content_schemas(body.get("content", {}), ("components", "requestBodies", name, "content"))
    for path, op in _operations():
        body = op.get("requestBody", {})
        if "$ref" not in body:
            found += _content_schemas(body.get("content", {}), (*path, "requestBody", "content"))
    return found


SCHEMA_NODES = _all_schema_nodes()
OPERATIONS = list(_operations())


def _covers(node: Mapping[str, Any], keyword: str) -> bool:
    return of_node(node, keyword) is not None


PROVENANCES = sources(SPEC)


# --------------------------------------------------------------------------------------------------
# 1. Schema nodes


def test_the_walk_finds_the_schema_nodes() -> None:
    constrained = [path for path, node in SCHEMA_NODES if constraints(node)]
    assert len(constrained) > 100
    assert ("components", "schemas", "RebuildItemsRequest", "properties", "run_ids", "items") in constrained


def test_every_constrained_schema_node_says_on_what_authority() -> None:
    gaps = [f"{pointer(path)} ({keyword})" for path, node in SCHEMA_NODES for keyword in constraints(node)
            if not _covers(node, keyword)]
    assert gaps == []


def test_no_constraint_outside_the_walked_schema_nodes() -> None:
    """A constraint the structural walk cannot reach would escape the check above."""
    walked = {path for path, _ in SCHEMA_NODES}
    skipped = ("paths", "components")
    stray = [
        pointer(path) for path, node in nodes(SPEC)
        if path and path[0] in skipped and constraints(node) and "$ref" not in node and path not in walked
    ]
    assert stray == []


def test_keyword_entries_name_keywords_the_node_has() -> None:
    """A `keywords` entry for a keyword the node does not carry is a stale or misspelt entry."""
    stale = []
    for path, node in nodes(SPEC):
        raw = node.get(EXTENSION)
        if isinstance(raw, Mapping) and isinstance(raw.get("keywords"), Mapping):
            stale += [f"{pointer(path)} ({k})" for k in raw["keywords"] if k not in node]
    assert stale == []


# --------------------------------------------------------------------------------------------------
# 2. Operations


def test_operations_were_found() -> None:
    assert len(OPERATIONS) == 13


@pytest.mark.parametrize(("path", "op"), OPERATIONS, ids=[str(op["operationId"]) for _, op in OPERATIONS])
def test_operation_statuses_scopes_and_rules_are_marked(path: Pointer, op: Mapping[str, Any]) -> None:
    where = f"{pointer(path)} ({op['operationId']})"
    assert [gap for gap in unmarked(SPEC) if gap.startswith(where)] == []


def test_rule_ids_are_unique_within_an_operation() -> None:
    for path, op in OPERATIONS:
        ids = [str(entry.get("id")) for entry in op[EXTENSION].get("rules", [])]
        assert len(ids) == len(set(ids)), f"{pointer(path)}: repeated rule ids {ids}"


# --------------------------------------------------------------------------------------------------
# 3-4. Parameters, headers, security schemes


def test_every_parameter_is_marked() -> None:
    params = list(_parameters())
    assert len(params) >= 20
    assert [pointer(path) for path, param in params if not _covers(param, "required")] == []


def test_every_header_is_marked() -> None:
    headers = list(_headers())
    assert headers, "the 429 response documents Retry-After"
    assert [pointer(path) for path, header in headers if not _covers(header, "required")] == []


def test_every_security_scheme_is_marked() -> None:
    schemes = SPEC["components"]["securitySchemes"]
    assert [name for name, scheme in schemes.items() if not _covers(scheme, "type")] == []


# --------------------------------------------------------------------------------------------------
# Authorities and sources


def test_provenances_were_found() -> None:
    assert len(PROVENANCES) > 300


def test_every_authority_is_one_of_the_three() -> None:
    wrong = [f"{where}: {entry.get('authority')!r}" for where, entry in PROVENANCES
             if entry.get("authority") not in AUTHORITIES]
    assert wrong == []


def test_every_source_is_a_non_empty_string() -> None:
    wrong = [where for where, entry in PROVENANCES
             if not isinstance(entry.get("source"), str) or not entry["source"].strip()]
    assert wrong == []


def test_every_reference_names_a_decision_of_decisions_md() -> None:
    wrong = []
    for where, entry in PROVENANCES:
        if entry.get("authority") != "reference":
            continue
        named = {f"D{n}" for n in DECISION.findall(str(entry.get("source", "")))}
        if not named or not named <= DECISIONS:
            wrong.append(f"{where}: {entry.get('source')!r}")
    assert wrong == []


def test_documented_and_standard_sources_name_no_decision() -> None:
    """A rule that stands on a decision is `reference`, whatever else it cites."""
    wrong = [f"{where}: {entry.get('authority')} {entry.get('source')!r}" for where, entry in PROVENANCES
             if entry.get("authority") in ("documented", "standard") and DECISION.search(str(entry.get("source")))]
    assert wrong == []


def test_every_decision_cited_in_the_spec_is_in_decisions_md() -> None:
    text = spec_path().read_text(encoding="utf-8")
    cited = {f"D{n}" for n in DECISION.findall(text)}
    assert cited, "the spec cites decisions"
    assert sorted(cited - DECISIONS, key=lambda d: int(d[1:])) == []


def test_decisions_md_numbers_are_consecutive() -> None:
    numbers = sorted(int(d[1:]) for d in DECISIONS)
    assert numbers == list(range(1, len(numbers) + 1))


# --------------------------------------------------------------------------------------------------
# Nothing points outside the repository


def test_nothing_points_at_notes_outside_the_repository() -> None:
    files = [spec_path(), ROOT / "ARCHITECTURE.md", ROOT / "DECISIONS.md"]
    for folder in ("harness", "tests"):
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".yaml",
                                                                                                ".yml", ".toml"))
    mentioning = [str(p.relative_to(ROOT)) for p in files if OUTSIDE_NOTES in p.read_text(encoding="utf-8")]
    assert mentioning == []


def test_the_suites_reader_finds_nothing_unmarked() -> None:
    """`harness check` reads provenance through harness.provenance: it must see the contract complete too."""
    assert unmarked(SPEC) == []


def test_an_unmarked_element_is_found() -> None:
    """The completeness check can fail: a status, a constraint and a cited decision left unmarked are each named."""
    spec = copy.deepcopy(SPEC)
    op = spec["paths"]["/org/{org}/ws/{workspace}/projects/{project}/items/rebuild"]["post"]
    del op[EXTENSION]["responses"]["200"]
    op["description"] += " See D3."
    op[EXTENSION]["rules"] = [r for r in op[EXTENSION]["rules"] if "D3" not in str(r.get("source"))]
    del spec["components"]["schemas"]["RebuildItemsRequest"]["properties"]["run_ids"]["items"][EXTENSION]
    gaps = unmarked(spec)
    assert any("response 200" in g for g in gaps) and any("D3 is in the description" in g for g in gaps)
    assert any("run_ids/items (maxLength)" in g for g in gaps)
