"""Every items operation over real HTTP: the success path and each error it can produce."""

from __future__ import annotations

import uuid
from typing import Any

from envelope import assert_envelope
from server_fixtures import ADMIN, BASE, READER, WRITER, Running


def finding(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "item_type": "finding",
        "title": "SQL injection in /login",
        "ref": "sqli-login",
        "dedupe_key": uuid.uuid4().hex,
        "data": {"severity": "high", "category": "CWE-89", "description": "username is concatenated"},
        "source": "runtime",
    }
    body.update(overrides)
    return body


def create(server: Running, **overrides: Any) -> dict[str, Any]:
    r = server.client.post(f"{BASE}/items", json=finding(**overrides), headers=WRITER)
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    return item


def test_create_returns_every_key_and_replay_is_idempotent(server: Running) -> None:
    body = finding()
    first = server.client.post(f"{BASE}/items", json=body, headers=WRITER)
    assert first.status_code == 201
    item = first.json()
    assert item["source"] == "runtime" and item["disposition"] is None
    assert item["effective_status"] == "needs_review"
    assert item["created_by"] == "writer"
    # The SDK replays with the same dedupe_key; even a changed body is answered with the original.
    replay = server.client.post(f"{BASE}/items", json={**body, "title": "changed", "ref": "other"}, headers=WRITER)
    assert replay.status_code == 200
    assert replay.json() == item
    assert len(server.items_table()) == 1
    events = server.client.get(f"{BASE}/items/{item['id']}/events", headers=READER).json()["events"]
    assert [e["event_type"] for e in events] == ["created"]


def test_reused_ref_is_409_already_exists_and_writes_nothing(server: Running) -> None:
    create(server, ref="web-1", item_type="asset")
    r = server.client.post(f"{BASE}/items", json=finding(ref="web-1"), headers=WRITER)
    assert_envelope(r, 409, "already_exists_error")
    assert len(server.items_table()) == 1


def test_create_with_inline_links_resolves_targets(server: Running) -> None:
    asset = create(server, item_type="asset", ref="web-1", title="web-1", data={"asset_type": "host"})
    item = create(server, links=[{"target_ref": "web-1", "relationship": "affects"}])
    links = server.client.get(f"{BASE}/items/{item['id']}/links", headers=READER).json()["links"]
    assert [(lk["direction"], lk["item"]["id"], lk["relationship"]) for lk in links] == [
        ("outgoing", asset["id"], "affects")
    ]
    incoming = server.client.get(f"{BASE}/items/{asset['id']}/links", headers=READER).json()["links"]
    assert incoming[0]["direction"] == "incoming"


def test_get_item_and_missing_item(server: Running) -> None:
    item = create(server)
    assert server.client.get(f"{BASE}/items/{item['id']}", headers=READER).json() == item
    assert_envelope(server.client.get(f"{BASE}/items/{uuid.uuid4()}", headers=READER), 404)
    bad = assert_envelope(server.client.get(f"{BASE}/items/not-a-uuid", headers=READER), 422)
    assert bad["errors"][0]["loc"] == ["path", "item_id"]


