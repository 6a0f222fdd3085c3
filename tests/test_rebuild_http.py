"""Rebuild over HTTP against a real chDB span store: heal, refresh, preserve, idempotent, no duplicates."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from envelope import assert_envelope
from server_fixtures import ADMIN, BASE, READER, WRITER, SpanServer, start_server

from harness.items.store import ItemStore
from harness.model import Span
from harness.server.config import Tenancy
from harness.spans.clickhouse import ClickHouseSpanStore, chdb_engine_client
from harness.spans.otlp import encode_otlp_json, encode_otlp_protobuf
from harness.spans.report import envelope, item_span
from harness.spans.source import SpanSource

INGEST = "/api/v1/org/example/otel/traces"
_counter = itertools.count(1)


class Session:
    """One agent session: builds item spans the way the SDK records them."""

    def __init__(self, project: str = "example") -> None:
        self.id = str(uuid.uuid4())
        self.run_id = str(uuid.uuid4())
        self.trace_id = uuid.uuid4().hex
        self.project = project

    def span(self, *envelopes: dict[str, Any], run_id: str | None = None, offloaded: tuple[int, ...] = ()) -> Span:
        n = next(_counter)
        span_id = next((e["span_id"] for e in envelopes if e.get("span_id")), f"{n:016x}")
        return item_span(
            envelopes, trace_id=self.trace_id, span_id=span_id, project=self.project, session_id=self.id,
            run_id=run_id or self.run_id, start_time_unix_nano=n * 1_000_000_000,
            end_time_unix_nano=n * 1_000_000_000 + 500, offloaded=offloaded,
        )

    def finding(self, ref: str, severity: str = "high", **extra: Any) -> dict[str, Any]:
        # As the SDK does, the envelope carries the ids of the span it rides on.
        fields: dict[str, Any] = {"item_type": "finding", "dedupe_key": uuid.uuid4().hex, "ref": ref,
                                  "title": f"Finding {ref}", "session_id": self.id, "trace_id": self.trace_id,
                                  "span_id": f"{next(_counter):016x}",
                                  "data": {"severity": severity, "description": f"about {ref}"}}
        fields.update(extra)
        return envelope(**fields)


def ingest(server: SpanServer, spans: list[Span]) -> None:
    body = gzip.compress(encode_otlp_protobuf(spans))
    r = server.client.post(INGEST, content=body, headers={**WRITER, "Content-Type": "application/x-protobuf",
                                                           "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text


def rebuild(server: SpanServer, **body: Any) -> int:
    r = server.client.post(f"{BASE}/items/rebuild", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    processed: int = r.json()["processed"]
    return processed


def post(server: SpanServer, env: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in env.items() if v is not None and k != "links"} | {"source": "runtime"}
    r = server.client.post(f"{BASE}/items", json=body, headers=WRITER)
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    return item


def items(server: SpanServer, session_id: str) -> list[dict[str, Any]]:
    r = server.client.get(f"{BASE}/items", params={"session_id": session_id, "limit": 200}, headers=READER)
    result: list[dict[str, Any]] = r.json()["items"]
    return sorted(result, key=lambda i: i["dedupe_key"])


def test_heal_items_whose_post_failed(span_server: SpanServer) -> None:
    s = Session()
    a, b = s.finding("sqli"), s.finding("xss", "medium")
    ingest(span_server, [s.span(a), s.span(b)])
    assert rebuild(span_server, session_id=s.id.upper()) == 2
    healed = items(span_server, s.id)
    assert [(i["dedupe_key"], i["source"], i["created_by"]) for i in healed] == sorted(
        [(a["dedupe_key"], "extracted", None), (b["dedupe_key"], "extracted", None)])
    assert {i["title"] for i in healed} == {"Finding sqli", "Finding xss"}
    events = span_server.client.get(f"{BASE}/items/{healed[0]['id']}/events", headers=READER).json()["events"]
    assert [(e["event_type"], e["actor_type"]) for e in events] == [("created", "system")]


def test_post_and_span_make_one_item_and_rebuild_is_idempotent(span_server: SpanServer) -> None:
    s = Session()
    a = s.finding("sqli")
    posted = post(span_server, a)
    ingest(span_server, [s.span(a)])
    assert rebuild(span_server, session_id=s.id) == 1
    assert rebuild(span_server, session_id=s.id) == 1
    after = items(span_server, s.id)
    assert len(after) == 1 and after[0]["id"] == posted["id"]
    events = span_server.client.get(f"{BASE}/items/{posted['id']}/events", headers=READER).json()["events"]
    assert after[0]["source"] == "runtime" and after[0]["updated_at"] == posted["updated_at"], events
    events = span_server.client.get(f"{BASE}/items/{posted['id']}/events", headers=READER).json()["events"]
    assert [e["event_type"] for e in events] == ["created"]  # nothing changed: no event (D10)


def test_disposition_survives_and_derived_data_follows_a_changed_span(span_server: SpanServer) -> None:
    s = Session()
    a = s.finding("idor", "medium")
    posted = post(span_server, a)
    ingest(span_server, [s.span(a)])
    triaged = span_server.client.patch(f"{BASE}/items/{posted['id']}",
                                       json={"status": "verified", "notes": "reproduced by hand"},
                                       headers=WRITER).json()
    # A later span re-reports the item: more severe, new title, and a status the human never set.
    later = {**a, "title": "IDOR on /orders (all tenants)", "data": {"severity": "critical"}, "status": "dismissed"}
    ingest(span_server, [s.span(later)])
    assert rebuild(span_server, session_id=s.id) == 1
    [item] = items(span_server, s.id)
    assert item["disposition"] == triaged["disposition"]
    assert item["title"] == "IDOR on /orders (all tenants)" and item["data"] == {"severity": "critical"}
    assert item["effective_status"] == "verified"
    assert item["updated_at"] > triaged["updated_at"]
    events = span_server.client.get(f"{BASE}/items/{posted['id']}/events", headers=READER).json()["events"]
    assert events[-1]["actor_type"] == "system"
    assert set(events[-1]["payload"]["changed"]) == {"data", "title"}


def test_healed_disposition_comes_from_the_envelope(span_server: SpanServer) -> None:
    s = Session()
    ingest(span_server, [s.span(s.finding("x", status="triaged", notes="agent says so"))])
    rebuild(span_server, session_id=s.id)
    [item] = items(span_server, s.id)
    assert (item["disposition"]["status"], item["disposition"]["notes"]) == ("triaged", "agent says so")


def test_ref_collisions_offloaded_values_and_filters(span_server: SpanServer) -> None:
    s = Session()
    holder = post(span_server, s.finding("api-gw"))
    claimant = s.finding("api-gw")
    other_run = str(uuid.uuid4())
    ingest(span_server, [
        s.span(claimant, s.finding("lost-to-s3"), offloaded=(1,)),
        s.span(s.finding("in-run-2"), run_id=other_run),
    ])
    assert rebuild(span_server, run_ids=[other_run]) == 1
    assert rebuild(span_server, session_id=s.id, run_ids=[s.run_id]) == 1  # offloaded value not counted (D6)
    assert rebuild(span_server, session_id=s.id) == 2
    by_key = {i["dedupe_key"]: i for i in items(span_server, s.id)}
    assert by_key[claimant["dedupe_key"]]["ref"] is None  # never takes over a held ref (D9)
    assert span_server.client.get(f"{BASE}/items/{holder['id']}", headers=READER).json()["ref"] == "api-gw"
    assert len(by_key) == 3


def test_spans_of_another_project_or_no_project_are_never_reconciled(span_server: SpanServer) -> None:
    mine, theirs, nobody = Session(), Session("other-project"), Session()
    nobody.project = None  # type: ignore[assignment]
    shared_session = mine.id
    theirs.id = nobody.id = shared_session
    ingest(span_server, [mine.span(mine.finding("a")), theirs.span(theirs.finding("b")),
                         nobody.span(nobody.finding("c"))])
    assert rebuild(span_server, session_id=shared_session) == 1


def test_reported_links_are_resolved(span_server: SpanServer) -> None:
    s = Session()
    asset = envelope(item_type="asset", dedupe_key=uuid.uuid4().hex, ref="web-1", title="web-1",
                     data={"asset_type": "host"})
    finding = s.finding("sqli", links=[{"target_ref": "web-1", "relationship": "affects"}])
    ingest(span_server, [s.span(finding), s.span(asset)])
    rebuild(span_server, session_id=s.id)
    by_ref = {i["ref"]: i for i in items(span_server, s.id)}
    links = span_server.client.get(f"{BASE}/items/{by_ref['sqli']['id']}/links", headers=READER).json()["links"]
    assert [(lk["item"]["ref"], lk["relationship"], lk["direction"]) for lk in links] == [
        ("web-1", "affects", "outgoing")]
    rebuild(span_server, session_id=s.id)
    again = span_server.client.get(f"{BASE}/items/{by_ref['sqli']['id']}/links", headers=READER).json()["links"]
    assert again == links


def test_patches_landing_during_rebuilds_are_never_lost(span_server: SpanServer) -> None:
    s = Session()
    envelopes = [s.finding(f"f{i}") for i in range(30)]
    ingest(span_server, [s.span(e) for e in envelopes])
    rebuild(span_server, session_id=s.id)
    ids = [i["id"] for i in items(span_server, s.id)]
    statuses = ["open", "triaged", "verified", "resolved", "dismissed"]
    last: dict[str, str] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def patcher(worker: int) -> None:
        with httpx.Client(base_url=span_server.url, timeout=60) as client:
            for n in range(40):
                item_id = ids[(worker * 7 + n) % len(ids)]
                status = statuses[(worker + n) % len(statuses)]
                with lock:  # the acknowledged order per item is the order of these calls
                    r = client.patch(f"{BASE}/items/{item_id}", json={"status": status}, headers=WRITER)
                    if r.status_code != 200:
                        errors.append(r.text)
                    last[item_id] = status

    def rebuilder() -> None:
        with httpx.Client(base_url=span_server.url, timeout=60) as client:
            for _ in range(15):
                r = client.post(f"{BASE}/items/rebuild", json={"session_id": s.id}, headers=ADMIN)
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=patcher, args=(w,)) for w in range(3)] + [
        threading.Thread(target=rebuilder) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = {i["id"]: i for i in items(span_server, s.id)}
    assert len(final) == 30
    for item_id, status in last.items():
        assert final[item_id]["disposition"]["status"] == status


def test_unreachable_span_store_is_502_and_changes_nothing(span_server: SpanServer) -> None:
    s = Session()
    post(span_server, s.finding("keep"))
    before = span_server.items_table()
    location = span_server.spans.location
    chdb_engine_client(location.path).command(f"DROP TABLE `{location.database}`.`{location.table}`")
    assert_envelope(span_server.client.post(f"{BASE}/items/rebuild", json={"session_id": s.id}, headers=ADMIN), 502)
    assert span_server.items_table() == before


def test_ingest_rejects_bad_payloads_and_stores_nothing(span_server: SpanServer) -> None:
    count = span_server.spans.count_spans()
    for content, ctype, encoding in (
        (b"\x0a\xff\xff", "application/x-protobuf", None),
        (b"not gzip", "application/x-protobuf", "gzip"),
        (b"{broken", "application/json", None),
    ):
        headers = {**WRITER, "Content-Type": ctype} | ({"Content-Encoding": encoding} if encoding else {})
        assert_envelope(span_server.client.post(INGEST, content=content, headers=headers), 400)
    assert_envelope(span_server.client.post(INGEST, content=b"", headers={**READER,
                                                                          "Content-Type": "application/json"}), 403)
    assert_envelope(span_server.client.post("/api/v1/org/acme/otel/traces", content=b"",
                                            headers={**WRITER, "Content-Type": "application/x-protobuf"}), 404)
    assert span_server.spans.count_spans() == count


def test_ingest_json_and_standard_path(span_server: SpanServer) -> None:
    s = Session()
    doc = encode_otlp_json([s.span(s.finding("json-1"))])
    r = span_server.client.post(INGEST, content=json.dumps(doc), headers={**WRITER,
                                                                         "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert rebuild(span_server, session_id=s.id) == 1
    # The standard OTLP/HTTP path: the organization is the credential's (D13).
    t = Session()
    standard = span_server.client.post("/v1/traces", content=encode_otlp_protobuf([t.span(t.finding("std-1"))]),
                                       headers={"X-API-Key": WRITER["Authorization"].split()[1],
                                                "Content-Type": "application/x-protobuf"})
    assert standard.status_code == 200, standard.text
    assert rebuild(span_server, session_id=t.id) == 1
    assert_envelope(span_server.client.post("/v1/traces", content=b"x", headers={**READER,
                                            "Content-Type": "application/x-protobuf"}), 403)
    assert_envelope(span_server.client.post("/v1/traces", content=b"x"), 401)


def silent_listener() -> tuple[socket.socket, int]:
    """A loopback socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port: int = listener.getsockname()[1]
    return listener, port


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("fault", ["closed-port", "never-answers"])
def test_span_store_faults_are_502_or_504_and_change_nothing(
    fault: str, tmp_path: Path, tenancy: Tenancy
) -> None:
    listener, port = silent_listener() if fault == "never-answers" else (None, closed_port())
    store = ClickHouseSpanStore(f"http://default:secret-pw@127.0.0.1:{port}/default", timeout_s=1.0)
    live, items_store = start_server(tmp_path / "items.db", tenancy, store)
    try:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            created = client.post(f"{BASE}/items", json={"item_type": "finding", "ref": "keep"}, headers=WRITER)
            assert created.status_code == 201
            before = items_store.query("SELECT * FROM items")
            r = client.post(f"{BASE}/items/rebuild", json={"session_id": str(uuid.uuid4())}, headers=ADMIN)
            body = assert_envelope(r, 504 if fault == "never-answers" else 502)
            assert "secret-pw" not in body["detail"]
            assert items_store.query("SELECT * FROM items") == before
    finally:
        live.stop()
        items_store.close()
        if listener is not None:
            listener.close()


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DERIVED = ("dedupe_key", "item_type", "title", "ref", "data", "session_id", "trace_id", "span_id", "source",
           "has_disposition", "disposition_status", "disposition_notes", "link_specs")


