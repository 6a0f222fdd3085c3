"""On what authority each element of openapi.yaml stands: `documented`, `standard` or `reference`.

`harness check` runs against deployments its authors do not control. A rule may fail such a
deployment only when it traces to the platform's documentation or to a standard; where the
documentation is silent the contract records this project's own decision (DECISIONS.md), and a
deployment that decides otherwise merely differs from the reference. The contract says which is
which in `x-provenance` extensions, read here:

- on a schema node: `{authority, source}`, optionally `keywords: {maxLength: {authority, source}}`
  where one keyword of the node stands on another authority than the rest;
- on a parameter or header object: its existence and `required`;
- on an operation: the operation itself, plus `responses` (status -> provenance: a `$ref` response
  cannot carry extensions), `scopes` (its `x-scopes`) and `rules` (each rule its description states).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

EXTENSION = "x-provenance"
CONSTRAINT_KEYWORDS = frozenset({
    "maxLength", "minLength", "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "maxItems",
    "minItems", "uniqueItems", "pattern", "enum", "format", "required", "multipleOf", "minProperties",
    "maxProperties",
})
"""Schema keywords that constrain a value: each needs a stated authority."""
DECISION = re.compile(r"\bD(\d+)\b")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class Authority(StrEnum):
    DOCUMENTED = "documented"
    """The platform's public documentation, or the SDK's documented behaviour."""
    STANDARD = "standard"
    """HTTP semantics, OTLP/HTTP, JSON Schema validation of what the documentation states."""
    REFERENCE = "reference"
    """A decision of this project (DECISIONS.md) where the documentation is silent."""

    @property
    def fails_by_default(self) -> bool:
        """Only documented and standard rules fail someone else's deployment without `--strict`."""
        return self is not Authority.REFERENCE


@dataclass(frozen=True)
class Provenance:
    authority: Authority
    source: str

    def __str__(self) -> str:
        return f"{self.authority.value}: {self.source}"


def _parse(raw: Any) -> Provenance | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        authority = Authority(str(raw.get("authority")))
    except ValueError:
        return None
    return Provenance(authority, str(raw.get("source") or ""))


def weakest(provenances: Iterable[Provenance | None]) -> Provenance | None:
    """The provenance a combined rule stands on: a rule is only as binding as its least binding part."""
    order = (Authority.REFERENCE, Authority.STANDARD, Authority.DOCUMENTED)
    known = [p for p in provenances if p is not None]
    return min(known, key=lambda p: order.index(p.authority)) if known else None


def of_node(node: Mapping[str, Any], keyword: str | None = None) -> Provenance | None:
    """The provenance of `keyword` on a schema, parameter or header node (None when unmarked)."""
    raw = node.get(EXTENSION)
    if not isinstance(raw, Mapping):
        return None
    keywords = raw.get("keywords")
    if keyword is not None and isinstance(keywords, Mapping) and keyword in keywords:
        return _parse(keywords[keyword])
    return _parse(raw)


