"""Real faults of the span store: each answers 502 or 504 in the envelope, and the
items, links and events tables are identical, row for row, before and after.

Already covered in tests/test_rebuild_http.py (and counted in RELIABILITY.md): a ClickHouse URL on a
closed port (502), a loopback socket that accepts and never answers (504), a chDB store whose span
table was dropped (502). Here: servers that answer wrongly (garbage, a reset, a ClickHouse exception,
a truncated body, a proxy's HTML page), a chDB query that overruns `--rebuild-timeout` part way
through a rebuild that has already written a batch, a span table of an unexpected layout, and an
items database whose write lock another process holds past the busy timeout.
"""

from __future__ import annotations

import socket
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from envelope import assert_envelope
from server_fixtures import ADMIN, BASE, WRITER, start_server
from test_reliability_support import snapshot

from harness.model import Span
from harness.server.config import Tenancy
from harness.spans.clickhouse import ClickHouseSpanStore, chdb_engine_client
from harness.spans.report import envelope, item_span

INGEST = "/api/v1/org/example/otel/traces"
PASSWORD = "fault-secret-pw-0123"


# --------------------------------------------------------------------------- misbehaving ClickHouse servers


def _answer(kind: str, conn: socket.socket) -> None:
    """What a broken ClickHouse endpoint does with a request it has read."""
    if kind == "garbage":
        conn.sendall(b"\x00\x01\x02 this is not HTTP at all\r\n\r\n")
    elif kind == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close -> RST
    elif kind == "clickhouse-exception":
        body = b"Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)"
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nX-ClickHouse-Exception-Code: 241\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    elif kind == "truncated-body":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n24.3")
    elif kind == "proxy-html":
        body = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
    conn.close()


class BrokenEndpoint:
    """A real loopback socket that reads each request and answers it the way `kind` says."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.requests = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                conn.recv(65536)
                self.requests += 1
                _answer(self.kind, conn)
            except OSError:
                conn.close()

    def close(self) -> None:
        self.listener.close()


def seed_items(client: httpx.Client) -> None:
    """Rows in all three tables: two items, a disposition, a link, their events."""
    a = client.post(f"{BASE}/items", json={"item_type": "finding", "ref": "keep-a", "title": "A",
                                           "data": {"severity": "high"}}, headers=WRITER).json()
    client.post(f"{BASE}/items", json={"item_type": "asset", "ref": "keep-b"}, headers=WRITER)
    assert client.patch(f"{BASE}/items/{a['id']}", json={"status": "verified", "notes": "by hand"},
                        headers=WRITER).status_code == 200
    assert client.post(f"{BASE}/items/{a['id']}/links", json={"relationship": "affects", "target_ref": "keep-b"},
                       headers=WRITER).status_code == 201


@pytest.mark.parametrize("kind", ["garbage", "reset", "clickhouse-exception", "truncated-body", "proxy-html"])
def test_a_clickhouse_server_answering_wrongly_is_502_and_changes_nothing(
    kind: str, tmp_path: Path, tenancy: Tenancy
) -> None:
    endpoint = BrokenEndpoint(kind)
    store = ClickHouseSpanStore(f"http://default:{PASSWORD}@127.0.0.1:{endpoint.port}/default", timeout_s=3.0)
    live, items = start_server(tmp_path / "items.db", tenancy, store)
    try:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            seed_items(client)
            before = snapshot(tmp_path / "items.db")
            rebuilt = client.post(f"{BASE}/items/rebuild", json={"session_id": str(uuid.uuid4())}, headers=ADMIN)
            body = assert_envelope(rebuilt, 502)
            ingested = client.post(INGEST, content=b"", headers={**WRITER, "Content-Type": "application/x-protobuf"})
            if ingested.status_code != 200:  # an empty export may never reach the store; a failing one is 502
                assert_envelope(ingested, 502)
            assert PASSWORD not in rebuilt.text + ingested.text
            assert "Traceback" not in body["detail"]
            assert snapshot(tmp_path / "items.db") == before
            assert endpoint.requests >= 1  # the fault was met, not skipped
    finally:
        live.stop()
        items.close()
        endpoint.close()
        store.close()


# --------------------------------------------------------------------------- a query over the timeout


def item_spans(session_id: str, count: int) -> Iterator[Span]:
    trace = uuid.uuid4().hex
    for n in range(count):
        env = envelope(item_type="finding", dedupe_key=f"{n:08d}{uuid.uuid4().hex[:24]}", title=f"finding {n}",
                       data={"severity": "medium", "description": "x" * 200})
        yield item_span([env], trace_id=trace, span_id=f"{n + 1:016x}", project="example", session_id=session_id,
                        run_id="run-1", start_time_unix_nano=(n + 1) * 1_000, end_time_unix_nano=(n + 1) * 1_000 + 5)


SLOW_FILTER = "(SELECT count() FROM numbers(20000000000) WHERE number % 7 = 3) > 0"
"""Seconds of real work in the engine before the first row: the query, not the client, is slow."""


def test_a_chdb_query_over_the_timeout_is_504_and_changes_nothing(
    tmp_path: Path, tenancy: Tenancy, chdb_store: ClickHouseSpanStore, chdb_dsn: str
) -> None:
    """`--rebuild-timeout 1` against a span table made slow in the engine itself (a view with an
    expensive filter): the engine's max_execution_time stops the query; 504, nothing written."""
    session = str(uuid.uuid4())
    chdb_store.insert_spans(item_spans(session, 200))
    location = chdb_store.location
    engine = chdb_engine_client(location.path)
    table, real = f"`{location.database}`.`{location.table}`", f"`{location.database}`.`real_spans`"
    engine.command(f"RENAME TABLE {table} TO {real}")
    engine.command(f"CREATE VIEW {table} AS SELECT * FROM {real} WHERE {SLOW_FILTER}")
    slow = ClickHouseSpanStore(chdb_dsn, timeout_s=1.0)
    db = tmp_path / "items.db"
    live, items = start_server(db, tenancy, slow)
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            seed_items(client)
            before = snapshot(db)
            started = time.monotonic()
            r = client.post(f"{BASE}/items/rebuild", json={"session_id": session}, headers=ADMIN)
            elapsed = time.monotonic() - started
            body = assert_envelope(r, 504)
            assert "did not answer within 1s" in body["detail"]
            assert elapsed < 10, elapsed  # the engine stopped the query; nobody waited it out
            assert snapshot(db) == before
            # The store recovers: same data, the slow view gone, the rebuild answers.
            engine.command(f"DROP VIEW {table}")
            engine.command(f"RENAME TABLE {real} TO {table}")
            r = client.post(f"{BASE}/items/rebuild", json={"session_id": session}, headers=ADMIN)
            assert r.status_code == 200 and r.json() == {"processed": 200}, r.text
    finally:
        live.stop()
        items.close()
        slow.close()


