"""Outcomes per check x operation, with the evidence a reader needs to reproduce each failure.

Everything stored here has been through the redactor: tokens never reach a report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from harness.conformance.catalogue import CATALOGUE, CONTRACT
from harness.provenance import Provenance

MASK = "***"
MAX_BODY_CHARS = 2000
_SECRET_HEADER = re.compile(r"(?i)(authorization|x-api-key)(['\"]?\s*:\s*)(bearer\s+|basic\s+)?[^'\"\s]+")


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    DIFFERS = "differs"
    """Only reference-level failures: the target differs from the reference server, which fails nobody
    unless the run is `--strict`."""
    NOT_RUN = "not run"


class Redactor:
    """Replaces every known secret, and any credential header value, by `***`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return _SECRET_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{MASK}", text)


@dataclass(frozen=True)
class Evidence:
    """What was sent (as curl, credentials masked) and what came back."""

    curl: str
    status: int | None
    response: str


@dataclass(frozen=True)
class Finding:
    check_id: str
    operation: str
    message: str
    evidence: Evidence | None
    seed: int
    provenance: Provenance
    """The authority this failure stands on: the check's, or that of the contract element it broke."""
    origin: str = "harness"
    """`harness` (our probes) or `schemathesis` (a generated case)."""

    def counts(self, strict: bool) -> bool:
        """Whether this finding fails the run: documented and standard always, reference under --strict."""
        return strict or self.provenance.authority.fails_by_default


@dataclass
class Cell:
    strict: bool = False
    passes: int = 0
    failures: list[Finding] = field(default_factory=list)
    not_run: str = ""

    @property
    def outcome(self) -> Outcome:
        if any(f.counts(self.strict) for f in self.failures):
            return Outcome.FAIL
        if self.failures:
            return Outcome.DIFFERS
        if self.passes:
            return Outcome.PASS
        return Outcome.NOT_RUN


MAX_FINDINGS_PER_CELL = 5


class Results:
    """The matrix being filled in by every part of a run."""

    def __init__(self, redactor: Redactor, seed: int, strict: bool = False) -> None:
        self.redact = redactor
        self.seed = seed
        self.strict = strict
        self.cells: dict[tuple[str, str], Cell] = {}
        self.failure_counts: dict[tuple[str, str, Provenance], int] = {}
        """Findings per check, operation and authority, those a full cell did not keep included."""
        self.notes: list[str] = []

    def cell(self, check_id: str, operation: str) -> Cell:
        return self.cells.setdefault((check_id, operation), Cell(self.strict))

    def passed(self, check_id: str, operation: str) -> None:
        self.cell(check_id, operation).passes += 1

    def failed(self, check_id: str, operation: str, message: str, evidence: Evidence | None = None,
               origin: str = "harness", provenance: Provenance | None = None) -> None:
        """Record a failure; `provenance` when it stands on another authority than the check's own."""
        cell = self.cell(check_id, operation)
        if provenance is None:
            provenance = _check_provenance(check_id)
        if len(cell.failures) >= MAX_FINDINGS_PER_CELL and provenance.authority.fails_by_default:
            # a full cell makes room for a finding that fails the run by forgetting a mere difference
            differences = [f for f in cell.failures if not f.provenance.authority.fails_by_default]
            if differences:
                cell.failures.remove(differences[-1])
        key = (check_id, operation, provenance)
        self.failure_counts[key] = self.failure_counts.get(key, 0) + 1
        if len(cell.failures) >= MAX_FINDINGS_PER_CELL:
            return
        if evidence is not None:
            evidence = Evidence(self.redact(evidence.curl), evidence.status,
                                self.redact(evidence.response)[:MAX_BODY_CHARS])
        cell.failures.append(Finding(check_id, operation, self.redact(message), evidence, self.seed, provenance,
                                     origin))

    def not_run(self, check_id: str, operations: Iterable[str], reason: str) -> None:
        for operation in operations:
            cell = self.cell(check_id, operation)
            if not cell.passes and not cell.failures:
                cell.not_run = reason

    def note(self, message: str) -> None:
        self.notes.append(self.redact(message))

    @property
    def findings(self) -> list[Finding]:
        return [f for cell in self.cells.values() for f in cell.failures]

    @property
    def failed_ids(self) -> set[str]:
        """Checks with a finding that fails the run."""
        return {check_id for (check_id, _), cell in self.cells.items() if cell.outcome == Outcome.FAIL}

    @property
    def differing_ids(self) -> set[str]:
        """Checks whose findings only differ from the reference server."""
        return {f.check_id for f in self.differences}

    @property
    def ok(self) -> bool:
        """No finding that fails the run (reference differences count only under --strict)."""
        return not any(f.counts(self.strict) for f in self.findings)

    @property
    def differences(self) -> list[Finding]:
        """Findings that only differ from the reference server (none under --strict: they fail there)."""
        return [f for f in self.findings if not f.counts(self.strict)]

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.counts(self.strict)]


def _check_provenance(check_id: str) -> Provenance:
    check = CATALOGUE.get(check_id)
    return check.provenance if check is not None else CONTRACT
