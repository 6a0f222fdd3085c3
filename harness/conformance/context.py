"""What every probe works with: the settings, the client, the results, and the checks run on every exchange.

Each exchange the suite makes is validated against openapi.yaml (SCH001), its error body against the
envelope rules (ENV001-ENV007) and every item in it against D11 (EFF001), whatever probe sent it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from harness.conformance.catalogue import basis_provenance
from harness.conformance.envelope import envelope_verdicts
from harness.conformance.http import Api, Exchange
from harness.conformance.operations import operation_for, operations
from harness.conformance.results import Redactor, Results
from harness.conformance.settings import Settings
from harness.conformance.validation import response_problem
from harness.provenance import Provenance

ITEM_KEYS = frozenset({"id", "item_type", "data", "disposition", "effective_status"})


def effective_status_problem(item: dict[str, Any]) -> str | None:
    """D11 on one item representation."""
    disposition = item.get("disposition")
    status = disposition.get("status") if isinstance(disposition, dict) else None
    expected = status if status is not None else ("needs_review" if item.get("item_type") == "finding" else None)
    if item.get("effective_status") != expected:
        return (f"item {item.get('id')}: effective_status is {item.get('effective_status')!r}, expected {expected!r} "
                f"(item_type {item.get('item_type')!r}, disposition.status {status!r})")
    return None


def items_in(body: Any) -> Iterator[dict[str, Any]]:
    """Item representations in a response body: the item itself or the `items` of a list page."""
    if isinstance(body, dict):
        if body.keys() >= ITEM_KEYS:
            yield body
        for entry in body.get("items", []) if isinstance(body.get("items"), list) else []:
            if isinstance(entry, dict) and entry.keys() >= ITEM_KEYS:
                yield entry


class CheckFailed(Exception):
    """A probe's expectation did not hold; already recorded, the probe stops its scenario."""


@dataclass
class Context:
    settings: Settings
    results: Results
    api: Api = field(init=False)
    redact: Redactor = field(init=False)
    exchanges: int = 0
    default_evidence: Exchange | None = None
    """The exchange a failure without one of its own is reported with (see `evidence`)."""

    def __post_init__(self) -> None:
        self.redact = self.results.redact
        self.api = Api(self.settings, on_exchange=self.observe)

    @property
    def tag(self) -> str:
        return self.settings.run_tag

    def observe(self, exchange: Exchange) -> None:
        self.exchanges += 1
        declared = operation_for(exchange.method, exchange.path) is not None
        op = exchange.operation
        if declared and op in operations():
            problem = response_problem(exchange)
            self.record("SCH001", op, problem.message if problem else None, exchange,
                        problem.provenance if problem else None)
        for check_id, verdict in envelope_verdicts(exchange.status, exchange.content_type, exchange.response_body,
                                                   exchange.response_headers).items():
            self.record(check_id, op, verdict, exchange)
        if exchange.status < 300:
            for item in items_in(exchange.json()):
                self.record("EFF001", op, effective_status_problem(item), exchange)

    @contextmanager
    def evidence(self, exchange: Exchange | None) -> Iterator[None]:
        """Report failures judged from later reads (snapshots) with the request that caused them (a rebuild)."""
        previous, self.default_evidence = self.default_evidence, exchange
        try:
            yield
        finally:
            self.default_evidence = previous

    def record(self, check_id: str, operation: str, problem: str | None, exchange: Exchange | None = None,
               provenance: Provenance | None = None) -> bool:
        """Pass when `problem` is None, else a failure with the exchange as evidence. Returns whether it passed.

        `provenance` names the authority of this one failure where it is not the check's own (a rule
        whose core is documented, with a detail the reference decided).
        """
        if problem is None:
            self.results.passed(check_id, operation)
            return True
        exchange = exchange or self.default_evidence
        evidence = exchange.evidence(self.redact) if exchange is not None else None
        self.results.failed(check_id, operation, problem, evidence, provenance=provenance)
        return False

    def expect(self, check_id: str, operation: str, ok: bool, message: str, exchange: Exchange | None = None,
               provenance: Provenance | None = None) -> bool:
        return self.record(check_id, operation, None if ok else message, exchange, provenance)

    def differs(self, check_id: str, operation: str, ok: bool, message: str, decision: str,
                exchange: Exchange | None = None) -> bool:
        """A detail of a check that stands on a decision of the reference (`D<n>`), not on its documented core."""
        return self.expect(check_id, operation, ok, message, exchange, basis_provenance(decision))

    def require(self, check_id: str, operation: str, ok: bool, message: str, exchange: Exchange | None = None) -> None:
        """Like `expect`, but a failure ends the calling scenario (what follows depends on it)."""
        if not self.expect(check_id, operation, ok, message, exchange):
            raise CheckFailed(message)

    def status_is(self, check_id: str, exchange: Exchange, *statuses: int, why: str = "") -> bool:
        ok = exchange.status in statuses
        wanted = " or ".join(str(s) for s in statuses)
        text = f"expected {wanted}{f' ({why})' if why else ''}, got {exchange.status}"
        return self.expect(check_id, exchange.operation, ok, text, exchange)

    def error_is(self, check_id: str, exchange: Exchange, status: int, why: str = "",
                 tolerated: tuple[int, ...] = (), decision: str = "") -> bool:
        """The status (the envelope itself is checked centrally).

        A status in `tolerated` is what the documentation or a standard also allows: it only differs
        from the reference's choice `decision`, so that failure is a reference-level one.
        """
        body = exchange.json()
        kind = body.get("type") if isinstance(body, dict) else None
        ok = exchange.status == status
        text = f"expected {status}{f' ({why})' if why else ''}, got {exchange.status}"
        provenance = basis_provenance(decision) if exchange.status in tolerated and decision else None
        return self.expect(check_id, exchange.operation, ok, text + (f" type {kind!r}" if kind else ""), exchange,
                           provenance)
