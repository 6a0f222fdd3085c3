"""Credentials, scopes, the order of D4 and tenancy isolation (AUTH, ORD, TEN): nothing here may change data."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping

from harness.conformance.context import Context
from harness.conformance.http import NO_AUTH, Exchange
from harness.conformance.operations import operations
from harness.conformance.requests import Probe, all_valid_probes, project_ops, valid_probe
from harness.conformance.settings import Credential

Auth = Credential | Mapping[str, str] | None

INVALID_CREATE = {"item_type": 5}
"""A create_item body that breaks the schema (used where input must be checked last)."""


def _send(ctx: Context, probe: Probe, auth: Auth = None, **overrides: str) -> Exchange:
    kwargs = probe.kwargs() | overrides
    return ctx.api.call(probe.op_id, auth=auth, **kwargs)


def _ops_with_scope(scope: str) -> list[str]:
    return [op.id for op in operations().values() if scope in op.scopes]


def check_authentication(ctx: Context) -> None:
    """AUTH001-003: no, malformed and unknown credentials are all 401 on every operation."""
    basic = base64.b64encode(b"conformance:not-a-password").decode()
    unknown = f"hc-unknown-{secrets.token_hex(12)}"
    for probe in all_valid_probes(ctx.tag):
        ctx.error_is("AUTH001", _send(ctx, probe, NO_AUTH), 401, "no credential")
        for header in ({"Authorization": "Bearer"}, {"Authorization": f"Basic {basic}"}):
            ctx.error_is("AUTH002", _send(ctx, probe, header), 401, "malformed credential")
        for header in ({"Authorization": f"Bearer {unknown}"}, {"X-API-Key": unknown}):
            ctx.error_is("AUTH003", _send(ctx, probe, header), 401, "unknown credential")


def check_scopes(ctx: Context) -> None:
    """AUTH004-006: a reader is refused writes and rebuild (403), may read, and get_item_access tells the truth."""
    main = ctx.api.call("get_item_access")
    body = main.json()
    if ctx.status_is("AUTH006", main, 200, why="any valid credential may ask") and isinstance(body, dict):
        admin, write, read = (bool(body.get(k)) for k in ("admin", "write", "read"))
        ctx.expect("AUTH006", "get_item_access", (not admin or write) and (not write or read),
                   f"grants must nest (admin => write => read), got {body}", main)
    reader = ctx.settings.reader
    if reader is None:
        for check_id, scope in (("AUTH004", "items:write"), ("AUTH005", "items:admin")):
            ctx.results.not_run(check_id, _ops_with_scope(scope), "needs --reader-token")
        return
    for op_id in _ops_with_scope("items:write"):
        ctx.error_is("AUTH004", _send(ctx, valid_probe(op_id, ctx.tag), reader), 403, "items:write missing")
    for op_id in _ops_with_scope("items:admin"):
        ctx.error_is("AUTH005", _send(ctx, valid_probe(op_id, ctx.tag), reader), 403, "items:admin missing")
    grants = ctx.api.call("get_item_access", auth=reader)
    body = grants.json()
    if ctx.status_is("AUTH006", grants, 200, why="a reader may ask for its grants"):
        ctx.expect("AUTH006", "get_item_access",
                   isinstance(body, dict) and body.get("read") is True and not body.get("write")
                   and not body.get("admin"),
                   f"a read-only credential must be read-only here, got {body}", grants)
    ctx.status_is("AUTH006", ctx.api.call("list_items", auth=reader, params={"limit": 1}), 200,
                  why="items:read suffices to list")


def check_order(ctx: Context) -> None:
    """ORD001-005: D4's order, each probe breaking two rules at once."""
    nowhere = f"{ctx.tag}-no-such-project"
    for op_id in ("list_items", "create_item", "rebuild_items"):
        ex = _send(ctx, valid_probe(op_id, ctx.tag), NO_AUTH, project=nowhere)
        ctx.error_is("ORD001", ex, 401, "credential is checked before tenancy")
    bad_json = {"create_item": INVALID_CREATE, "rebuild_items": {}, "bulk_update_items": {"item_ids": []}}
    for op_id, body in bad_json.items():
        ctx.error_is("ORD004", ctx.api.call(op_id, auth=NO_AUTH, json_body=body), 401,
                     "credential is checked before input")
        ctx.error_is("ORD005", ctx.api.call(op_id, json_body=body, project=nowhere), 404,
                     "tenancy is checked before input")
    reader = ctx.settings.reader
    if reader is None:
        ctx.results.not_run("ORD002", ["create_item", "rebuild_items", "bulk_update_items"], "needs --reader-token")
        ctx.results.not_run("ORD003", list(bad_json), "needs --reader-token")
        return
    for op_id in ("create_item", "rebuild_items", "bulk_update_items"):
        ex = _send(ctx, valid_probe(op_id, ctx.tag), reader, project=nowhere)
        ctx.error_is("ORD002", ex, 404, "tenancy is checked before scope")
    for op_id, body in bad_json.items():
        ctx.error_is("ORD003", ctx.api.call(op_id, auth=reader, json_body=body), 403,
                     "scope is checked before input")


def check_tenancy(ctx: Context) -> None:
    """TEN001-003: unknown tenants are 404; another organization's credential sees nothing and learns nothing."""
    s = ctx.settings
    unknown = f"{ctx.tag}-no-such"
    for probe in all_valid_probes(ctx.tag):
        keys = ["org"] if probe.op_id not in project_ops() else ["org", "workspace", "project"]
        for key in keys:
            ctx.error_is("TEN001", _send(ctx, probe, None, **{key: unknown}), 404, f"unknown {key}")
    other = s.other_tenant
    if other is None:
        ctx.results.not_run("TEN002", list(operations()), "needs --other-tenant-token")
        ctx.results.not_run("TEN004", list(operations()), "needs --other-tenant-token")
        ctx.results.not_run("TEN003", ["list_items", "get_item", "create_item", "rebuild_items"],
                            "needs --other-tenant-token")
        return
    for probe in all_valid_probes(ctx.tag):
        ex = _send(ctx, probe, other)
        ctx.status_is("TEN002", ex, 401, 403, 404, why="another organization's credential must not reach this "
                      "tenant")
        ctx.error_is("TEN004", ex, 404, "D4: another organization's project is answered as absent")
    for op_id in ("list_items", "get_item", "create_item", "rebuild_items"):
        probe = valid_probe(op_id, ctx.tag)
        real, fake = _send(ctx, probe, other), _send(ctx, probe, other, project=unknown)
        a, b = _answer(real, s.project), _answer(fake, unknown)
        ctx.expect("TEN003", op_id, a == b,
                   f"the existing project answers {a} but a missing one answers {b}: existence leaks", real)


def _answer(exchange: Exchange, slug: str) -> tuple[int, object, object]:
    """What a client learns from an answer: status, type and detail (with the slug it asked for blanked)."""
    body = exchange.json()
    if not isinstance(body, dict):
        return exchange.status, None, exchange.response_body.decode("utf-8", "replace").replace(slug, "<project>")
    detail = body.get("detail")
    return exchange.status, body.get("type"), detail.replace(slug, "<project>") if isinstance(detail, str) else detail


def run_all(ctx: Context) -> None:
    check_authentication(ctx)
    check_scopes(ctx)
    check_order(ctx)
    check_tenancy(ctx)
