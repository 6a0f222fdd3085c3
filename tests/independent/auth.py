"""Credentials and tenancy, hard-coded to the tenancy of tests/server_fixtures.py (D4: 401, then 404, then 403)."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ApiError, not_found

NAMESPACE = uuid.UUID("5f1d8a3e-0c44-4f6e-9a51-7b2d6c0e9f10")
READ, WRITE, ADMIN = "items:read", "items:write", "items:admin"


@dataclass(frozen=True)
class Project:
    org: str
    workspace: str
    slug: str

    @property
    def id(self) -> str:
        """A stable UUID, accepted in paths in place of the slug (and in a span's dreadnode.project, D13)."""
        return str(uuid.uuid5(NAMESPACE, f"project:{self.org}/{self.workspace}/{self.slug}"))

    @property
    def org_id(self) -> str:
        return org_id(self.org)

    def named(self, name: str) -> bool:
        """Whether a path segment or span attribute names this project (slug, or UUID in any case)."""
        return name == self.slug or name.lower() == self.id


def org_id(org: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"org:{org}"))


@dataclass(frozen=True)
class Credential:
    name: str
    token: str
    org: str
    scopes: frozenset[str]
    workspace: str | None = None


PROJECTS = (Project("example", "example", "example"), Project("example", "other-ws", "side"),
            Project("acme", "main", "rockets"))
CREDENTIALS = (
    Credential("admin", "admin-token-0123456789", "example", frozenset({READ, WRITE, ADMIN})),
    Credential("writer", "writer-token-0123456789", "example", frozenset({READ, WRITE})),
    Credential("reader", "reader-token-0123456789", "example", frozenset({READ})),
    Credential("ws-admin", "ws-admin-token-0123456789", "example", frozenset({READ, WRITE, ADMIN}), "example"),
    Credential("acme-admin", "acme-token-0123456789", "acme", frozenset({READ, WRITE, ADMIN})),
)


@dataclass(frozen=True)
class Tenancy:
    projects: tuple[Project, ...] = PROJECTS
    credentials: tuple[Credential, ...] = CREDENTIALS

    def authenticate(self, headers: Mapping[str, str]) -> Credential:
        """`Authorization: Bearer <t>` (docs) or `X-API-Key: <t>` (SDK); anything else is 401."""
        token = ""
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, rest = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                token = rest.strip()
        if not token:
            token = (headers.get("x-api-key") or "").strip()
        found = None
        for credential in self.credentials:  # compare with every one, in constant time, to leak nothing
            if token and hmac.compare_digest(credential.token.encode(), token.encode("utf-8", "replace")):
                found = credential
        if found is None:
            raise ApiError(401, "Authentication failed")
        return found

    def organization(self, credential: Credential, org: str) -> None:
        """404 for an org that does not exist or that the credential may not see (the same answer, D4)."""
        if credential.org != org or not any(p.org == org for p in self.projects):
            raise not_found("Organization")

    def project(self, credential: Credential, org: str, workspace: str, name: str) -> Project:
        """The project a credential may see, else 404: hidden and absent projects answer alike (D4)."""
        for project in self.projects:
            if (project.org == org == credential.org and project.workspace == workspace and project.named(name)
                    and credential.workspace in (None, workspace)):
                return project
        raise not_found("Project")

    @staticmethod
    def require(credential: Credential, scope: str) -> None:
        if scope not in credential.scopes:
            raise ApiError(403, f"This credential lacks the {scope} scope")
