"""Schemathesis 4 through its Python API, configured to the written decisions, with our checks beside its own.

- `unsupported_method` expects 405; D3 answers an undeclared method 404 in the envelope, so it is
  replaced by MTH001 (same cases, the decision's expectation).
- `positive_data_acceptance` also accepts 422 where the spec states rules JSON Schema cannot: D1 for
  rebuild_items, a link from an item to itself on create_item_link.
- Our envelope rules (ENV001-ENV007) run on every generated response.
- Bodies of create_item are tagged (dedupe_key and ref carry the run tag) before they are sent.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.openapi.checks import JsonSchemaError

import harness.provenance as provenance
from harness.conformance.catalogue import CATALOGUE, CONTRACT, Level
from harness.conformance.envelope import ENVELOPE_IDS, envelope_verdicts
from harness.conformance.operations import declares, operations
from harness.conformance.results import Evidence, Results
from harness.conformance.settings import Settings
from harness.contract import API_BASE_PATH, load_spec
from harness.provenance import Provenance

ACCEPT_422 = ("rebuild_items", "create_item_link")
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
NOT_TESTED_BY_SCHEMATHESIS = ("ingest_traces",)
"""Generated OTLP would land in the deployment's span store; ingest is exercised by the full level instead."""

_active: Settings | None = None
"""The run whose bodies the tagging hook rewrites (None outside `run_schemathesis`)."""


def _header(headers: dict[str, list[str]], name: str) -> str:
    for key, values in headers.items():
        if key.lower() == name and values:
            return values[0]
    return ""


def _envelope_check(check_id: str) -> Callable[..., bool | None]:
    def run(ctx: Any, response: Any, case: Any) -> bool | None:
        if _active is None or response.status_code < 400:
            return None
        flat = {k: v[0] for k, v in response.headers.items() if v}
        verdict = envelope_verdicts(response.status_code, _header(response.headers, "content-type"),
                                    response.content, flat).get(check_id)
        if verdict is not None:
            raise AssertionError(f"{check_id}: {verdict}")
        return True

    run.__name__ = check_id
    return run


def _undeclared_method(ctx: Any, response: Any, case: Any) -> bool | None:
    """MTH001: D3 answers an undeclared method 404 in the envelope (Schemathesis would want 405)."""
    from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario

    meta = case.meta
    data = getattr(getattr(meta, "phase", None), "data", None)
    if _active is None or not isinstance(data, CoveragePhaseData):
        return None
    if data.scenario != CoverageScenario.UNSPECIFIED_HTTP_METHOD or response.request.method in ("OPTIONS", "HEAD"):
        return None
    path = str(response.request.path_url).split("?", 1)[0]
    path = path[path.find(API_BASE_PATH) + len(API_BASE_PATH):] if API_BASE_PATH in path else path
    if declares(path, str(response.request.method)) or response.status_code == 429:
        return None  # the concrete path falls on another operation's template (e.g. PATCH /items/summary)
    if response.status_code != 404:
        raise AssertionError(f"MTH001: undeclared method {response.request.method} answered "
                             f"{response.status_code}; D3 says 404 not_found_error")
    return True


_undeclared_method.__name__ = "MTH001"
OUR_CHECKS: dict[str, Callable[..., bool | None]] = {
    **{check_id: _envelope_check(check_id) for check_id in ENVELOPE_IDS}, "MTH001": _undeclared_method,
}
for _check in OUR_CHECKS.values():
    schemathesis.check(_check)


def _tagged(value: Any, tag: str, max_length: int) -> Any:
    """A valid string (or absent/null) becomes tag + digest within the limit; invalid values stay invalid."""
    if value is not None and (not isinstance(value, str) or len(value) > max_length):
        return value
    digest = hashlib.sha256(str(value).encode()).hexdigest()
    return f"{tag}-st-{digest}"[: max(len(tag) + 8, min(max_length, 40))]


