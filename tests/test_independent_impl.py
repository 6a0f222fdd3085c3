"""The independent implementation (tests/independent) over real HTTP: its five deliberate differences and a heal.

Each difference is shown to be a choice, not a gap: the same input on an existing item (or a valid
export) gets the answer the reference would give. The spans are built with the suite's own seeding
code (the implementation itself shares nothing with `harness`).
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from independent import DIFFERENCES, PROJECTS, create_app
from live_server import LiveServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from harness.conformance.command import check
from harness.conformance.seeding import OTLP_HEADERS, ItemOutput, Offloaded, Trace, bad_span_body, envelope, otlp_body
from harness.spans.otlp import encode_otlp_json

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
SDK = {"X-API-Key": "writer-token-0123456789"}
BASE = "/api/v1/org/example/ws/example/projects/example"
INGEST = "/api/v1/org/example/otel/traces"


@pytest.fixture
def independent(tmp_path: Path) -> Iterator[str]:
    """The independent implementation on 127.0.0.1 (ephemeral port), its SQLite file in tmp_path: its base URL."""
    server = LiveServer(create_app(tmp_path / "independent.db")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def api(independent: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=independent, headers=ADMIN, timeout=30) as client:
        yield client


def _create(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post(f"{BASE}/items", json={"item_type": "finding", "data": {"severity": "low"}, **body})
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


def _ingest(api: httpx.Client, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return api.post(INGEST, content=content, headers={**SDK, **headers})


def _total(api: httpx.Client, **params: str) -> int:
    response = api.get(f"{BASE}/items", params=params)
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def test_differences_are_declared() -> None:
    assert len(DIFFERENCES) == 5 and all(re.match(r"D\d+ ", departs) for _, departs in DIFFERENCES)
    assert all(what and departs for what, departs in DIFFERENCES)


BAD_BODIES: list[tuple[bytes, str, int]] = [
    (b'{"status": ', "application/json", 400),
    (b'{"status": "open"}', "text/plain", 400),
    (b"", "application/json", 422),
]


@pytest.mark.parametrize(("content", "content_type", "on_existing"), BAD_BODIES)
def test_absent_item_is_404_before_its_body_is_read(api: httpx.Client, content: bytes, content_type: str,
                                                    on_existing: int) -> None:
    """Difference 1: the item is looked up first; the same body on an existing item is refused as input."""
    existing = _create(api)["id"]
    for path in ("", "/links"):
        method = "PATCH" if not path else "POST"
        absent = api.request(method, f"{BASE}/items/{uuid.uuid4()}{path}", content=content,
                             headers={"Content-Type": content_type})
        assert (absent.status_code, absent.json()["type"]) == (404, "not_found_error")
        present = api.request(method, f"{BASE}/items/{existing}{path}", content=content,
                              headers={"Content-Type": content_type})
        assert present.status_code == on_existing, present.text


def test_absent_item_is_404_before_schema_and_link_id(api: httpx.Client) -> None:
    existing = _create(api)["id"]
    for item_id, status in ((str(uuid.uuid4()), 404), (existing, 422)):
        patch = api.patch(f"{BASE}/items/{item_id}", json={"status": "needs_review", "title": 5})
        link = api.post(f"{BASE}/items/{item_id}/links", json={"relationship": "", "target_item_id": "nope"})
        unlink = api.delete(f"{BASE}/items/{item_id}/links/nope")
        assert [patch.status_code, link.status_code, unlink.status_code] == [status] * 3
    assert api.patch(f"{BASE}/items/not-a-uuid", content=b"{").status_code == 422  # the path itself comes first


def test_inline_link_to_a_missing_target_is_404_and_creates_nothing(api: httpx.Client) -> None:
    """Difference 3."""
    body = {"item_type": "finding", "ref": "dangling", "dedupe_key": "dangling",
            "links": [{"relationship": "affects", "target_ref": "not-yet"}]}
    refused = api.post(f"{BASE}/items", json=body)
    assert (refused.status_code, refused.json()["type"]) == (404, "not_found_error")
    assert _total(api, ref="dangling") == 0
    target = _create(api, ref="not-yet", item_type="asset")
    created = api.post(f"{BASE}/items", json=body)
    assert created.status_code == 201, created.text
    links = api.get(f"{BASE}/items/{created.json()['id']}/links").json()["links"]
    assert [(x["direction"], x["item"]["id"]) for x in links] == [("outgoing", target["id"])]


def test_ingest_refuses_a_batch_with_an_invalid_span_whole(api: httpx.Client) -> None:
    """Difference 4: the good span of a batch holding a bad one is not stored either."""
    session = str(uuid.uuid4())
    trace = Trace("example", session, "run-mixed")
    trace.report(ItemOutput(envelope("finding", {"severity": "high"}, dedupe_key="mixed-1", ref="mixed-1")))
    mixed = ExportTraceServiceRequest()
    mixed.ParseFromString(gzip.decompress(otlp_body(trace.export())))
    mixed.MergeFromString(bad_span_body("example"))
    refused = _ingest(api, mixed.SerializeToString(), {"Content-Type": "application/x-protobuf"})
    assert (refused.status_code, refused.json()["type"]) == (400, "invalid_request_error")
    assert api.post(f"{BASE}/items/rebuild", json={"session_id": session}).json() == {"processed": 0}
    not_export = _ingest(api, b'{"resourceSpans": "not-a-list"}', {"Content-Type": "application/json"})
    assert not_export.status_code == 400
    accepted = _ingest(api, otlp_body(trace.export()), OTLP_HEADERS)
    assert accepted.status_code == 200
    assert api.post(f"{BASE}/items/rebuild", json={"session_id": session}).json() == {"processed": 1}


def test_ingest_success_bodies(api: httpx.Client) -> None:
    """Difference 5: an empty protobuf ExportTraceServiceResponse, or `{}` for OTLP/JSON."""
    trace = Trace("example", str(uuid.uuid4()), "run-bodies")
    trace.report(ItemOutput(envelope("asset", {"asset_type": "host"}, dedupe_key="bodies-1")))
    protobuf = _ingest(api, otlp_body(trace.export()), OTLP_HEADERS)
    assert (protobuf.status_code, protobuf.content) == (200, b"")
    assert protobuf.headers["content-type"] == "application/x-protobuf"
    as_json = api.post(INGEST, json=encode_otlp_json(trace.export()), headers=SDK)
    assert (as_json.status_code, as_json.json()) == (200, {})
    assert as_json.headers["content-type"] == "application/json"


def test_heal_round_trip(api: httpx.Client) -> None:
    """An SDK export over OTLP/HTTP protobuf (gzip) heals an item whose POST never landed (difference 2:
    created_by "system"); a POSTed item keeps its row and disposition; a second rebuild changes nothing."""
    session = str(uuid.uuid4())
    posted = _create(api, dedupe_key="rt-posted", ref="rt-posted", session_id=session, source="runtime",
                     title="v1", data={"severity": "low"})
    api.patch(f"{BASE}/items/{posted['id']}", json={"status": "triaged", "notes": "mine"}).raise_for_status()
    project_uuid = next(p.id for p in PROJECTS if p.slug == "example")
    trace = Trace(project_uuid.upper(), session, "rt-run")  # D13: the SDK writes the project's UUID
    trace.report(ItemOutput(envelope("finding", {"severity": "high", "title": "healed"}, dedupe_key="rt-healed",
                                     ref="rt-healed", title="healed", status="open", notes="agent says")),
                 ItemOutput(envelope("finding", {"severity": "critical"}, dedupe_key="rt-posted", ref="rt-posted",
                                     title="v2")))
    trace.report(ItemOutput(Offloaded()), ItemOutput(envelope("note", {}, ref="rt-nokey"), value_key="value_"))
    assert _ingest(api, otlp_body(trace.export()), OTLP_HEADERS).status_code == 200

    assert api.post(f"{BASE}/items/rebuild", json={"run_ids": ["rt-run"]}).json() == {"processed": 3}
    items = {i["ref"]: i for i in api.get(f"{BASE}/items", params={"session_id": session}).json()["items"]}
    healed, refreshed, keyless = items["rt-healed"], items["rt-posted"], items["rt-nokey"]
    assert (healed["source"], healed["created_by"], healed["data"]) == ("extracted", "system",
                                                                       {"severity": "high", "title": "healed"})
    assert {k: healed["disposition"][k] for k in ("status", "notes")} == {"status": "open", "notes": "agent says"}
    assert (refreshed["id"], refreshed["source"], refreshed["title"]) == (posted["id"], "runtime", "v2")
    assert refreshed["disposition"]["status"] == "triaged" and refreshed["disposition"]["notes"] == "mine"
    assert keyless["dedupe_key"].startswith(f"span:{trace.trace_id}:") and keyless["dedupe_key"].endswith(":1")
    events = api.get(f"{BASE}/items/{healed['id']}/events").json()["events"]
    assert [(e["event_type"], e["actor_type"]) for e in events] == [("created", "system")]

    again = api.post(f"{BASE}/items/rebuild", json={"session_id": session.upper(), "run_ids": ["rt-run"]})
    assert again.json() == {"processed": 3}
    after = {i["ref"]: i for i in api.get(f"{BASE}/items", params={"session_id": session}).json()["items"]}
    assert after == items


def test_rebuild_links_follow_the_span_and_spare_user_links(api: httpx.Client) -> None:
    """Reported links are added and removed with the span; a link a person made stays."""
    session = str(uuid.uuid4())
    _create(api, item_type="asset", ref="lk-web", dedupe_key="lk-web", session_id=session)
    db = _create(api, item_type="asset", ref="lk-db", dedupe_key="lk-db", session_id=session)

    def rebuild_with(links: list[dict[str, str]]) -> None:
        trace = Trace("example", session, f"lk-{uuid.uuid4()}")
        trace.report(ItemOutput(envelope("finding", {"severity": "high"}, dedupe_key="lk-f", ref="lk-f",
                                         links=links)))
        assert _ingest(api, otlp_body(trace.export()), OTLP_HEADERS).status_code == 200
        assert api.post(f"{BASE}/items/rebuild", json={"session_id": session}).status_code == 200

    def targets() -> set[str]:
        finding = api.get(f"{BASE}/items", params={"ref": "lk-f"}).json()["items"][0]
        return {x["item"]["ref"] for x in api.get(f"{BASE}/items/{finding['id']}/links").json()["links"]}

    rebuild_with([{"relationship": "affects", "target_ref": "lk-web"}])
    assert targets() == {"lk-web"}
    finding_id = api.get(f"{BASE}/items", params={"ref": "lk-f"}).json()["items"][0]["id"]
    user = api.post(f"{BASE}/items/{finding_id}/links", json={"relationship": "affects", "target_item_id": db["id"]})
    assert user.status_code == 201
    rebuild_with([])
    assert targets() == {"lk-db"}


def _check(url: str, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    report = tmp_path / f"report{len(extra)}.json"
    result = CliRunner().invoke(check, [
        "--base-url", url, "--token", "admin-token-0123456789", "--reader-token", "reader-token-0123456789",
        "--other-tenant-token", "acme-token-0123456789", "--level", "full", "--seed", "1", "--json", str(report),
        *extra])
    assert report.exists(), result.output + result.stderr
    data: dict[str, Any] = json.loads(report.read_text())
    return result.exit_code, data


def test_harness_check_passes_a_correct_implementation_and_strict_lists_its_differences(
        independent: str, tmp_path: Path) -> None:
    """The suite's verdict on an implementation written by other hands from the same documentation: it passes,
    and --strict fails it on exactly the decisions it departs from, each named."""
    code, report = _check(independent, tmp_path)
    failing = [g for g in report["groups"] if g["fails_run"]]
    assert code == 0 and not failing, failing
    code, strict = _check(independent, tmp_path, "--strict")
    assert code == 1
    differences = [g for g in strict["groups"] if g["fails_run"]]
    cited = {d for g in differences for d in re.findall(r"\bD\d+\b", g["source"])}
    declared = {departs.split()[0] for _, departs in DIFFERENCES}
    assert {g["authority"] for g in differences} == {"reference"}
    assert cited <= declared, f"differences not declared: {sorted(cited - declared)}"
    assert {"ORD006", "SPN010", "DAT002", "ING003"} <= {g["check"] for g in differences}
    assert {"D4", "D19", "D20", "D21"} <= cited