def test_update_merges_data_and_disposition(server: Running) -> None:
    item = create(server)
    url = f"{BASE}/items/{item['id']}"
    r = server.client.patch(url, json={"data": {"evidence": "' OR 1=1--"}, "status": "triaged", "notes": "real"},
                            headers=WRITER)
    assert r.status_code == 200
    updated = r.json()
    assert updated["data"] == {**item["data"], "evidence": "' OR 1=1--"}  # shallow merge, not replace
    assert updated["disposition"]["status"] == "triaged"
    assert updated["disposition"]["notes"] == "real"
    assert updated["disposition"]["updated_by"] == "writer"
    assert updated["effective_status"] == "triaged"
    # Notes alone never change the status.
    notes_only = server.client.patch(url, json={"notes": "confirmed"}, headers=WRITER).json()
    assert notes_only["disposition"]["status"] == "triaged"
    # Explicit null un-triages and keeps the notes (D15).
    untriaged = server.client.patch(url, json={"status": None}, headers=WRITER).json()
    assert untriaged["disposition"]["status"] is None
    assert untriaged["disposition"]["notes"] == "confirmed"
    assert untriaged["effective_status"] == "needs_review"
    events = server.client.get(f"{url}/events", headers=READER).json()["events"]
    assert [e["event_type"] for e in events] == ["created", "updated", "updated", "updated"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert set(events[1]["payload"]["changed"]) == {"data", "disposition.status", "disposition.notes"}


def test_update_without_change_keeps_updated_at(server: Running) -> None:
    item = create(server)
    same = server.client.patch(f"{BASE}/items/{item['id']}", json={"title": item["title"]}, headers=WRITER).json()
    assert same["updated_at"] == item["updated_at"]


def test_update_errors(server: Running) -> None:
    item = create(server)
    assert_envelope(server.client.patch(f"{BASE}/items/{uuid.uuid4()}", json={"title": "x"}, headers=WRITER), 404)
    body = assert_envelope(
        server.client.patch(f"{BASE}/items/{item['id']}", json={"status": "needs_review"}, headers=WRITER), 422
    )
    assert body["errors"][0]["loc"] == ["body", "status"]  # derived, nobody can set it
    assert_envelope(server.client.patch(f"{BASE}/items/{item['id']}", json={"title": "x" * 513}, headers=WRITER),
                    422)


def test_bulk_update_is_best_effort(server: Running) -> None:
    a, b = create(server, ref="a"), create(server, ref="b")
    missing = str(uuid.uuid4())
    r = server.client.post(f"{BASE}/items/bulk-update",
                           json={"item_ids": [a["id"], missing, b["id"], a["id"]], "status": "dismissed"},
                           headers=WRITER)
    assert r.status_code == 200
    assert r.json() == {"updated": [a["id"], b["id"]], "failed": [{"item_id": missing, "detail": "Item not found"}]}
    assert server.client.get(f"{BASE}/items/{a['id']}", headers=READER).json()["effective_status"] == "dismissed"
    assert_envelope(server.client.post(f"{BASE}/items/bulk-update", json={"item_ids": [], "status": None},
                                       headers=WRITER), 422)
    too_many = [str(uuid.uuid4()) for _ in range(201)]
    assert_envelope(server.client.post(f"{BASE}/items/bulk-update", json={"item_ids": too_many, "status": None},
                                       headers=WRITER), 422)
    no_status = assert_envelope(
        server.client.post(f"{BASE}/items/bulk-update", json={"item_ids": [a["id"]]}, headers=WRITER), 422)
    assert no_status["errors"][0]["loc"] == ["body", "status"]


def test_links_create_replay_list_delete(server: Running) -> None:
    asset = create(server, item_type="asset", ref="web-1")
    item = create(server)
    url = f"{BASE}/items/{item['id']}/links"
    r = server.client.post(url, json={"relationship": "affects", "target_ref": "web-1"}, headers=WRITER)
    assert r.status_code == 201
    link = r.json()
    assert link["id"] == link["link_id"] and link["target_item_id"] == asset["id"]
    again = server.client.post(url, json={"relationship": "affects", "target_item_id": asset["id"]}, headers=WRITER)
    assert again.status_code == 200 and again.json() == link
    missing = assert_envelope(server.client.post(url, json={"relationship": "x", "target_ref": "nope"},
                                                 headers=WRITER), 404)
    assert "Target " in missing["detail"]
    assert_envelope(server.client.post(url, json={"relationship": "x", "target_ref": "web-1",
                                                  "target_item_id": asset["id"]}, headers=WRITER), 422)
    assert_envelope(server.client.post(url, json={"relationship": "x"}, headers=WRITER), 422)
    assert_envelope(server.client.post(url, json={"relationship": "self", "target_item_id": item["id"]},
                                       headers=WRITER), 422)
    assert_envelope(server.client.post(f"{BASE}/items/{uuid.uuid4()}/links",
                                       json={"relationship": "x", "target_ref": "web-1"}, headers=WRITER), 404)
    deleted = server.client.delete(f"{url}/{link['link_id']}", headers=WRITER)
    assert deleted.status_code == 204 and deleted.content == b""
    assert server.client.get(url, headers=READER).json() == {"links": []}
    assert_envelope(server.client.delete(f"{url}/{link['link_id']}", headers=WRITER), 404)
    kinds = [e["event_type"] for e in server.client.get(f"{BASE}/items/{item['id']}/events",
                                                         headers=READER).json()["events"]]
    assert kinds == ["created", "linked", "unlinked"]


def test_list_filters_sort_and_pagination(server: Running) -> None:
    high = create(server, ref="h", data={"severity": "high", "category": "CWE-89"}, capability="web")
    low = create(server, ref="l", title="Verbose banner", data={"severity": "low", "category": "info-leak"})
    crit = create(server, ref="c", title="RCE", data={"severity": "critical"}, source="api")
    asset = create(server, ref="a", item_type="asset", title="web-1", data={"asset_type": "host"})
    server.client.patch(f"{BASE}/items/{low['id']}", json={"status": "resolved"}, headers=WRITER)

    def ids(query: str) -> list[str]:
        r = server.client.get(f"{BASE}/items?{query}", headers=READER)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids("item_type=asset") == [asset["id"]]
    assert set(ids("severity=high&severity=critical")) == {high["id"], crit["id"]}
    assert set(ids("min_severity=high")) == {high["id"], crit["id"]}
    assert set(ids("status=needs_review")) == {high["id"], crit["id"]}  # effective status (D11)
    assert ids("status=resolved") == [low["id"]]
    assert ids("category=CWE-89") == [high["id"]]
    assert ids("capability=web") == [high["id"]]
    assert ids("source=api") == [crit["id"]]
    assert ids("ref=l") == [low["id"]]
    assert ids("q=banner") == [low["id"]]
    assert ids("q=cwe-89") == [high["id"]]  # searches the text of data too
    assert ids("q=%25") == []  # LIKE metacharacters are data
    assert ids("sort=severity&order=desc")[:2] == [crit["id"], high["id"]]
    assert ids("sort=created_at&order=asc") == [high["id"], low["id"], crit["id"], asset["id"]]
    page = server.client.get(f"{BASE}/items?limit=3&page=2", headers=READER).json()
    assert (page["total"], page["page"], page["limit"], page["total_pages"]) == (4, 2, 3, 2)
    assert (page["has_next"], page["has_previous"], len(page["items"])) == (False, True, 1)
    created = server.client.get(f"{BASE}/items/{crit['id']}", headers=READER).json()["created_at"]
    assert set(ids(f"created_after={created}")) == {asset["id"]}
    bad = assert_envelope(server.client.get(f"{BASE}/items?limit=201&sort=nope", headers=READER), 422)
    assert {tuple(e["loc"]) for e in bad["errors"]} == {("query", "limit"), ("query", "sort")}


def test_summary_and_access(server: Running) -> None:
    create(server, ref="h", data={"severity": "high"})
    create(server, ref="a", item_type="asset", data={})
    summary = server.client.get(f"{BASE}/items/summary", headers=READER).json()
    assert summary["total"] == 2 and summary["worst_severity"] == "high"
    assert summary["by_type"] == {"finding": 1, "asset": 1}
    assert summary["by_severity"]["high"] == 1
    only_assets = server.client.get(f"{BASE}/items/summary?item_type=asset", headers=READER).json()
    assert only_assets["total"] == 1 and only_assets["worst_severity"] is None
    assert server.client.get(f"{BASE}/items/access", headers=READER).json() == {
        "admin": False, "read": True, "write": False}
    assert server.client.get(f"{BASE}/items/access", headers=ADMIN).json() == {
        "admin": True, "read": True, "write": True}


def test_project_uuid_is_accepted_in_paths(server: Running) -> None:
    item = create(server)
    project = server.tenancy.find_project("example", "example", "example")
    assert project is not None
    r = server.client.get(f"/api/v1/org/example/ws/example/projects/{project.id.upper()}/items/{item['id']}",
                          headers=READER)
    assert r.status_code == 200 and r.json()["project_id"] == project.id


def test_data_comes_back_exactly_as_written(server: Running) -> None:
    """Big integers, non-ASCII text and nesting survive the store and the response encoder unchanged."""
    data = {"severity": "low", "big": 123456789012345678901234567890, "negative": -(2**70), "text": "Grüße ✓ 𝄞",
            "nested": {"list": [1, 2.5, None, True, {"k": "v"}]}, "max_u64": 2**64 - 1}
    item = create(server, data=data)
    assert item["data"] == data
    fetched = server.client.get(f"{BASE}/items/{item['id']}", headers=READER).json()
    assert fetched["data"] == data
    listed = server.client.get(f"{BASE}/items", headers=READER).json()["items"]
    assert [i["data"] for i in listed if i["id"] == item["id"]] == [data]