def rebuilt_table(source: SpanSource, db: Path) -> list[tuple[Any, ...]]:
    """Rebuild every fixture session through `source`; the rows, without ids and times."""
    from harness.experiment import ExperimentProject, run_experiment

    store = ItemStore(db)
    try:
        for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
            posts = folder / "posts.jsonl"
            run_experiment(store, source, ExperimentProject(), posts=posts if posts.exists() else None)
        return sorted(tuple(row[c] for c in DERIVED) for row in store.query("SELECT * FROM items"))
    finally:
        store.close()


def test_files_chdb_and_clickhouse_server_rebuild_alike(tmp_path: Path, chdb_store: ClickHouseSpanStore) -> None:
    from harness.spans.files import FileSpanSource, iter_spans

    expected = rebuilt_table(FileSpanSource([FIXTURES]), tmp_path / "files.db")
    assert len(expected) > 20
    chdb_store.insert_spans(iter_spans([FIXTURES]))
    assert rebuilt_table(chdb_store, tmp_path / "chdb.db") == expected


@pytest.mark.skipif(not os.environ.get("HARNESS_CLICKHOUSE_URL"),
                    reason="set HARNESS_CLICKHOUSE_URL to a ClickHouse server to run")
def test_clickhouse_server_rebuilds_like_files(tmp_path: Path) -> None:
    from harness.spans.files import FileSpanSource, iter_spans

    expected = rebuilt_table(FileSpanSource([FIXTURES]), tmp_path / "files.db")
    store = ClickHouseSpanStore(os.environ["HARNESS_CLICKHOUSE_URL"], table=f"otel_traces_{uuid.uuid4().hex[:8]}")
    store.ensure_schema()
    store.insert_spans(iter_spans([FIXTURES]))
    assert rebuilt_table(store, tmp_path / "server.db") == expected