@pytest.mark.long
def test_a_timeout_part_way_through_never_answers_200_with_part_of_the_items(
    tmp_path: Path, tenancy: Tenancy, chdb_store: ClickHouseSpanStore, chdb_dsn: str
) -> None:
    """12,000 item spans in many parts, `--rebuild-timeout 1`: the engine's limit strikes while the
    rebuild is writing its first batches. Every attempt is a 504 with nothing written, or a complete
    rebuild: never a 200 with part of the items."""
    session = str(uuid.uuid4())
    chdb_store.insert_spans(item_spans(session, 12_000), batch_size=500)  # many parts: many blocks to pull
    slow = ClickHouseSpanStore(chdb_dsn, timeout_s=1.0)
    outcomes: list[tuple[int, str]] = []
    for attempt in range(8):
        db = tmp_path / f"items-{attempt}.db"
        live, items = start_server(db, tenancy, slow)
        try:
            with httpx.Client(base_url=live.url, timeout=120) as client:
                seed_items(client)
                before = snapshot(db)
                r = client.post(f"{BASE}/items/rebuild", json={"session_id": session}, headers=ADMIN)
                outcomes.append((r.status_code, r.text[:80]))
                if r.status_code == 504:
                    assert snapshot(db) == before
        finally:
            live.stop()
            items.close()
    print(f"\nRELIABILITY timeout part-way outcomes={outcomes}")
    # A rebuild that beats the limit is complete; one that does not is a 504 that wrote nothing.
    assert all(status == 504 or text.startswith('{"processed": 12000}') for status, text in outcomes), outcomes
    assert any(status == 504 for status, _ in outcomes), outcomes


# --------------------------------------------------------------------------- a span table of another layout


