"""The operations of openapi.yaml, read once: method, path template, scopes, and whether they write."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from harness.contract import load_spec

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    """Upper case."""
    template: str
    """Relative to the API base path, e.g. `/org/{org}/ws/{workspace}/projects/{project}/items`."""
    scopes: frozenset[str]
    has_body: bool

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"

    def matches(self, method: str, path: str) -> bool:
        """Whether a concrete path (relative to the base path) falls on this operation's template."""
        return method.upper() == self.method and _template_regex(self.template).fullmatch(path) is not None


@cache
def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))


ORDER: tuple[str, ...] = (
    "get_item_access", "list_items", "item_summary", "get_item", "list_item_events", "list_item_links",
    "create_item", "update_item", "bulk_update_items", "create_item_link", "delete_item_link", "rebuild_items",
    "ingest_traces",
)
"""Matrix column order: reads, then writes in the order a client meets them, then rebuild and ingest."""


@cache
def operations() -> dict[str, Operation]:
    found: dict[str, Operation] = {}
    for template, path_item in load_spec()["paths"].items():
        for method in HTTP_METHODS:
            op = path_item.get(method)
            if isinstance(op, dict) and "operationId" in op:
                found[op["operationId"]] = Operation(
                    id=op["operationId"], method=method.upper(), template=template,
                    scopes=frozenset(op.get("x-scopes", [])), has_body="requestBody" in op,
                )
    ordered = {name: found[name] for name in ORDER if name in found}
    ordered.update({name: op for name, op in found.items() if name not in ordered})
    return ordered


def operation(op_id: str) -> Operation:
    return operations()[op_id]


def operation_for(method: str, path: str) -> Operation | None:
    """The operation a concrete request falls on (literal segments win over `{item_id}`)."""
    candidates = [op for op in operations().values() if op.matches(method, path)]
    candidates.sort(key=lambda op: op.template.count("{"))
    return candidates[0] if candidates else None


def declares(path: str, method: str) -> bool:
    """Whether any operation of the spec answers this method on this concrete path."""
    return operation_for(method, path) is not None