@schemathesis.hook("before_call")
def _tag_created_items(context: Any, case: Any, kwargs: Any) -> None:
    """Every item Schemathesis creates carries the run tag in dedupe_key and ref (issue: cleanup)."""
    if _active is None or getattr(case.operation, "label", "") != operations()["create_item"].label:
        return
    if isinstance(case.body, dict):
        case.body["dedupe_key"] = _tagged(case.body.get("dedupe_key"), _active.run_tag, 64)
        if "ref" in case.body and case.body["ref"] is not None:
            case.body["ref"] = _tagged(case.body["ref"], _active.run_tag, 128)


def _auth(settings: Settings) -> dict[str, Any]:
    credential = settings.credential
    if credential.kind == "api-key":
        return {"openapi": {"ApiKeyAuth": {"api_key": credential.token}}}
    return {"openapi": {"BearerAuth": {"bearer": credential.token}}}


def _rate(rate: float) -> str | None:
    if rate <= 0:
        return None
    return f"{int(rate)}/s" if rate >= 1 else f"{max(1, int(rate * 60))}/m"


def config_dict(settings: Settings) -> dict[str, Any]:
    """The Schemathesis configuration of a run (the same keys as schemathesis.toml)."""
    checks: dict[str, Any] = {"unsupported_method": {"enabled": False}}
    checks.update({name: {"enabled": True} for name in OUR_CHECKS})
    phases: dict[str, Any] = {}
    if settings.level == Level.CONTRACT:
        # Schemathesis' dependency ordering re-adds filtered-out operations; schema order keeps the filter.
        phases = {"stateful": {"enabled": False}, "examples": {"operation-ordering": "none"},
                  "coverage": {"unexpected-methods": ["trace"], "operation-ordering": "none"}}
    config: dict[str, Any] = {
        "base-url": settings.api_url,
        "cache": {"enabled": False},
        "seed": settings.seed,
        "auth": _auth(settings),
        "parameters": {"path.org": settings.org, "path.workspace": settings.workspace,
                       "path.project": settings.project},
        "generation": {"max-examples": settings.max_examples},
        "checks": checks,
        "phases": phases,
        "workers": max(1, settings.workers),
        "request-timeout": settings.timeout_s,
        "operations": [{"include-operation-id": list(ACCEPT_422),
                        "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES}}}],
    }
    rate = _rate(settings.rate_limit)
    if rate is not None:
        config["rate-limit"] = rate
    return config


def spec_for(level: Level) -> dict[str, Any]:
    """openapi.yaml without the operations this level must not generate requests for.

    Filtering the document itself, not the loaded schema: Schemathesis 4.32 widens `include()` back
    to every operation once a per-operation `operations` config is present.
    """
    spec = copy.deepcopy(load_spec())
    for path_item in spec["paths"].values():
        for method in [m for m, op in path_item.items() if isinstance(op, dict) and "operationId" in op]:
            op_id = path_item[method]["operationId"]
            if op_id in NOT_TESTED_BY_SCHEMATHESIS or (level == Level.CONTRACT and method != "get"):
                del path_item[method]
    spec["paths"] = {path: item for path, item in spec["paths"].items()
                     if any(isinstance(op, dict) and "operationId" in op for op in item.values())}
    return spec


def _operation_id(label: str) -> str:
    for op in operations().values():
        if op.label == label:
            return op.id
    return label


def _negative_provenance(case: Any, op_id: str) -> Provenance | None:
    """The constraint a schema-violating case broke: Schemathesis records where it mutated what."""
    spec = load_spec()
    data = getattr(getattr(case.meta, "phase", None), "data", None)
    found: list[Provenance | None] = []
    for mutation in getattr(data, "mutations", ()) or ():
        root = provenance.request_schema(spec, op_id, str(mutation.parameter_location.value), mutation.parameter)
        node = provenance.node_at(spec, root, [p for p in str(mutation.schema_pointer).split("/") if p])
        exact = [provenance.of_node(node, k) for k in mutation.keywords] if node is not None else []
        found.append(provenance.weakest(exact) or provenance.weakest_below(spec, root, mutation.keywords))
    where = getattr(data, "parameter_location", None)
    if not found and where is not None:
        root = provenance.request_schema(spec, op_id, str(getattr(where, "value", where)),
                                         getattr(data, "parameter", None))
        found.append(provenance.weakest_below(spec, root))
    if not found:  # untraced: the least binding constraint of the whole request
        request = [provenance.request_schema(spec, op_id, "body"), *provenance.parameters_of(spec, op_id)]
        found.append(provenance.weakest_below(spec, request))
    return provenance.weakest(found)


def _response_provenance(failure: Any, op_id: str, status: int) -> Provenance | None:
    """The authority of the response element a failure names (schema keyword, header, status)."""
    spec = load_spec()
    if isinstance(failure, JsonSchemaError):
        root = provenance.response_schema(spec, op_id, status, "application/json")
        parts = [str(p) for p in getattr(failure, "schema_path", ())]
        node = provenance.node_at(spec, root, parts[:-1]) if parts else None
        keyword = parts[-1] if parts else ""
        exact = provenance.of_node(node, keyword) if node is not None else None
        return exact or provenance.weakest_below(spec, root, [keyword] if keyword else [])
    return provenance.of_status(spec, op_id, status)


def failure_provenance(check_name: str, failure: Any, case: Any, op_id: str, status: int | None) -> Provenance:
    """The authority one Schemathesis failure stands on: the contract element behind it, else the check's."""
    found: Provenance | None = None
    try:
        if check_name == "negative_data_rejection":
            found = _negative_provenance(case, op_id)
        elif check_name in ("response_schema_conformance", "status_code_conformance", "content_type_conformance",
                            "response_headers_conformance") and status is not None:
            found = _response_provenance(failure, op_id, status)
    except (KeyError, AttributeError, TypeError):  # a shape this version of Schemathesis does not record
        found = None
    check = CATALOGUE.get(check_name)
    return found or (check.provenance if check is not None else CONTRACT)


def _record_scenario(event: events.ScenarioFinished, results: Results) -> None:
    recorder = event.recorder
    for case_id, nodes in recorder.checks.items():
        case_node = recorder.cases.get(case_id)
        op_id = _operation_id(case_node.value.operation.label) if case_node is not None else recorder.label
        for node in nodes:
            if node.failure_info is None:
                if node.name in CATALOGUE:
                    results.passed(node.name, op_id)
                continue
            failure = node.failure_info.failure
            interaction = recorder.interactions.get(case_id)
            response = interaction.response if interaction is not None else None
            body = response.content.decode("utf-8", "replace") if response is not None else ""
            evidence = Evidence(node.failure_info.code_sample, response.status_code if response else None, body)
            message = f"{failure.title}: {failure.message}".strip()
            case = case_node.value if case_node is not None else None
            found = failure_provenance(node.name, failure, case, op_id, response.status_code if response else None)
            results.failed(node.name, op_id, message, evidence, origin="schemathesis", provenance=found)


def run_schemathesis(settings: Settings, results: Results, progress: Callable[[str], None]) -> bool:
    """Run every phase the level allows; False when Schemathesis could not run at all."""
    global _active
    config = schemathesis.Config.from_dict(config_dict(settings))
    schema = schemathesis.openapi.from_dict(spec_for(settings.level), config=config)
    _active = settings
    try:
        for event in from_schema(schema).execute():
            if isinstance(event, events.PhaseStarted):
                progress(f"Schemathesis: {event.phase.name.value} phase")
            elif isinstance(event, events.ScenarioFinished):
                _record_scenario(event, results)
            elif isinstance(event, events.NonFatalError):
                results.note(f"Schemathesis could not test {event.label}: {event.info.title} {event.info.message}")
            elif isinstance(event, events.FatalError):
                results.note(f"Schemathesis stopped: {event.exception}")
                return False
    finally:
        _active = None
    return True
