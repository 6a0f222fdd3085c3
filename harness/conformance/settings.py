"""What one `harness check` run is pointed at and allowed to do; built once by the command, read everywhere."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from harness.conformance.catalogue import Level
from harness.contract import API_BASE_PATH


@dataclass(frozen=True)
class Credential:
    """A token and the header it travels in (`Authorization: Bearer` or `X-API-Key`)."""

    token: str = field(repr=False)
    kind: str = "bearer"

    def headers(self) -> dict[str, str]:
        if self.kind == "api-key":
            return {"X-API-Key": self.token}
        return {"Authorization": f"Bearer {self.token}"}


def new_run_tag() -> str:
    """A short prefix unique per run (time + randomness), so concurrent runs never collide."""
    return f"hc{int(time.time()) % 100000:05d}{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Settings:
    base_url: str
    credential: Credential
    org: str = "example"
    workspace: str = "example"
    project: str = "example"
    level: Level = Level.STATEFUL
    reader: Credential | None = None
    other_tenant: Credential | None = None
    otlp_url: str | None = None
    max_examples: int = 10
    seed: int = field(default_factory=lambda: secrets.randbelow(2**31))
    workers: int = 1
    rate_limit: float = 0.0
    """Requests per second, 0 for no limit."""
    run_tag: str = field(default_factory=new_run_tag)
    schemathesis: bool = True
    """Run Schemathesis' generated tests (the command always does; tests of our own checks may not)."""
    timeout_s: float = 30.0
    strict: bool = False
    """Count differences from the reference server (reference-level rules) as failures."""

    @property
    def api_url(self) -> str:
        return self.base_url.rstrip("/") + API_BASE_PATH

    @property
    def ingest_url(self) -> str:
        return self.otlp_url or f"{self.api_url}/org/{self.org}/otel/traces"

    def secrets(self) -> list[str]:
        """Every token of this run: masked wherever text leaves the suite."""
        return [c.token for c in (self.credential, self.reader, self.other_tenant) if c is not None and c.token]
