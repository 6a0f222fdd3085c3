"""The ClickHouse span store against a real engine (chDB in-process; a server when one is configured)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.model import DecodeStats, Span, SpanEvent, SpanItem
from harness.spans.clickhouse import (
    ClickHouseSpanStore,
    chdb_engine_client,
    dsn_for_data_dir,
    parse_dsn,
)
from harness.spans.clickhouse_schema import TYPES_KEY
from harness.spans.envelopes import items_of_span
from harness.spans.errors import SpanStoreError, SpanStoreTimeout, SpanStoreUnavailable
from harness.spans.files import FileSpanSource, iter_spans
from harness.spans.otlp import decode_otlp_json
from harness.spans.source import SpanQuery
from harness.spans.synthetic import generate

REFERENCE = Path("/work/shared/reference/report_item_span.otlp.json")
SERVER_URL = os.environ.get("HARNESS_CLICKHOUSE_URL")
NO_SERVER = "set HARNESS_CLICKHOUSE_URL to a ClickHouse server to run"
PROJECT_UUID = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
SESSION = "3f1c2a9e-7b4d-4e8a-9c61-2d5f0b7a1e34"
EVIL = "'; DROP TABLE canary --\\' \" `x` {session_id:String} \\\\' OR 1=1 --"

COLLECTOR_COLUMNS = [
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
    "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
]  # fmt: skip


def reference_spans() -> list[Span]:
    return decode_otlp_json(json.loads(REFERENCE.read_text()))


def by_id(spans: list[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: (s.trace_id, s.span_id))


def items_key(items: list[SpanItem]) -> list[SpanItem]:
    return sorted(items, key=lambda i: (i.order, i.envelope.dedupe_key))


def decode_all(spans: list[Span], query: SpanQuery) -> tuple[list[SpanItem], DecodeStats]:
    stats = DecodeStats()
    items = [item for span in spans if query.matches(span) for item in items_of_span(span, stats)]
    return items, stats


@pytest.fixture(params=["chdb", pytest.param("server", marks=pytest.mark.skipif(not SERVER_URL, reason=NO_SERVER))])
def store(request: pytest.FixtureRequest, chdb_store: ClickHouseSpanStore) -> Iterator[ClickHouseSpanStore]:
    """The chDB store, and the same tests against `HARNESS_CLICKHOUSE_URL` when it is set."""
    if request.param == "chdb":
        yield chdb_store
        return
    assert SERVER_URL is not None
    database = f"harness_test_{uuid.uuid4().hex[:12]}"
    joiner = "&" if "?" in SERVER_URL else "?"
    server = ClickHouseSpanStore(f"{SERVER_URL}{joiner}database={database}", timeout_s=30.0)
    server.ensure_schema()
    try:
        yield server
    finally:
        server._command(f"DROP DATABASE IF EXISTS `{database}`")
        server.close()


# --------------------------------------------------------------------------- synthetic spans


def make_span(
    n: int,
    *,
    project: str = "example",
    session: str = SESSION,
    run: str = "run-a",
    org: str | None = None,
    outputs: str | None = None,
) -> Span:
    """A report_item-like span carrying one item whose dedupe_key is derived from `n`."""
    trace_id = f"{n:032x}"
    span_id = f"{n + 1:016x}"
    digest = f"{n:016x}"
    envelope: dict[str, Any] = {
        "item_type": "finding", "dedupe_key": f"dk{n:030d}", "ref": f"ref-{n}", "title": f"finding {n}",
        "status": None, "notes": None, "schema_ref": "finding@1", "session_id": None, "trace_id": None,
        "span_id": None, "capability": None, "capability_version": None,
        "data": {"title": f"finding {n}", "severity": "low"}, "links": [],
    }  # fmt: skip
    resource: dict[str, Any] = {"service.name": "unknown_service", "process.pid": 4242}
    if org is not None:
        resource["harness.org"] = org
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=None,
        name="tool:report_item",
        kind="INTERNAL",
        start_time_unix_nano=1_767_268_800_000_000_000 + n * 1_000_000,
        end_time_unix_nano=1_767_268_800_000_000_000 + n * 1_000_000 + 777,
        attributes={
            "dreadnode.project": project,
            "dreadnode.session.id": session,
            "dreadnode.run.id": run,
            "dreadnode.outputs": outputs
            if outputs is not None
            else json.dumps([{"name": "item", "label": "x", "hash": digest, "attributes": None}]),
            "dreadnode.objects": json.dumps(
                {digest: {"hash": digest, "schema_hash": "0", "value": envelope, "type": "val"}}
            ),
            "dreadnode.tool.stopped": False,
        },
        resource_attributes=resource,
        scope_name="dreadnode",
        scope_version="2.0.52",
    )


# --------------------------------------------------------------------------- schema


def test_ensure_schema_is_idempotent_and_keeps_the_collector_layout(store: ClickHouseSpanStore) -> None:
    store.ensure_schema()
    store.ensure_schema()
    assert store.count_spans() == 0
    columns = store.scalar(
        "SELECT groupArray(name) FROM (SELECT name FROM system.columns"
        " WHERE database = {db:String} AND table = {t:String} ORDER BY position)",
        {"db": store.location.database, "t": store.location.table},
    )
    assert columns == COLLECTOR_COLUMNS
    indexes = store.scalar(
        "SELECT groupArray(name) FROM system.data_skipping_indices WHERE database = {db:String} AND table = {t:String}",
        {"db": store.location.database, "t": store.location.table},
    )
    assert {"idx_dn_session", "idx_dn_run", "idx_dn_project", "idx_span_attr_value"} <= set(indexes)


def test_existing_rows_survive_ensure_schema(store: ClickHouseSpanStore) -> None:
    store.insert_spans(reference_spans())
    store.ensure_schema()
    assert store.count_spans() == 2


# --------------------------------------------------------------------------- round trips


def test_reference_span_round_trip(store: ClickHouseSpanStore) -> None:
    spans = reference_spans()
    assert store.insert_spans(spans) == 2
    query = SpanQuery(project_keys=frozenset({PROJECT_UUID}))
    assert by_id(list(store.query_spans(query))) == by_id(spans)

    stats = DecodeStats()
    items = list(store.item_spans(query, stats))
    expected, expected_stats = decode_all(spans, query)
    assert items == expected
    assert len(items) == 1 and items[0].envelope.dedupe_key == "8e2f6b1c4d3a49f0b7c5e1d2a3f4b6c8"
    assert stats == expected_stats  # spans=2: the agent span is counted, though never read


def test_attribute_types_events_and_status_round_trip(store: ClickHouseSpanStore) -> None:
    attributes: dict[str, Any] = {
        "s": "text", "empty": "", "looks_like_int": "4242", "looks_like_bool": "false",
        "looks_like_json": '["a"]', "b": True, "f": False, "i": -(2**63), "d": 0.1, "big": 1e300,
        "none": None, "arr": ["a", 1, 2.5, True, None, ["nested"]], "kv": {"k": {"deep": [1]}},
        "unicode": "ümlaut ✓ \u0000 end", TYPES_KEY: "forged sidecar is dropped",
    }  # fmt: skip
    span = Span(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_span_id="ef" * 8,
        name="agent:x",
        kind="SERVER",
        start_time_unix_nano=1_767_268_800_123_456_789,
        end_time_unix_nano=1_767_268_801_987_654_321,
        attributes={**attributes, "dreadnode.project": "example"},
        resource_attributes={"service.name": "svc", "process.pid": 7, "tags": ["x"]},
        scope_name="scope",
        scope_version="1",
        status_code="ERROR",
        status_message="boom",
        events=(
            SpanEvent("e1", 1_767_268_800_500_000_001, {"n": 1, "ok": True, "msg": "m"}),
            SpanEvent("e2", 1_767_268_800_600_000_002, {}),
        ),
    )
    store.insert_spans([span])
    (back,) = store.query_spans(SpanQuery(project_keys=frozenset({"example"})))
    expected_attributes = {k: v for k, v in span.attributes.items() if k != TYPES_KEY}
    assert back == replace(span, attributes=expected_attributes)


@pytest.mark.parametrize("kind", ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER", "UNSPECIFIED"])
def test_every_span_kind_round_trips(chdb_store: ClickHouseSpanStore, kind: str) -> None:
    span = replace(make_span(1), kind=kind, status_code="OK")
    chdb_store.insert_spans([span])
    assert list(chdb_store.query_spans(SpanQuery(project_keys=frozenset({"example"})))) == [span]


def test_rows_written_by_the_collector_read_back_as_strings(store: ClickHouseSpanStore) -> None:
    """A collector row has no type sidecar and the older enum spellings: strings come back."""
    span = make_span(5)
    attributes = {k: (json.dumps(v) if not isinstance(v, str) else v) for k, v in span.attributes.items()}
    attributes["dreadnode.tool.stopped"] = "false"
    store._command(
        f"INSERT INTO `{store.location.database}`.`{store.location.table}`"
        " (Timestamp, TraceId, SpanId, SpanName, SpanKind, SpanAttributes, Duration, StatusCode)"
        " SELECT fromUnixTimestamp64Nano({ts:Int64}), {trace:String}, {span:String}, {name:String},"
        " 'SPAN_KIND_INTERNAL',"
        " mapFromArrays({keys:Array(String)}, {values:Array(String)}), 5, 'STATUS_CODE_ERROR'",
        {"ts": span.start_time_unix_nano, "trace": span.trace_id, "span": span.span_id, "name": span.name,
         "keys": list(attributes), "values": list(attributes.values())},
    )  # fmt: skip
    (back,) = store.query_spans(SpanQuery(project_keys=frozenset({"example"})))
    assert back.attributes == attributes
    assert (back.kind, back.status_code, back.end_time_unix_nano) == (
        "INTERNAL",
        "ERROR",
        span.start_time_unix_nano + 5,
    )
    assert len(list(store.item_spans(SpanQuery(project_keys=frozenset({"example"})), DecodeStats()))) == 1


def test_insert_in_batches(chdb_store: ClickHouseSpanStore) -> None:
    spans = [make_span(n) for n in range(10)]
    assert chdb_store.insert_spans(iter(spans), batch_size=3) == 10
    assert chdb_store.count_spans() == 10
    assert chdb_store.insert_spans([]) == 0
    with pytest.raises(ValueError):
        chdb_store.insert_spans(spans, batch_size=0)


def test_org_is_recorded_on_insert(chdb_store: ClickHouseSpanStore) -> None:
    chdb_store.insert_spans([make_span(1)], org="acme")
    (back,) = chdb_store.query_spans(SpanQuery(project_keys=frozenset({"example"})))
    assert back.resource_attributes["harness.org"] == "acme"


# --------------------------------------------------------------------------- filters


UPPER_SESSION = "AAAAAAAA-1111-4111-8111-AAAAAAAAAAAA"


def population() -> list[Span]:
    """Spans over two projects (slug and UUID, some upper-case), three sessions, runs, orgs."""
    sessions = [SESSION, "0b6f3d2e-8a41-4c5e-9f7a-3e2d1c0b9a87", UPPER_SESSION]
    projects = ["example", PROJECT_UUID, PROJECT_UUID.upper(), "Example", "other"]
    runs = ["run-a", "run-b", "c7a1d2e38b5f4a6b8c7d9e0f1a2b3c4d", "C7A1D2E3-4B5F-4A6B-8C7D-9E0F1A2B3C4D"]
    orgs = [None, "acme", "globex"]
    spans = []
    for n in range(240):
        spans.append(
            make_span(
                n,
                project=projects[n % len(projects)],
                session=sessions[(n // 5) % len(sessions)],
                run=runs[(n // 3) % len(runs)],
                org=orgs[(n // 7) % len(orgs)],
                outputs="[]" if n % 11 == 0 else None,
            )
        )
    return spans


QUERIES = [
    SpanQuery(project_keys=frozenset({"example"})),
    SpanQuery(project_keys=frozenset({"Example"})),
    SpanQuery(project_keys=frozenset({PROJECT_UUID})),
    SpanQuery(project_keys=frozenset({"example", PROJECT_UUID})),
    SpanQuery(project_keys=frozenset({"example", PROJECT_UUID}), session_id=SESSION),
    SpanQuery(project_keys=frozenset({"example", PROJECT_UUID}), session_id=UPPER_SESSION.lower()),
    SpanQuery(project_keys=frozenset({"example", PROJECT_UUID}), run_ids=("run-a",)),
    SpanQuery(project_keys=frozenset({"example", PROJECT_UUID}), run_ids=("RUN-A", "run-b")),
    SpanQuery(project_keys=frozenset({PROJECT_UUID}), run_ids=("c7a1d2e3-4b5f-4a6b-8c7d-9e0f1a2b3c4d",)),
    SpanQuery(project_keys=frozenset({PROJECT_UUID}), run_ids=("C7A1D2E38B5F4A6B8C7D9E0F1A2B3C4D",)),
    SpanQuery(project_keys=frozenset({"example", PROJECT_UUID}), session_id=SESSION, run_ids=("run-b",)),
    SpanQuery(project_keys=frozenset({"example", PROJECT_UUID}), org="acme"),
    SpanQuery(project_keys=frozenset({"example", PROJECT_UUID}), org="acme", session_id=SESSION),
    SpanQuery(project_keys=frozenset({"other"}), org="nobody"),
    SpanQuery(project_keys=frozenset({"missing"})),
    SpanQuery(project_keys=frozenset(), session_id=SESSION),
]


def test_filters_select_exactly_what_span_query_matches(store: ClickHouseSpanStore) -> None:
    spans = population()
    store.insert_spans(spans, batch_size=50)
    for query in QUERIES:
        expected = [s for s in spans if query.matches(s)]
        assert by_id(list(store.query_spans(query))) == by_id(expected), query
        assert store.count_spans(query) == len(expected), query
        stats = DecodeStats()
        items = list(store.item_spans(query, stats))
        expected_items, expected_stats = decode_all(spans, query)
        assert items_key(items) == items_key(expected_items), query
        assert stats == expected_stats, query
    assert any(store.count_spans(q) for q in QUERIES)


def test_item_spans_reads_only_item_candidates(chdb_store: ClickHouseSpanStore) -> None:
    with_item = make_span(1)
    without = replace(make_span(2), attributes={**make_span(2).attributes, "dreadnode.outputs": "[]"})
    escaped = make_span(3, outputs='[{"name":"\\u0069tem","label":"x","hash":"0000000000000003"}]')
    chdb_store.insert_spans([with_item, without, escaped])
    query = SpanQuery(project_keys=frozenset({"example"}))
    candidates = list(chdb_store.query_spans(query, items_only=True))
    assert by_id(candidates) == by_id([with_item, escaped])
    stats = DecodeStats()
    assert len(list(chdb_store.item_spans(query, stats))) == 2
    assert stats.spans == 3


# --------------------------------------------------------------------------- parameter binding


def test_hostile_values_are_bound_as_data(store: ClickHouseSpanStore) -> None:
    database = store.location.database
    store._command(f"CREATE TABLE IF NOT EXISTS `{database}`.canary (x UInt8) ENGINE = MergeTree ORDER BY x")
    store._command(f"INSERT INTO `{database}`.canary SELECT 1")
    spans = [make_span(n) for n in range(3)] + [make_span(9, session=EVIL, run=EVIL, project=EVIL, org=EVIL)]
    store.insert_spans(spans)

    harmless = SpanQuery(
        project_keys=frozenset({"example"}), session_id="no-such-session", run_ids=("no-run",), org="o"
    )
    hostile = SpanQuery(
        project_keys=frozenset({"example", EVIL}), session_id=EVIL + "x", run_ids=(EVIL + "x",), org=EVIL
    )
    assert list(store.query_spans(hostile)) == list(store.query_spans(harmless)) == []
    assert list(store.item_spans(hostile, DecodeStats())) == list(store.item_spans(harmless, DecodeStats())) == []
    assert store.count_spans(hostile) == store.count_spans(harmless) == 0

    exact = SpanQuery(project_keys=frozenset({EVIL}), session_id=EVIL, run_ids=(EVIL,), org=EVIL)
    assert [s.span_id for s in store.query_spans(exact)] == [spans[-1].span_id]
    assert store.scalar(f"SELECT count() FROM `{database}`.canary") == 1
    assert store.count_spans() == 4


# --------------------------------------------------------------------------- failures


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_server_is_unavailable_without_leaking_credentials() -> None:
    store = ClickHouseSpanStore(f"http://admin:s3cret-pw@127.0.0.1:{closed_port()}/db", timeout_s=2)
    for action in (
        store.count_spans,
        store.ensure_schema,
        lambda: list(store.query_spans(SpanQuery(frozenset({"p"})))),
    ):
        with pytest.raises(SpanStoreUnavailable) as info:
            action()
        assert "s3cret-pw" not in str(info.value) and "admin" not in str(info.value)
        assert "127.0.0.1" in str(info.value)


def test_unknown_host_is_unavailable() -> None:
    store = ClickHouseSpanStore("http://u:pw@no-such-host.invalid:8123/db", timeout_s=2)
    with pytest.raises(SpanStoreUnavailable):
        store.count_spans()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_silent_server_times_out(silent_server: int) -> None:
    store = ClickHouseSpanStore(f"http://u:hunter2-secret@127.0.0.1:{silent_server}/db", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(SpanStoreTimeout) as info:
        list(store.item_spans(SpanQuery(frozenset({"p"}), session_id=SESSION), DecodeStats()))
    assert time.monotonic() - started < 10
    assert "hunter2-secret" not in str(info.value)


def test_slow_chdb_query_times_out(chdb_dsn: str) -> None:
    store = ClickHouseSpanStore(chdb_dsn, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(SpanStoreTimeout):
        store.scalar("SELECT sum(number) FROM numbers({n:UInt64})", {"n": 10**12})
    assert time.monotonic() - started < 10


def test_dropped_table_is_unavailable(store: ClickHouseSpanStore) -> None:
    store.insert_spans(reference_spans())
    store._command(f"DROP TABLE `{store.location.database}`.`{store.location.table}`")
    query = SpanQuery(project_keys=frozenset({PROJECT_UUID}), session_id=SESSION)
    with pytest.raises(SpanStoreUnavailable, match="does not exist"):
        list(store.item_spans(query, DecodeStats()))
    with pytest.raises(SpanStoreUnavailable):
        store.count_spans()
    with pytest.raises(SpanStoreUnavailable):
        store.insert_spans(reference_spans())
    store.ensure_schema()
    assert store.count_spans() == 0


def test_missing_database_is_unavailable(chdb_path: Path) -> None:
    store = ClickHouseSpanStore(f"chdb://{chdb_path}?database=never_created_{uuid.uuid4().hex}")
    with pytest.raises(SpanStoreUnavailable, match="does not exist"):
        store.count_spans()


def test_one_chdb_engine_per_process(chdb_store: ClickHouseSpanStore, tmp_path: Path) -> None:
    other = ClickHouseSpanStore(f"chdb://{tmp_path / 'elsewhere'}")
    with pytest.raises(SpanStoreError, match="one engine per process"):
        other.count_spans()
    with pytest.raises(SpanStoreError, match="one engine per process"):
        list(other.query_spans(SpanQuery(frozenset({"p"}))))
    assert chdb_store.count_spans() == 0  # the engine in use is untouched


def test_stores_on_one_path_share_the_engine(chdb_store: ClickHouseSpanStore, chdb_path: Path) -> None:
    twin = ClickHouseSpanStore(f"chdb://{chdb_path}/?database={chdb_store.location.database}")
    chdb_store.insert_spans(reference_spans())
    assert twin.count_spans() == 2
    assert chdb_engine_client(str(chdb_path)) is chdb_engine_client(str(chdb_path))


def test_reads_interleave_with_other_calls(chdb_store: ClickHouseSpanStore) -> None:
    """A half-read stream neither blocks nor breaks other calls on the same store."""
    chdb_store.insert_spans([make_span(n) for n in range(50)])
    query = SpanQuery(project_keys=frozenset({"example"}))
    stream = chdb_store.query_spans(query)
    first = next(stream)
    assert chdb_store.count_spans() == 50
    chdb_store.insert_spans([make_span(99)])
    assert len([first, *stream]) == 50


# --------------------------------------------------------------------------- DSNs


def test_dsn_forms(tmp_path: Path) -> None:
    loc = parse_dsn("http://user:p%40ss@ch.example:9123/spans_db")
    assert (loc.backend, loc.host, loc.port, loc.username, loc.password, loc.database, loc.table) == (
        "http", "ch.example", 9123, "user", "p@ss", "spans_db", "otel_traces",
    )  # fmt: skip
    assert "p@ss" not in loc.display + repr(loc) and "user" not in loc.display
    assert parse_dsn("https://h").port == 8443 and parse_dsn("https://h").secure
    assert parse_dsn("http://h/db?table=my_traces").table == "my_traces"
    assert parse_dsn("http://h/db", table="t2").table == "t2"
    chdb = parse_dsn("chdb:///var/lib/x/?database=d1")
    assert (chdb.backend, chdb.path, chdb.database) == ("chdb", "/var/lib/x", "d1")
    assert parse_dsn("chdb:///var/lib/x").database == "default"
    assert parse_dsn("chdb://memory/d2").path == ":memory:" and parse_dsn("chdb://memory/d2").database == "d2"

    weird = tmp_path / "a dir with spaces?#"
    assert parse_dsn(dsn_for_data_dir(weird)).path == str((weird / "spans.chdb").resolve())

    for bad in ("http://h/bad-name", "http://h/db?table=x;y", "chdb://relative/path", "chdb:rel", "ftp://h",
                "http://h/db?nope=1", "http://h/db?database=1abc"):  # fmt: skip
        with pytest.raises(ValueError):
            parse_dsn(bad)


# --------------------------------------------------------------------------- synthetic sessions


def test_synthetic_sessions_read_back_like_their_files(store: ClickHouseSpanStore, tmp_path: Path) -> None:
    summary = generate(tmp_path, sessions=3, runs_per_session=2, items_per_run=6, failed_post_fraction=0, seed=11)
    assert store.insert_spans(iter_spans([tmp_path]), batch_size=7) == summary.spans
    files = FileSpanSource([tmp_path])
    for session_id in [None, *summary.session_ids]:
        query = SpanQuery(project_keys=frozenset({"example"}), session_id=session_id)
        file_stats, store_stats = DecodeStats(), DecodeStats()
        assert items_key(list(store.item_spans(query, store_stats))) == items_key(
            list(files.item_spans(query, file_stats))
        )
        assert store_stats == file_stats