def _located(spec: Mapping[str, Any], operation_id: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(path item, operation) of an operationId."""
    for path_item in spec.get("paths", {}).values():
        for method in HTTP_METHODS:
            op = path_item.get(method)
            if isinstance(op, Mapping) and op.get("operationId") == operation_id:
                return path_item, op
    raise KeyError(operation_id)


def operation_of(spec: Mapping[str, Any], operation_id: str) -> Mapping[str, Any]:
    return _located(spec, operation_id)[1]


def request_schema(spec: Mapping[str, Any], operation_id: str, where: str, name: str | None = None) -> Any:
    """The schema of one request component: the JSON body (`where="body"`), or the named parameter's."""
    op = operation_of(spec, operation_id)
    if where == "body":
        body = resolve(spec, op.get("requestBody")) or {}
        return body.get("content", {}).get("application/json", {}).get("schema")
    for param in parameters_of(spec, operation_id):
        if param.get("in") == where and param.get("name") == name:
            return param.get("schema")
    return None


def parameters_of(spec: Mapping[str, Any], operation_id: str) -> list[Mapping[str, Any]]:
    """The operation's parameters, its path's included, `$ref`s resolved."""
    path_item, op = _located(spec, operation_id)
    declared = [*path_item.get("parameters", []), *op.get("parameters", [])]
    return [p for p in (resolve(spec, d) for d in declared) if isinstance(p, Mapping)]


def response_schema(spec: Mapping[str, Any], operation_id: str, status: int | str, media: str) -> Any:
    """The schema the operation declares for `status` in `media` (None where it declares none)."""
    response = resolve(spec, operation_of(spec, operation_id).get("responses", {}).get(str(status))) or {}
    return resolve(spec, response.get("content", {}).get(media, {}).get("schema"))


def of_response(spec: Mapping[str, Any], operation_id: str, status: int | str) -> Provenance | None:
    """The provenance of status `status` being an answer of the operation."""
    raw = operation_of(spec, operation_id).get(EXTENSION)
    responses = raw.get("responses") if isinstance(raw, Mapping) else None
    return _parse(responses.get(str(status))) if isinstance(responses, Mapping) else None


# --------------------------------------------------------------------------- completeness


def pointer(parts: Iterable[str | int]) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def nodes(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    """Every mapping of the document with its path, examples and the extensions themselves excluded."""
    if isinstance(value, Mapping):
        yield path, value
        for key, child in value.items():
            if key in ("example", "examples", EXTENSION):
                continue
            yield from nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from nodes(child, (*path, index))


def constraints(node: Mapping[str, Any]) -> list[str]:
    """The constraint keywords of a schema node (`required: true` of a parameter or header is not one)."""
    return sorted(k for k in node if k in CONSTRAINT_KEYWORDS and not isinstance(node[k], bool))


def _operation_gaps(path: tuple[str | int, ...], op: Mapping[str, Any]) -> list[str]:
    where = f"{pointer(path)} ({op.get('operationId')})"
    raw = op.get(EXTENSION)
    if _parse(raw) is None or not isinstance(raw, Mapping):
        return [f"{where}: the operation itself"]
    marked = raw.get("responses", {})
    if not isinstance(marked, Mapping):
        return [f"{where}: responses must map status -> provenance"]
    declared = {str(status) for status in op.get("responses", {})}
    gaps = [f"{where}: response {s} has no provenance" for s in sorted(declared) if _parse(marked.get(s)) is None]
    gaps += [f"{where}: provenance for undeclared response {s}" for s in sorted(map(str, marked)) if s not in declared]
    if "x-scopes" in op and _parse(raw.get("scopes")) is None:
        gaps.append(f"{where}: x-scopes has no provenance")
    entries = raw.get("rules", [])
    if not isinstance(entries, list):
        return [*gaps, f"{where}: rules must be a list"]
    gaps += [f"{where}: rule {n} lacks {sorted({'id', 'authority', 'source', 'rule'} - set(entry))}"
             for n, entry in enumerate(entries) if {"id", "authority", "source", "rule"} - set(entry)]
    ruled = {str(entry.get("id")) for entry in entries} | {str(entry.get("source")) for entry in entries}
    gaps += [f"{where}: D{n} is in the description but in no rule"
             for n in sorted(set(DECISION.findall(str(op.get("description", "")))), key=int)
             if not any(re.search(rf"\bD{n}\b", text) for text in ruled)]
    return gaps


def unmarked(spec: Mapping[str, Any]) -> list[str]:
    """Everything that should say on what authority it stands and does not (empty when complete)."""
    gaps: list[str] = []
    for path, node in nodes(spec):
        parent = path[-2] if len(path) >= 2 else None
        if "operationId" in node and len(path) >= 1 and path[-1] in HTTP_METHODS:
            gaps += _operation_gaps(path, node)
        elif "in" in node and "name" in node and _parse(node.get(EXTENSION)) is None:
            gaps.append(f"{pointer(path)}: parameter {node['name']}")
        elif parent == "headers" and "schema" in node and _parse(node.get(EXTENSION)) is None:
            gaps.append(f"{pointer(path)}: header")
        elif "$ref" not in node:
            gaps += [f"{pointer(path)} ({k})" for k in constraints(node) if of_node(node, k) is None]
    return gaps


def sources(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every `{authority, source}` entry the document states (defaults, keywords, responses, rules), as
    written and with where, so checks on the entries themselves see the malformed ones too."""
    found: list[tuple[str, Mapping[str, Any]]] = []

    def visit(value: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(value, Mapping):
            if "authority" in value or "source" in value:
                found.append((pointer(path), value))
            for key, child in value.items():
                visit(child, (*path, key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                visit(child, (*path, index))

    for path, node in nodes(spec):
        if EXTENSION in node:
            visit(node[EXTENSION], (*path, EXTENSION))
    return found


# --------------------------------------------------------------------------- lookup by location


def resolve(spec: Mapping[str, Any], node: Any) -> Any:
    """Follow local `$ref`s until a node that is not a reference."""
    seen = 0
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and seen < 32:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, Mapping) else None
        node, seen = target, seen + 1
    return node


def node_at(spec: Mapping[str, Any], root: Any, parts: Iterable[str | int]) -> Mapping[str, Any] | None:
    """The schema node at a path of keys below `root`, through `$ref`s (None where the path leaves the document)."""
    node = resolve(spec, root)
    for part in parts:
        if isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = resolve(spec, node[int(part)])
        elif isinstance(node, Mapping) and str(part) in node:
            node = resolve(spec, node[str(part)])
        else:
            return None
    return node if isinstance(node, Mapping) else None


def weakest_below(spec: Mapping[str, Any], root: Any, keywords: Iterable[str] = ()) -> Provenance | None:
    """The least binding provenance of any constraint below `root` (of `keywords` only, when given).

    Used where a failure can be traced to a subtree but not to one node: assuming the least binding
    rule there keeps a conforming deployment from being failed on a guess.
    """
    wanted = set(keywords) or set(CONSTRAINT_KEYWORDS)
    found: list[Provenance | None] = []
    stack, seen = [resolve(spec, root)], 0
    while stack and seen < 2000:
        node, seen = stack.pop(), seen + 1
        if isinstance(node, Mapping):
            found += [of_node(node, k) for k in node if k in wanted]
            stack += [resolve(spec, v) for k, v in node.items() if k not in ("example", "examples", EXTENSION)]
        elif isinstance(node, list):
            stack += [resolve(spec, v) for v in node]
    return weakest(found)


def of_status(spec: Mapping[str, Any], operation_id: str, status: int) -> Provenance | None:
    """The authority of answering `status`: its declaration, or for an undeclared status what the
    operation declares for that class (2xx, 4xx, 5xx), so 200 where the reference decided 201 only differs."""
    try:
        declared = [str(s) for s in operation_of(spec, operation_id).get("responses", {})]
    except KeyError:
        return None
    if str(status) in declared:
        return of_response(spec, operation_id, status)
    return weakest(of_response(spec, operation_id, s) for s in declared if s[:1] == str(status)[:1])
