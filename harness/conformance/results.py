"""Outcomes per check x operation, with the evidence a reader needs to reproduce each failure.

Everything stored here has been through the redactor: tokens never reach a report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

MASK = "***"
MAX_BODY_CHARS = 2000
_SECRET_HEADER = re.compile(r"(?i)(authorization|x-api-key)(['\"]?\s*:\s*)(bearer\s+|basic\s+)?[^'\"\s]+")


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
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
    origin: str = "harness"
    """`harness` (our probes) or `schemathesis` (a generated case)."""


@dataclass
class Cell:
    passes: int = 0
    failures: list[Finding] = field(default_factory=list)
    not_run: str = ""

    @property
    def outcome(self) -> Outcome:
        if self.failures:
            return Outcome.FAIL
        if self.passes:
            return Outcome.PASS
        return Outcome.NOT_RUN


MAX_FINDINGS_PER_CELL = 5


class Results:
    """The matrix being filled in by every part of a run."""

    def __init__(self, redactor: Redactor, seed: int) -> None:
        self.redact = redactor
        self.seed = seed
        self.cells: dict[tuple[str, str], Cell] = {}
        self.failure_counts: dict[tuple[str, str], int] = {}
        self.notes: list[str] = []

    def cell(self, check_id: str, operation: str) -> Cell:
        return self.cells.setdefault((check_id, operation), Cell())

    def passed(self, check_id: str, operation: str) -> None:
        self.cell(check_id, operation).passes += 1

    def failed(self, check_id: str, operation: str, message: str, evidence: Evidence | None = None,
               origin: str = "harness") -> None:
        cell = self.cell(check_id, operation)
        key = (check_id, operation)
        self.failure_counts[key] = self.failure_counts.get(key, 0) + 1
        if len(cell.failures) >= MAX_FINDINGS_PER_CELL:
            return
        if evidence is not None:
            evidence = Evidence(self.redact(evidence.curl), evidence.status,
                                self.redact(evidence.response)[:MAX_BODY_CHARS])
        cell.failures.append(Finding(check_id, operation, self.redact(message), evidence, self.seed, origin))

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
        return {check_id for (check_id, _), cell in self.cells.items() if cell.failures}

    @property
    def ok(self) -> bool:
        return not any(cell.failures for cell in self.cells.values())
