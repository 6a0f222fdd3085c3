"""Tenants and credentials: read from the TOML file of `--config`, or the development defaults (D12)."""

from __future__ import annotations

import hashlib
import hmac
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCOPES: tuple[str, ...] = ("items:read", "items:write", "items:admin")
_NAMESPACE = uuid.UUID("6f1d8a4e-2c3b-4f5a-9e8d-7c6b5a4f3e2d")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class Project:
    org: str
    workspace: str
    slug: str
    id: str
    organization_id: str

    @property
    def keys(self) -> frozenset[str]:
        """What a span's `dreadnode.project` may hold to belong here (D13)."""
        return frozenset({self.slug, self.id})


@dataclass(frozen=True)
class Credential:
    name: str
    org: str
    workspace: str | None
    scopes: frozenset[str]
    token: str | None = field(default=None, repr=False)
    token_sha256: str | None = field(default=None, repr=False)

    def matches(self, presented: str) -> bool:
        """Constant-time comparison against the plain token or its SHA-256."""
        if self.token is not None:
            return hmac.compare_digest(self.token.encode(), presented.encode())
        digest = hashlib.sha256(presented.encode()).hexdigest()
        return hmac.compare_digest((self.token_sha256 or "").encode(), digest.encode())

    def sees(self, org: str, workspace: str | None) -> bool:
        return self.org == org and (self.workspace is None or workspace is None or self.workspace == workspace)


@dataclass(frozen=True)
class Tenancy:
    projects: tuple[Project, ...]
    credentials: tuple[Credential, ...]
    development: bool = False

    def find_project(self, org: str, workspace: str, key: str) -> Project | None:
        lowered = key.lower()
        for p in self.projects:
            if p.org == org and p.workspace == workspace and (p.slug == key or p.id == lowered):
                return p
        return None

    def org_exists(self, org: str) -> bool:
        return any(p.org == org for p in self.projects)

    def authenticate(self, presented: str) -> Credential | None:
        """Every credential is compared, so the time taken does not depend on which one matched."""
        found: Credential | None = None
        for credential in self.credentials:
            if credential.matches(presented) and found is None:
                found = credential
        return found

    def projects_of_org(self, org: str) -> list[Project]:
        return [p for p in self.projects if p.org == org]


def project_uuid(org: str, workspace: str, slug: str) -> str:
    """Stable across restarts, so item rows keep pointing at their project."""
    return str(uuid.uuid5(_NAMESPACE, f"project:{org}/{workspace}/{slug}"))


def org_uuid(org: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"org:{org}"))


DEV_TOKENS: dict[str, tuple[str, ...]] = {
    "dev-admin-token": SCOPES,
    "dev-writer-token": ("items:read", "items:write"),
    "dev-reader-token": ("items:read",),
}


def development_tenancy() -> Tenancy:
    """D12: org/workspace/project `example`, with an admin, a writer and a reader credential."""
    project = Project("example", "example", "example", project_uuid("example", "example", "example"),
                      org_uuid("example"))
    credentials = tuple(
        Credential(name=token.removesuffix("-token"), org="example", workspace=None, scopes=frozenset(scopes),
                   token=token)
        for token, scopes in DEV_TOKENS.items()
    )
    return Tenancy((project,), credentials, development=True)


def _text(entry: dict[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: '{key}' must be a non-empty string")
    return value


def load_tenancy(path: Path) -> Tenancy:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    projects: list[Project] = []
    for i, entry in enumerate(raw.get("projects", [])):
        where = f"projects[{i}]"
        org = _text(entry, "org", where) or ""
        workspace = _text(entry, "workspace", where) or ""
        slug = _text(entry, "project", where) or ""
        pid = _text(entry, "id", where, required=False) or project_uuid(org, workspace, slug)
        try:
            pid = str(uuid.UUID(pid))
        except ValueError as exc:
            raise ConfigError(f"{where}: 'id' must be a UUID") from exc
        projects.append(Project(org, workspace, slug, pid, org_uuid(org)))
    credentials: list[Credential] = []
    for i, entry in enumerate(raw.get("credentials", [])):
        where = f"credentials[{i}]"
        secret = _text(entry, "token", where) or ""
        scopes = entry.get("scopes", [])
        if not isinstance(scopes, list) or any(s not in SCOPES for s in scopes):
            raise ConfigError(f"{where}: 'scopes' must be a list drawn from {', '.join(SCOPES)}")
        plain, hashed = (None, secret.removeprefix("sha256:").lower()) if secret.startswith("sha256:") else (
            secret, None)
        credentials.append(
            Credential(
                name=_text(entry, "name", where, required=False) or f"credential-{i}",
                org=_text(entry, "org", where) or "",
                workspace=_text(entry, "workspace", where, required=False),
                scopes=frozenset(scopes),
                token=plain,
                token_sha256=hashed,
            )
        )
    if not projects:
        raise ConfigError(f"{path}: at least one [[projects]] entry is needed")
    return Tenancy(tuple(projects), tuple(credentials))