def _wrong_layout(database: str, table: str) -> str:
    return (f"CREATE TABLE `{database}`.`{table}` (Timestamp DateTime64(9), TraceId String, SpanId String, "
            "ParentSpanId String, SpanName String, SpanKind String, ResourceAttributes Map(String, String), "
            "ScopeName String, ScopeVersion String, SpanAttributes Map(String, String), Duration String, "
            "StatusCode String, StatusMessage String, `Events.Timestamp` Array(DateTime64(9)), "
            "`Events.Name` Array(String), `Events.Attributes` Array(Map(String, String))) "
            "ENGINE = MergeTree ORDER BY tuple()")


def test_a_span_table_of_an_unexpected_layout_is_502(
    tmp_path: Path, tenancy: Tenancy, chdb_store: ClickHouseSpanStore
) -> None:
    location = chdb_store.location
    engine = chdb_engine_client(location.path)
    engine.command(f"DROP TABLE `{location.database}`.`{location.table}`")
    engine.command(_wrong_layout(location.database, location.table))
    session = str(uuid.uuid4())
    outputs = '[{"name":"item","hash":"h"}]'
    engine.command(
        f"INSERT INTO `{location.database}`.`{location.table}` (Timestamp, TraceId, SpanId, SpanAttributes, Duration) "
        f"VALUES (now64(9), 'ab', 'cd', map('dreadnode.project', 'example', 'dreadnode.session.id', '{session}', "
        f"'dreadnode.outputs', '{outputs}'), 'not-a-number')")
    live, items = start_server(tmp_path / "items.db", tenancy, chdb_store)
    try:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            seed_items(client)
            before = snapshot(tmp_path / "items.db")
            r = client.post(f"{BASE}/items/rebuild", json={"session_id": session}, headers=ADMIN)
            assert snapshot(tmp_path / "items.db") == before  # holds today: nothing is lost either way
            assert_envelope(r, 502)
    finally:
        live.stop()
        items.close()


# --------------------------------------------------------------------------- the items database is locked


def hold_write_lock(db: Path, seconds: float, held: threading.Event) -> None:
    """Another process's writer (a backup tool, a sqlite3 shell) holding the lock past the busy timeout."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    try:
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


@pytest.mark.long
def test_writes_waiting_past_the_busy_timeout_answer_409_or_429_never_500(
    tmp_path: Path, tenancy: Tenancy, chdb_store: ClickHouseSpanStore
) -> None:
    """The store waits 30 s (its busy timeout) for the write lock; then rebuild answers 409 and every
    other write 429, both with Retry-After; nothing changed. Reads are never blocked (WAL)."""
    db = tmp_path / "items.db"
    live, items = start_server(db, tenancy, chdb_store)
    try:
        with httpx.Client(base_url=live.url, timeout=120) as client:
            seed_items(client)
            item = client.get(f"{BASE}/items", params={"ref": "keep-a"}, headers=WRITER).json()["items"][0]
            before = snapshot(db)
            held = threading.Event()
            locker = threading.Thread(target=hold_write_lock, args=(db, 34.0, held))
            locker.start()
            held.wait(10)
            calls: dict[str, Callable[[], httpx.Response]] = {
                "patch": lambda: client.patch(f"{BASE}/items/{item['id']}", json={"status": "dismissed"},
                                              headers=WRITER),
                "create": lambda: client.post(f"{BASE}/items", json={"item_type": "finding", "ref": "new"},
                                              headers=WRITER),
                "rebuild": lambda: client.post(f"{BASE}/items/rebuild", json={"session_id": str(uuid.uuid4())},
                                               headers=ADMIN),
            }
            answers: dict[str, Any] = {}

            def call(name: str) -> None:
                answers[name] = calls[name]()

            workers = [threading.Thread(target=call, args=(name,)) for name in calls]
            for w in workers:
                w.start()
            read = client.get(f"{BASE}/items/{item['id']}", headers=WRITER)
            assert read.status_code == 200  # a reader is not blocked by the held write lock
            for w in workers:
                w.join()
            locker.join()
            assert_envelope(answers["rebuild"], 409)
            for name in ("patch", "create"):
                assert_envelope(answers[name], 429)
            for response in answers.values():
                assert int(response.headers["Retry-After"]) >= 1
            assert snapshot(db) == before
            again = client.patch(f"{BASE}/items/{item['id']}", json={"status": "dismissed"}, headers=WRITER)
            assert again.status_code == 200 and again.json()["disposition"]["status"] == "dismissed"
    finally:
        live.stop()
        items.close()

