"""Auth and tenancy for every operation of openapi.yaml, secrets, the rate limit.

- no credential, an unknown one, malformed headers: 401, whatever the target; a credential of another
  organization, or limited to another workspace: 404 with the very bytes a project that does not
  exist gets (nothing tells the caller whether the target exists); scopes per operation: 403;
- items of one project are unreachable through another (ids, links, bulk updates, refs);
- a real `harness serve --config` with only hashed (`sha256:`) tokens, debug logs and access logs on:
  no token, no token hash, no span-store password ever appears in its output or in a response;
- the per-credential token bucket: 429 `rate_limit_error` with `Retry-After`, and a limited request
  changed nothing; other credentials are not limited by it; it recovers after `Retry-After`.
"""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from envelope import assert_envelope
from server_fixtures import ACME, ADMIN, BASE, READER, WRITER, WS_ADMIN, Running, start_server
from test_reliability_support import ServeProcess, snapshot, write_toml

from harness.contract import load_spec
from harness.server.config import Tenancy
from harness.spans.files import FileSpanSource

PROJECT = "/api/v1/org/example/ws/example/projects/example"
OTHER_WS = "/api/v1/org/example/ws/other-ws/projects/side"
ABSENT_PROJECT = "/api/v1/org/example/ws/example/projects/no-such-project"
ABSENT_ORG = "/api/v1/org/no-such-org/ws/example/projects/example"
MALFORMED: tuple[dict[str, str], ...] = (
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer \t x"},
    {"Authorization": "Basic YWRtaW4tdG9rZW4tMDEyMzQ1Njc4OTo="},
    {"Authorization": "Token admin-token-0123456789"},
    {"Authorization": "admin-token-0123456789"},
    {"Authorization": "Bearer admin-token-0123456789x"},
    {"Authorization": "Bearer admin-token-012345678"},
    {"Authorization": "Bearer not-a-token"},
    {"X-API-Key": ""},
    {"X-API-Key": "nope"},
    {"X-API-Key": "Bearer admin-token-0123456789"},
    {"Authorization": f"Bearer {hashlib.sha256(b'ws-admin-token-0123456789').hexdigest()}"},
)
"""No credential, unknown ones, near misses, wrong schemes, and a token's hash presented as the token."""


@dataclass(frozen=True)
class Call:
    operation: str
    method: str
    path: str
    """Relative to a project's base, or absolute for ingest (`{org}` filled in)."""
    body: bytes | None
    content_type: str | None
    scopes: frozenset[str]


