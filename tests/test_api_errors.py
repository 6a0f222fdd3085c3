"""Whatever goes wrong, and whoever raises it, the client gets the canonical envelope (D2, D3, D4)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from envelope import assert_envelope
from server_fixtures import ACME, ADMIN, BASE, READER, WRITER, WS_ADMIN, Running

JSON = {"content-type": "application/json"}


def test_unknown_route_and_wrong_method_are_404_in_the_envelope(server: Running) -> None:
    assert_envelope(server.client.get("/nowhere", headers=ADMIN), 404)
    assert_envelope(server.client.get("/api/v1/org/example/nothing", headers=ADMIN), 404)
    assert_envelope(server.client.delete(f"{BASE}/items", headers=ADMIN), 404)  # D3: no 405 in the contract
    assert_envelope(server.client.put(f"{BASE}/items/rebuild", json={}, headers=ADMIN), 404)


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", JSON),
        (b"\xff\xfe\x00garbage", JSON),
        (b"[" * 100_000, JSON),
        (b'{"item_type": "finding"}', {"content-type": "text/plain"}),
        (b"item_type=finding", {"content-type": "application/x-www-form-urlencoded"}),
    ],
    ids=["bad-json", "invalid-utf8", "deep-nesting", "text-plain", "form"],
)
def test_body_that_is_not_json_is_400_and_writes_nothing(
    server: Running, content: bytes, headers: dict[str, str]
) -> None:
    assert_envelope(server.client.post(f"{BASE}/items", content=content, headers={**WRITER, **headers}), 400)
    assert server.items_table() == []


def test_missing_body_is_422_at_body(server: Running) -> None:
    for path in ("/items", "/items/rebuild", "/items/bulk-update"):
        body = assert_envelope(server.client.post(f"{BASE}{path}", headers={**ADMIN, **JSON}), 422)
        assert body["errors"][0]["loc"] == ["body"]


def test_validation_lists_every_problem_with_fastapi_loc(server: Running) -> None:
    body = assert_envelope(
        server.client.post(f"{BASE}/items", json={"item_type": "x" * 65, "session_id": "nope",
                                                  "capability": "c" * 256}, headers=WRITER),
        422,
    )
    assert sorted(tuple(e["loc"]) for e in body["errors"]) == [
        ("body", "capability"), ("body", "item_type"), ("body", "session_id")]
    missing = assert_envelope(server.client.post(f"{BASE}/items", json={"data": {}}, headers=WRITER), 422)
    assert missing["errors"] == [{"loc": ["body", "item_type"], "msg": "Field required", "type": "missing"}]


def test_rebuild_input_rules(server: Running) -> None:
    url = f"{BASE}/items/rebuild"
    bodies: list[dict[str, Any]] = [{}, {"run_ids": []}, {"run_ids": None, "session_id": None}]
    for body in bodies:
        error = assert_envelope(server.client.post(url, json=body, headers=ADMIN), 422)
        assert error["errors"][0]["loc"] == ["body"]  # D1
    bad = assert_envelope(server.client.post(url, json={"session_id": "x"}, headers=ADMIN), 422)
    assert bad["errors"][0]["loc"] == ["body", "session_id"]
    too_many = assert_envelope(server.client.post(url, json={"run_ids": ["r"] * 1001}, headers=ADMIN), 422)
    assert too_many["errors"][0]["loc"] == ["body", "run_ids"]
    ok = server.client.post(url, json={"session_id": str(uuid.uuid4())}, headers=ADMIN)
    assert ok.status_code == 200 and ok.json() == {"processed": 0}  # D5


def test_oversized_body_is_refused_before_it_is_read(server: Running) -> None:
    big = b'{"item_type": "finding", "data": {"blob": "' + b"x" * (1024 * 1024 + 10) + b'"}}'
    assert_envelope(server.client.post(f"{BASE}/items", content=big, headers={**WRITER, **JSON}), 400)
    assert server.items_table() == []


def test_no_credential_malformed_and_unknown_are_401(server: Running) -> None:
    url = f"{BASE}/items"
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic YWxhZGRpbjpvcGVu"},
                    {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "nope"}, {"X-API-Key": ""}):
        assert_envelope(server.client.get(url, headers=headers), 401)


def test_d4_credential_before_tenancy_before_scope_before_input(server: Running) -> None:
    bad_body = b"{not json"
    # No credential: 401 even for an unknown project and a broken body.
    assert_envelope(server.client.post("/api/v1/org/nope/ws/x/projects/y/items/rebuild", content=bad_body,
                                       headers=JSON), 401)
    # A credential, but a project it may not see: 404 before the missing scope and the broken body.
    assert_envelope(server.client.post("/api/v1/org/acme/ws/main/projects/rockets/items/rebuild",
                                       content=bad_body, headers={**READER, **JSON}), 404)
    # Its own project, without the scope: 403 before the broken body.
    assert_envelope(server.client.post(f"{BASE}/items/rebuild", content=bad_body, headers={**READER, **JSON}), 403)
    assert_envelope(server.client.post(f"{BASE}/items/rebuild", content=bad_body, headers={**WRITER, **JSON}), 403)
    # With the scope: now the body is judged.
    assert_envelope(server.client.post(f"{BASE}/items/rebuild", content=bad_body, headers={**ADMIN, **JSON}), 400)


def test_scopes_per_operation(server: Running) -> None:
    item = server.client.post(f"{BASE}/items", json={"item_type": "finding"}, headers=WRITER).json()
    writes = [
        ("POST", f"{BASE}/items", {"item_type": "finding"}),
        ("PATCH", f"{BASE}/items/{item['id']}", {"title": "t"}),
        ("POST", f"{BASE}/items/bulk-update", {"item_ids": [item["id"]], "status": None}),
        ("POST", f"{BASE}/items/{item['id']}/links", {"relationship": "r", "target_ref": "x"}),
        ("DELETE", f"{BASE}/items/{item['id']}/links/{uuid.uuid4()}", None),
    ]
    for method, url, body in writes:
        assert_envelope(server.client.request(method, url, json=body, headers=READER), 403)
    assert_envelope(server.client.post(f"{BASE}/items/rebuild", json={"run_ids": ["r"]}, headers=WRITER), 403)
    assert server.client.get(f"{BASE}/items/{item['id']}", headers=READER).status_code == 200
    assert server.client.get(f"{BASE}/items/{item['id']}", headers=READER).json()["title"] is None


def test_tenancy_isolation_does_not_leak_existence(server: Running) -> None:
    item = server.client.post(f"{BASE}/items", json={"item_type": "finding"}, headers=WRITER).json()
    hidden = server.client.get(f"{BASE}/items/{item['id']}", headers=ACME)
    absent = server.client.get(f"/api/v1/org/example/ws/example/projects/no-such/items/{item['id']}", headers=ADMIN)
    nowhere = server.client.get(f"/api/v1/org/nope/ws/example/projects/example/items/{item['id']}", headers=ADMIN)
    for response in (hidden, absent, nowhere):
        assert_envelope(response, 404)
    assert hidden.json() == absent.json() == nowhere.json()
    # A credential limited to one workspace sees nothing of another workspace of its org.
    other_ws = "/api/v1/org/example/ws/other-ws/projects/side/items"
    assert server.client.get(other_ws, headers=ADMIN).status_code == 200
    assert server.client.get(other_ws, headers=WS_ADMIN).json() == hidden.json()
    assert server.client.get(f"{BASE}/items", headers=WS_ADMIN).status_code == 200  # hashed token works
    # The other org cannot write into this project either.
    assert_envelope(server.client.post(f"{BASE}/items", json={"item_type": "finding"}, headers=ACME), 404)
    assert len(server.items_table()) == 1


def test_prefer_header_answers_documented_examples(server: Running) -> None:
    r = server.client.get(f"{BASE}/items/summary", headers={**READER, "Prefer": "code=429"})
    assert_envelope(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    r = server.client.post(f"{BASE}/items/rebuild", json={}, headers={**READER, "Prefer": "code=200"})
    assert r.status_code == 200 and isinstance(r.json()["processed"], int)
    assert_envelope(server.client.get(f"{BASE}/items", headers={**READER, "Prefer": "code=418"}), 400)
