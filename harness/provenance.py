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


@dataclass(frozen=True)
class Rule:
    id: str
    rule: str
    provenance: Provenance


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


def operation_of(spec: Mapping[str, Any], operation_id: str) -> Mapping[str, Any]:
    for path_item in spec.get("paths", {}).values():
        for method in HTTP_METHODS:
            op = path_item.get(method)
            if isinstance(op, Mapping) and op.get("operationId") == operation_id:
                return op
    raise KeyError(operation_id)


def of_operation(spec: Mapping[str, Any], operation_id: str) -> Provenance | None:
    return _parse(operation_of(spec, operation_id).get(EXTENSION))


def of_response(spec: Mapping[str, Any], operation_id: str, status: int | str) -> Provenance | None:
    """The provenance of status `status` being an answer of the operation."""
    raw = operation_of(spec, operation_id).get(EXTENSION)
    responses = raw.get("responses") if isinstance(raw, Mapping) else None
    return _parse(responses.get(str(status))) if isinstance(responses, Mapping) else None


def of_scopes(spec: Mapping[str, Any], operation_id: str) -> Provenance | None:
    raw = operation_of(spec, operation_id).get(EXTENSION)
    return _parse(raw.get("scopes")) if isinstance(raw, Mapping) else None


def rules(spec: Mapping[str, Any], operation_id: str) -> list[Rule]:
    raw = operation_of(spec, operation_id).get(EXTENSION)
    return _rules_of(raw) if isinstance(raw, Mapping) else []


# --------------------------------------------------------------------------- completeness


def _pointer(parts: Iterable[str | int]) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _nodes(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    """Every mapping of the document with its path, examples and the extensions themselves excluded."""
    if isinstance(value, Mapping):
        yield path, value
        for key, child in value.items():
            if key in ("example", "examples", EXTENSION):
                continue
            yield from _nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _nodes(child, (*path, index))


def _schema_gaps(path: tuple[str | int, ...], node: Mapping[str, Any]) -> list[str]:
    constrained = [k for k in node if k in CONSTRAINT_KEYWORDS and not (k == "required" and isinstance(node[k], bool))]
    return [f"{_pointer(path)} ({k})" for k in sorted(constrained) if of_node(node, k) is None]


def _operation_gaps(path: tuple[str | int, ...], op: Mapping[str, Any]) -> list[str]:
    where = f"{_pointer(path)} ({op.get('operationId')})"
    raw = op.get(EXTENSION)
    if _parse(raw) is None or not isinstance(raw, Mapping):
        return [f"{where}: the operation"]
    gaps: list[str] = []
    responses = raw.get("responses")
    declared = responses if isinstance(responses, Mapping) else {}
    gaps += [f"{where}: response {status}" for status in op.get("responses", {})
             if _parse(declared.get(str(status))) is None]
    if "x-scopes" in op and _parse(raw.get("scopes")) is None:
        gaps.append(f"{where}: x-scopes")
    cited = {f"D{n}" for n in DECISION.findall(str(op.get("description", "")))}
    ruled = {r.provenance.source for r in _rules_of(raw)} | {r.id for r in _rules_of(raw)}
    gaps += [f"{where}: rule {d} (named in the description)" for d in sorted(cited)
             if not any(d == s or re.search(rf"\b{d}\b", s) for s in ruled)]
    return gaps


def _rules_of(raw: Mapping[str, Any]) -> list[Rule]:
    out: list[Rule] = []
    for entry in raw.get("rules") or []:
        provenance = _parse(entry)
        if isinstance(entry, Mapping) and provenance is not None:
            out.append(Rule(str(entry.get("id", "")), str(entry.get("rule", "")), provenance))
    return out


def unmarked(spec: Mapping[str, Any]) -> list[str]:
    """Everything that should say on what authority it stands and does not (empty when complete)."""
    gaps: list[str] = []
    for path, node in _nodes(spec):
        parent = path[-2] if len(path) >= 2 else None
        if "operationId" in node and len(path) >= 1 and path[-1] in HTTP_METHODS:
            gaps += _operation_gaps(path, node)
        elif "in" in node and "name" in node and _parse(node.get(EXTENSION)) is None:
            gaps.append(f"{_pointer(path)}: parameter {node['name']}")
        elif parent == "headers" and "schema" in node and _parse(node.get(EXTENSION)) is None:
            gaps.append(f"{_pointer(path)}: header")
        elif "$ref" not in node:
            gaps += _schema_gaps(path, node)
    return gaps


def sources(spec: Mapping[str, Any]) -> list[tuple[str, Provenance]]:
    """Every provenance the document states, with where (for checks on the sources themselves)."""
    found: list[tuple[str, Provenance]] = []

    def visit(value: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(value, Mapping):
            for key, child in value.items():
                if key in ("authority",):
                    provenance = _parse(value)
                    if provenance is not None:
                        found.append((_pointer(path), provenance))
                visit(child, (*path, key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                visit(child, (*path, index))

    for path, node in _nodes(spec):
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