def operations(item_id: str, link_id: str) -> list[Call]:
    """One concrete, otherwise valid call per operation of openapi.yaml."""
    bodies: dict[str, bytes] = {
        "create_item": b'{"item_type": "finding"}',
        "update_item": b'{"title": "t"}',
        "bulk_update_items": b'{"item_ids": ["%s"], "status": null}' % item_id.encode(),
        "create_item_link": b'{"relationship": "r", "target_ref": "b"}',
        "rebuild_items": b'{"run_ids": ["r"]}',
        "ingest_traces": b"",
    }
    calls: list[Call] = []
    for raw_path, item in load_spec()["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            name = op["operationId"]
            content = list(op.get("requestBody", {}).get("content", {}))
            path = raw_path.replace("{item_id}", item_id).replace("{link_id}", link_id)
            path = path.split("/projects/{project}", 1)[1] if "/projects/{project}" in path else path
            calls.append(Call(name, method.upper(), path, bodies.get(name) if content else None,
                              content[0] if content else None, frozenset(op.get("x-scopes", []))))
    assert len(calls) == 13
    return calls


def send(client: httpx.Client, call: Call, base: str, headers: dict[str, str]) -> httpx.Response:
    if call.operation == "ingest_traces":
        org = base.split("/org/", 1)[1].split("/", 1)[0]
        url = f"/api/v1/org/{org}/otel/traces"
    else:
        url = f"{base}{call.path}"
    extra = {"Content-Type": call.content_type} if call.content_type else {}
    return client.request(call.method, url, content=call.body, headers={**headers, **extra})


@pytest.fixture
def targets(server: Running) -> Iterator[tuple[str, str]]:
    a = server.client.post(f"{BASE}/items", json={"item_type": "finding", "ref": "a"}, headers=WRITER).json()
    server.client.post(f"{BASE}/items", json={"item_type": "asset", "ref": "b"}, headers=WRITER)
    link = server.client.post(f"{BASE}/items/{a['id']}/links", json={"relationship": "affects", "target_ref": "b"},
                              headers=WRITER).json()
    yield a["id"], link["link_id"]


def test_every_operation_answers_401_and_404_exactly_per_d4_and_leaks_nothing(
    server: Running, targets: tuple[str, str]
) -> None:
    item_id, link_id = targets
    before = snapshot(server.db_path)
    checked = 0
    for call in operations(item_id, link_id):
        for headers in MALFORMED:
            bases = (PROJECT, ABSENT_PROJECT, ABSENT_ORG)
            bodies = {send(server.client, call, base, headers).content for base in bases}
            r = send(server.client, call, PROJECT, headers)
            assert_envelope(r, 401)
            assert len(bodies) == 1, (call.operation, headers, bodies)  # the target's existence does not show
            checked += 3
        ingest = call.operation == "ingest_traces"  # it addresses an organization, not a project
        absent = send(server.client, call, ABSENT_ORG if ingest else ABSENT_PROJECT, ADMIN)
        assert_envelope(absent, 404)
        hidden = ((ACME, PROJECT),) if ingest else ((ACME, PROJECT), (WS_ADMIN, OTHER_WS), (ADMIN, ABSENT_ORG))
        for headers, base in hidden:
            r = send(server.client, call, base, headers)
            assert_envelope(r, 404)
            assert r.content == absent.content, (call.operation, headers, base)
            checked += 1
    assert snapshot(server.db_path) == before  # not one of those calls changed anything
    assert checked > 13 * 40


def test_every_operation_enforces_its_scopes(server: Running, targets: tuple[str, str]) -> None:
    item_id, link_id = targets
    credentials = {"reader": (READER, {"items:read"}), "writer": (WRITER, {"items:read", "items:write"}),
                   "admin": (ADMIN, {"items:read", "items:write", "items:admin"})}
    for call in operations(item_id, link_id):
        for name, (headers, scopes) in credentials.items():
            r = send(server.client, call, PROJECT, headers)
            if call.scopes <= scopes:  # authorized: whatever the operation answers, not 401/403/404-project
                assert r.status_code not in (401, 403), (call.operation, name, r.status_code, r.text)
                assert r.status_code != 404 or r.json()["detail"] == "Link not found", r.text  # deleted already
            else:
                body = assert_envelope(r, 403)
                assert sorted(call.scopes - scopes)[0] in body["detail"]
    for headers, status in (({}, 401), (READER, 403)):
        r = server.client.post("/v1/traces", content=b"", headers={**headers, "Content-Type": "application/x-protobuf"})
        assert_envelope(r, status)
    r = server.client.post("/v1/traces", content=b"", headers={**WRITER, "Content-Type": "application/x-protobuf"})
    assert r.status_code not in (401, 403, 404), r.text  # authorized (this server's spans are files: 400)


def test_items_of_one_project_are_unreachable_through_another(server: Running) -> None:
    item = server.client.post(f"{BASE}/items", json={"item_type": "finding", "ref": "mine"}, headers=WRITER).json()
    target = server.client.post(f"{BASE}/items", json={"item_type": "asset", "ref": "t"}, headers=WRITER).json()
    link = server.client.post(f"{BASE}/items/{item['id']}/links", json={"relationship": "r", "target_ref": "t"},
                              headers=WRITER).json()
    before = snapshot(server.db_path)
    random_id = str(uuid.uuid4())
    for method, path, body in (
        ("GET", "/items/{id}", None),
        ("PATCH", "/items/{id}", {"status": "dismissed"}),
        ("GET", "/items/{id}/links", None),
        ("GET", "/items/{id}/events", None),
        ("POST", "/items/{id}/links", {"relationship": "r", "target_ref": "t"}),
        ("DELETE", "/items/{id}/links/" + link["link_id"], None),
    ):
        hidden = server.client.request(method, OTHER_WS + path.replace("{id}", item["id"]), json=body, headers=ADMIN)
        absent = server.client.request(method, OTHER_WS + path.replace("{id}", random_id), json=body, headers=ADMIN)
        assert_envelope(hidden, 404)
        assert hidden.content == absent.content, (method, path)
    bulk = server.client.post(f"{OTHER_WS}/items/bulk-update", json={"item_ids": [item["id"]], "status": "dismissed"},
                              headers=ADMIN).json()
    assert bulk["updated"] == [] and [f["item_id"] for f in bulk["failed"]] == [item["id"]]
    side = server.client.post(f"{OTHER_WS}/items", json={"item_type": "finding", "ref": "mine"}, headers=ADMIN)
    assert side.status_code == 201  # refs are per project: "mine" is free there
    by_id = server.client.post(f"{OTHER_WS}/items/{side.json()['id']}/links",
                               json={"relationship": "r", "target_item_id": target["id"]}, headers=ADMIN)
    assert_envelope(by_id, 404)  # a target in another project does not exist here
    listed = server.client.get(f"{OTHER_WS}/items", params={"ref": "t", "q": "asset"}, headers=ADMIN).json()
    assert listed["total"] == 0
    after = snapshot(server.db_path)
    assert [r for r in after["items"] if r not in before["items"]] == [
        r for r in after["items"] if r[0] == side.json()["id"]]


# --------------------------------------------------------------------------- secrets in logs and bodies


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


SECRETS = {"hashed-admin": "an-admin-secret-5b1e0c", "hashed-reader": "a-reader-secret-77d2aa",
           "other-org": "another-org-secret-0c9f"}
SPANS_PASSWORD = "span-store-password-93ab"


def test_credentials_never_appear_in_logs_or_bodies(tmp_path: Path) -> None:
    digests = {name: hashlib.sha256(secret.encode()).hexdigest() for name, secret in SECRETS.items()}
    config = write_toml(tmp_path / "tenancy.toml", f"""
[[projects]]
org = "example"
workspace = "example"
project = "example"

[[projects]]
org = "acme"
workspace = "main"
project = "rockets"

[[credentials]]
name = "admin"
token = "sha256:{digests['hashed-admin'].upper()}"
org = "example"
scopes = ["items:read", "items:write", "items:admin"]

[[credentials]]
name = "reader"
token = "sha256:{digests['hashed-reader']}"
org = "example"
scopes = ["items:read"]

[[credentials]]
name = "acme"
token = "sha256:{digests['other-org']}"
org = "acme"
scopes = ["items:read", "items:write", "items:admin"]
""")
    spans = f"http://default:{SPANS_PASSWORD}@127.0.0.1:{closed_port()}/default"
    log = tmp_path / "serve.log"
    bodies: list[bytes] = []
    admin, reader = SECRETS["hashed-admin"], SECRETS["hashed-reader"]
    options = ("--config", str(config), "--spans", spans, "--log-level", "debug", "--access-log", "--rate-limit", "5",
               "--rate-limit-burst", "20")
    with ServeProcess(tmp_path / "data" / "items.db", *options, log=log) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:

        def call(method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
            r = client.request(method, path, headers=headers, **kw)
            bodies.append(r.content + str(r.headers).encode())
            return r

        # Hashed tokens work, as Bearer and as X-API-Key.
        assert call("GET", f"{PROJECT}/items", {"Authorization": f"Bearer {admin}"}).status_code == 200
        assert call("GET", f"{PROJECT}/items", {"X-API-Key": reader}).status_code == 200
        created = call("POST", f"{PROJECT}/items", {"X-API-Key": admin}, json={"item_type": "finding"})
        assert created.status_code == 201 and created.json()["created_by"] == "admin"
        # Everything that fails, with the secrets around.
        for secret in SECRETS.values():
            for headers in ({"Authorization": f"Bearer {secret}x"}, {"Authorization": f"Basic {secret}"},
                            {"X-API-Key": secret[:-1]}, {"Authorization": secret},
                            {"Authorization": f"Bearer {hashlib.sha256(secret.encode()).hexdigest()}"}):
                assert_envelope(call("GET", f"{PROJECT}/items", headers), 401)
        assert_envelope(call("GET", f"{PROJECT}/items", {"X-API-Key": SECRETS["other-org"]}), 404)
        assert_envelope(call("POST", f"{PROJECT}/items", {"X-API-Key": reader}, json={"item_type": "x"}), 403)
        assert_envelope(call("POST", f"{PROJECT}/items", {"X-API-Key": admin, "Content-Type": "application/json"},
                             content=b"{oops"), 400)
        assert_envelope(call("PATCH", f"{PROJECT}/items/not-a-uuid", {"X-API-Key": admin}, json={}), 422)
        rebuilt = call("POST", f"{PROJECT}/items/rebuild", {"X-API-Key": admin},
                       json={"session_id": str(uuid.uuid4())})
        assert_envelope(rebuilt, 502)  # the span store is down; the server started anyway
        ingest = call("POST", "/api/v1/org/example/otel/traces",
                      {"X-API-Key": admin, "Content-Type": "application/x-protobuf"}, content=b"\x0a\x02\x0a\x00")
        assert ingest.status_code in (200, 502), ingest.text
        limited = [call("GET", f"{PROJECT}/items/access", {"X-API-Key": reader}) for _ in range(40)]
        assert {r.status_code for r in limited} == {200, 429}
        assert_envelope(next(r for r in limited if r.status_code == 429), 429)
    output = log.read_text(encoding="utf-8", errors="replace")
    assert "GET /api/v1/org/example/ws/example/projects/example/items" in output  # the access log is on
    everything = output.encode() + b"".join(bodies)
    for text in (*SECRETS.values(), *digests.values(), *(d.upper() for d in digests.values()), SPANS_PASSWORD):
        assert text.encode() not in everything, text


# --------------------------------------------------------------------------- the rate limit


@pytest.fixture
def limited(tmp_path: Path, tenancy: Tenancy) -> Iterator[Running]:
    spans = tmp_path / "spans"
    spans.mkdir()
    live, store = start_server(tmp_path / "items.db", tenancy, FileSpanSource([spans]), rate_limit_per_second=0.5,
                               rate_limit_burst=3)
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield Running(live.url, client, store, tenancy, tmp_path / "items.db")
    live.stop()
    store.close()


def test_a_limited_request_gets_429_with_retry_after_and_has_no_side_effect(limited: Running) -> None:
    c = limited.client
    items = [c.post(f"{BASE}/items", json={"item_type": "finding", "ref": f"r{n}"}, headers=WRITER) for n in range(3)]
    assert [r.status_code for r in items] == [201, 201, 201]  # the burst
    before = snapshot(limited.db_path)
    refused = [
        c.post(f"{BASE}/items", json={"item_type": "finding", "ref": "r3"}, headers=WRITER),
        c.patch(f"{BASE}/items/{items[0].json()['id']}", json={"status": "dismissed"}, headers=WRITER),
        c.post(f"{BASE}/items/bulk-update", json={"item_ids": [items[1].json()["id"]], "status": "resolved"},
               headers=WRITER),
        c.post(f"{BASE}/items/{items[0].json()['id']}/links", json={"relationship": "r", "target_ref": "r1"},
               headers=WRITER),
        c.post("/v1/traces", content=b"", headers={**WRITER, "Content-Type": "application/x-protobuf"}),
        c.get("/api/v1/org/acme/ws/main/projects/rockets/items", headers=WRITER),  # 429, not a 404 oracle
    ]
    for r in refused:
        assert_envelope(r, 429)
        assert 1 <= int(r.headers["Retry-After"]) <= 2
    assert snapshot(limited.db_path) == before  # nothing the limited requests asked for happened
    assert_envelope(c.get(f"{BASE}/items", headers={"Authorization": "Bearer unknown"}), 401)  # 401 before 429
    assert c.get(f"{BASE}/items", headers=READER).status_code == 200  # other credentials keep their own bucket
    assert c.post(f"{BASE}/items/rebuild", json={"run_ids": ["r"]}, headers=ADMIN).status_code == 200
    time.sleep(int(refused[0].headers["Retry-After"]))
    again = c.patch(f"{BASE}/items/{items[0].json()['id']}", json={"status": "dismissed"}, headers=WRITER)
    assert again.status_code == 200 and again.json()["disposition"]["status"] == "dismissed"
