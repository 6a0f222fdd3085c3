"""Hostile and malformed input (the generated requests are in tests/test_reliability_fuzz.py) is
answered 400 or 422 in the envelope, never 5xx, and stores nothing.

- bodies: not JSON, NaN/Infinity, numbers past range, unpaired surrogate escapes, NUL bytes, deep
  nesting, BOM, wrong Content-Type; over the documented 1 MiB limit, refused before being read whole
  (a huge Content-Length is refused at once, an endless chunked body after about 1 MiB);
- query and path: out-of-range and malformed values, NUL, invalid percent-encoding, injection;
- injection: SQL and ClickHouse metacharacters in every list filter, `q`, `session_id` and `run_ids`
  against SQLite and chDB: canary tables survive, results equal those a harmless value gets;
- OTLP ingest: truncated protobuf and gzip, nested-attribute bombs, a gzip bomb: 400, nothing stored;
- transport (a real `harness serve`): request heads over 64 KiB (huge headers, many headers, a huge
  URL) and bytes that are not HTTP: 400 in the envelope, memory bounded, the server keeps serving.
"""

from __future__ import annotations

import gzip
import json
import select
import socket
import sqlite3
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from envelope import assert_envelope
from server_fixtures import ADMIN, BASE, READER, WRITER, Running, SpanServer
from test_reliability_support import DEV_ADMIN, DEV_WRITER, ServeProcess

from harness.model import Span
from harness.spans.clickhouse import chdb_engine_client
from harness.spans.otlp import encode_otlp_json, encode_otlp_protobuf
from harness.spans.report import envelope, item_span

JSON = {"Content-Type": "application/json"}
INGEST = "/api/v1/org/example/otel/traces"
MiB = 1 << 20


# --------------------------------------------------------------------------- bodies

NOT_JSON_BODIES: dict[str, bytes] = {
    "nan": b'{"item_type": "finding", "data": {"n": NaN}}',
    "infinity": b'{"item_type": "finding", "data": {"n": -Infinity}}',
    "number-out-of-range": b'{"item_type": "finding", "data": {"n": 1e400}}',
    "integer-past-digit-limit": b'{"item_type": "finding", "data": {"n": ' + b"7" * 5000 + b"}}",
    "unpaired-surrogate-value": b'{"item_type": "finding", "title": "x\\ud800y"}',
    "unpaired-surrogate-key": b'{"item_type": "finding", "data": {"\\udfff": 1}}',
    "raw-nul-in-string": b'{"item_type": "fin\x00ding"}',
    "nul-after-json": b'{"item_type": "finding"}\x00',
    "invalid-utf8": b'{"item_type": "\xff\xfe"}',
    "overlong-utf8": b'{"item_type": "\xc0\xaf"}',
    "truncated-utf8": b'{"item_type": "\xe2\x82"}',
    "utf8-encoded-surrogate": b'{"item_type": "\xed\xa0\x80"}',
    "bom": b'\xef\xbb\xbf{"item_type": "finding"}',
    "deep-arrays": b'{"item_type": "finding", "data": {"x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}",
    "deep-objects": b'{"item_type": "finding", "data": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    "trailing-garbage": b'{"item_type": "finding"} {"item_type": "again"}',
}


def test_bodies_that_are_not_json_are_400_on_every_body_operation(server: Running) -> None:
    item = server.client.post(f"{BASE}/items", json={"item_type": "finding", "ref": "target"}, headers=WRITER).json()
    before = server.store.query("SELECT * FROM items ORDER BY id")
    for name, body in NOT_JSON_BODIES.items():
        for method, path in (("POST", "/items"), ("PATCH", f"/items/{item['id']}"), ("POST", "/items/bulk-update"),
                             ("POST", f"/items/{item['id']}/links"), ("POST", "/items/rebuild")):
            r = server.client.request(method, f"{BASE}{path}", content=body, headers={**ADMIN, **JSON})
            assert r.status_code == 400, (name, method, path, r.status_code, r.text[:200])
            assert_envelope(r, 400)
    assert server.store.query("SELECT * FROM items ORDER BY id") == before


WRONG_CONTENT_TYPES = (
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
    "application/x-protobuf", "application/merge-patch+json", "*/*", "", "application/json, text/plain",
)


def test_a_wrong_content_type_is_400_and_writes_nothing(server: Running) -> None:
    for content_type in WRONG_CONTENT_TYPES:
        headers = {**WRITER, "Content-Type": content_type}
        r = server.client.post(f"{BASE}/items", content=b'{"item_type": "finding"}', headers=headers)
        assert r.status_code == 400, (content_type, r.text)
        assert_envelope(r, 400)
    assert server.items_table() == []


def test_nul_escapes_are_data_and_round_trip(server: Running) -> None:
    """`\\u0000` is a valid JSON string escape: stored and returned exactly, in every field that takes text."""
    body = {"item_type": "fin\u0000ding", "title": "a\u0000b", "ref": "r\u0000", "data": {"k\u0000": "\u0000v"}}
    created = server.client.post(f"{BASE}/items", json=body, headers=WRITER)
    assert created.status_code == 201, created.text
    got = server.client.get(f"{BASE}/items/{created.json()['id']}", headers=READER).json()
    assert {k: got[k] for k in body} == body
    listed = server.client.get(f"{BASE}/items", params={"ref": "r\u0000", "q": "a\u0000b"}, headers=READER).json()
    assert [i["id"] for i in listed["items"]] == [got["id"]]


def test_rebuild_input_limits(server: Running) -> None:
    url = f"{BASE}/items/rebuild"
    for body in ({"run_ids": ["r"] * 1001}, {"run_ids": ["x" * 129]}, {"run_ids": [1]}, {"run_ids": "r"},
                 {"session_id": "' OR 1=1 --"}, {"session_id": 7}):
        assert_envelope(server.client.post(url, json=body, headers=ADMIN), 422)


# --------------------------------------------------------------------------- oversized bodies


def exchange(url: str, head: bytes, body_chunk: bytes = b"", body_cap: int = 0) -> tuple[int, bytes]:
    """Send `head`, then `body_chunk` again and again (up to `body_cap` bytes) until the server answers.

    Returns (body bytes sent when the answer came, the answer). A real socket, non-blocking, so a
    server that stops reading cannot stall the client.
    """
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(head)
    sock.setblocking(False)
    sent, pending, answer = 0, b"", b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            want_write = [sock] if body_chunk and (pending or sent < body_cap) else []
            readable, writable, _ = select.select([sock], want_write, [], 0.5)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                answer += data
                if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                    break
            elif writable:
                pending = pending or body_chunk
                try:
                    n = sock.send(pending)
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    continue
                sent += n
                pending = pending[n:]
    finally:
        sock.close()
    return sent, answer


def envelope_of(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_a_huge_declared_content_length_is_refused_at_once(server: Running) -> None:
    head = (f"POST {BASE}/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer writer-token-0123456789\r\n"
            f"Content-Type: application/json\r\nContent-Length: {10 * 1024**3}\r\n\r\n").encode()
    started = time.monotonic()
    sent, answer = exchange(server.url, head)
    status, body = envelope_of(answer)
    assert (status, body["code"], body["type"]) == (400, 400, "invalid_request_error")
    assert sent == 0 and time.monotonic() - started < 5
    assert server.items_table() == []


def test_an_endless_chunked_body_is_refused_after_the_limit_not_at_its_end(server: Running) -> None:
    head = (f"POST {BASE}/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer writer-token-0123456789\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    data = b"x" * 65536
    chunk = f"{len(data):x}\r\n".encode() + data + b"\r\n"
    sent, answer = exchange(server.url, head, chunk, body_cap=256 * MiB)
    status, body = envelope_of(answer)
    assert (status, body["type"]) == (400, "invalid_request_error") and "limit" in body["detail"]
    assert sent < 8 * MiB, sent  # answered after about 1 MiB (plus socket buffers), not after 256 MiB
    assert server.items_table() == []


# --------------------------------------------------------------------------- injection

PAYLOADS = (
    "' OR '1'='1",
    "'; DROP TABLE canary; --",
    '"; DROP TABLE items; --',
    "') OR 1=1 --",
    "x' UNION SELECT name FROM sqlite_master --",
    "\\' OR 1=1 --",
    "%",
    "_",
    "\\",
    "\\%_",
    "*/ OR /*",
    "{run_ids:Array(String)}",
    "{session_id:String}",
    "`canary`",
    "$$; DROP TABLE canary; $$",
    "1; SELECT sleep(3)",
    "' || (SELECT count() FROM system.tables) || '",
    "x') FORMAT JSON --",
    "line\nbreak\r\ttab",
    "emoji 🎯 ' \" `",
    "%00",
    "\\x27",
)
HARMLESS = "plain-harmless-value"
NUL = "nul\u0000byte"


def _search_text(title: str, data: dict[str, Any]) -> str:
    """What `q` is matched against (harness/items/rows.py), rebuilt here as the oracle."""
    return f"{title}\n{json.dumps(data, separators=(',', ':'), sort_keys=True, ensure_ascii=False)}".lower()


def test_injection_in_every_list_filter_and_q_is_data_for_sqlite(server: Running) -> None:
    conn = sqlite3.connect(server.db_path)
    conn.execute("CREATE TABLE canary (x TEXT)")
    conn.execute("INSERT INTO canary VALUES ('alive')")
    conn.commit()
    conn.close()
    created: dict[str, dict[str, Any]] = {}
    texts: dict[str, str] = {}
    for i, value in enumerate((HARMLESS, *PAYLOADS)):
        title, data = f"injection {i} {value}", {"category": value, "severity": "high"}
        body = {"item_type": value, "ref": value, "capability": value, "title": title, "data": data}
        r = server.client.post(f"{BASE}/items", json=body, headers=WRITER)
        assert r.status_code == 201, (value, r.text)
        created[value] = r.json()
        texts[r.json()["id"]] = _search_text(title, data)
    for value, item in created.items():
        for name in ("item_type", "ref", "category", "capability"):
            got = server.client.get(f"{BASE}/items", params={name: value, "limit": 200}, headers=READER)
            assert got.status_code == 200, got.text
            assert [i["id"] for i in got.json()["items"]] == [item["id"]], (name, value)  # as a harmless value
        found = server.client.get(f"{BASE}/items", params={"q": value, "limit": 200, "sort": "relevance"},
                                  headers=READER)
        assert found.status_code == 200, found.text
        expected = {i for i, text in texts.items() if value.lower() in text}
        assert {i["id"] for i in found.json()["items"]} == expected, value
        summary = server.client.get(f"{BASE}/items/summary", params={"item_type": value}, headers=READER).json()
        assert summary["total"] == 1
        for name in ("session_id", "severity", "status", "source", "min_severity", "sort", "order"):
            assert_envelope(server.client.get(f"{BASE}/items", params={name: value}, headers=READER), 422)
    assert server.store.query("SELECT x FROM canary") == [{"x": "alive"}]
    assert len(server.items_table()) == len(PAYLOADS) + 1


def test_a_nul_in_q_or_in_the_searched_text_is_data(server: Running) -> None:
    holder = server.client.post(f"{BASE}/items", json={"item_type": "finding", "title": f"before {NUL} after\\"},
                                headers=WRITER).json()
    other = server.client.post(f"{BASE}/items", json={"item_type": "finding", "title": "nul"}, headers=WRITER).json()
    assert {i["id"] for i in server.client.get(f"{BASE}/items", params={"q": NUL}, headers=READER).json()["items"]} \
        == {holder["id"]}, "a q holding a NUL is compared by prefix"
    after = server.client.get(f"{BASE}/items", params={"q": "after"}, headers=READER).json()["items"]
    assert [i["id"] for i in after] == [holder["id"]], "text after a NUL is not searched"
    assert other["id"]


def _run_span(run_id: str, n: int) -> tuple[Span, str]:
    key = uuid.uuid4().hex
    env = envelope(item_type="finding", dedupe_key=key, title=f"run {n}", data={"severity": "low"})
    span = item_span([env], trace_id=uuid.uuid4().hex, span_id=f"{n + 1:016x}", project="example",
                     session_id=str(uuid.uuid4()), run_id=run_id, start_time_unix_nano=(n + 1) * 1000,
                     end_time_unix_nano=(n + 1) * 1000 + 1)
    return span, key


def test_injection_in_run_ids_is_data_for_chdb(span_server: SpanServer) -> None:
    location = span_server.spans.location
    engine = chdb_engine_client(location.path)
    engine.command(f"CREATE TABLE `{location.database}`.canary (x String) ENGINE = MergeTree ORDER BY x")
    engine.command(f"INSERT INTO `{location.database}`.canary VALUES ('alive')")
    runs = (HARMLESS, NUL, *PAYLOADS)
    spans, keys = zip(*(_run_span(run, n) for n, run in enumerate(runs)), strict=True)
    protobuf = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    r = span_server.client.post(INGEST, content=gzip.compress(encode_otlp_protobuf(list(spans))),
                                headers={**WRITER, **protobuf})
    assert r.status_code == 200, r.text
    stored = span_server.spans.count_spans()
    for run, key in zip(runs, keys, strict=True):
        r = span_server.client.post(f"{BASE}/items/rebuild", json={"run_ids": [run]}, headers=ADMIN)
        assert r.status_code == 200 and r.json() == {"processed": 1}, (run, r.text)  # as for a harmless run
        r = span_server.client.post(f"{BASE}/items/rebuild", json={"run_ids": [run + " absent"]}, headers=ADMIN)
        assert r.status_code == 200 and r.json() == {"processed": 0}, (run, r.text)
        assert_envelope(span_server.client.post(f"{BASE}/items/rebuild", json={"session_id": run}, headers=ADMIN), 422)
        item = span_server.client.get(f"{BASE}/items", params={"limit": 200}, headers=READER).json()["items"]
        assert key in {i["dedupe_key"] for i in item}
    assert engine.query(f"SELECT x FROM `{location.database}`.canary").result_rows == [("alive",)]
    assert span_server.spans.count_spans() == stored
    assert len(span_server.items_table()) == len(runs)


# --------------------------------------------------------------------------- OTLP ingest


def _nested_any_value(depth: int) -> bytes:
    """A protobuf AnyValue nested `depth` kvlists deep, as raw bytes: prefixes computed inside out and
    joined once, so even 100,000 levels take linear time and no recursion."""
    leaf = _varint(1 << 3 | 2) + _varint(4) + b"leaf"  # AnyValue.string_value = "leaf"
    key = _varint(1 << 3 | 2) + _varint(1) + b"k"  # KeyValue.key = "k"
    prefixes: list[bytes] = []
    inner = len(leaf)
    for _ in range(depth):
        value_head = _varint(2 << 3 | 2) + _varint(inner)  # KeyValue.value
        key_value = len(key) + len(value_head) + inner
        values_head = _varint(1 << 3 | 2) + _varint(key_value)  # KeyValueList.values
        kvlist = len(values_head) + key_value
        kvlist_head = _varint(6 << 3 | 2) + _varint(kvlist)  # AnyValue.kvlist_value
        prefixes.append(kvlist_head + values_head + key + value_head)
        inner = len(kvlist_head) + kvlist
    return b"".join(reversed(prefixes)) + leaf


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _with_attribute(attribute: bytes) -> bytes:
    """A one-span export whose span gets `attribute` (a raw AnyValue) under key `bomb`."""

    def field(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    span = field(1, bytes(16)) + field(2, bytes(8)) + field(5, b"bomb") + field(9, field(1, b"bomb") +
                                                                                 field(2, attribute))
    return field(1, field(2, field(2, span)))  # ExportTraceServiceRequest{resource_spans{scope_spans{spans}}}


def gzip_bomb(decompressed: int) -> bytes:
    """`decompressed` zero bytes, gzip-compressed (about a thousandth of the size)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MiB)
    parts = [compressor.compress(block) for _ in range(decompressed // MiB)]
    return b"".join(parts) + compressor.flush()


def hostile_exports(session_id: str) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """(name, body, headers) of exports that must be refused; the item spans in them use `session_id`."""
    spans = [item_span([envelope(item_type="finding", dedupe_key=uuid.uuid4().hex, title=f"t{n}")],
                       trace_id=uuid.uuid4().hex, span_id=f"{n + 1:016x}", project="example", session_id=session_id,
                       run_id="r", start_time_unix_nano=n + 1, end_time_unix_nano=n + 2) for n in range(3)]
    proto = encode_otlp_protobuf(spans)
    protobuf = {"Content-Type": "application/x-protobuf"}
    for cut in sorted({1, 2, 7, len(proto) // 3, len(proto) // 2, len(proto) - 10, len(proto) - 1}):
        yield f"protobuf-cut-at-{cut}", proto[:cut], protobuf
    zipped = gzip.compress(proto)
    yield "gzip-truncated", zipped[: len(zipped) // 2], {**protobuf, "Content-Encoding": "gzip"}
    yield "gzip-of-gzip", gzip.compress(zipped), {**protobuf, "Content-Encoding": "gzip"}
    yield "not-gzip", proto, {**protobuf, "Content-Encoding": "gzip"}
    yield "protobuf-nested-40", _with_attribute(_nested_any_value(40)), protobuf
    yield "protobuf-nested-5000", _with_attribute(_nested_any_value(5000)), protobuf
    deep = {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "leaf"}}]}}
    for _ in range(60):
        deep = {"kvlistValue": {"values": [{"key": "k", "value": deep}]}}
    doc = encode_otlp_json(spans)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "bomb", "value": deep})
    yield "json-nested-60", json.dumps(doc).encode(), JSON
    yield "json-nested-100000", b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON
    yield "json-unpaired-surrogate", json.dumps(encode_otlp_json(spans)).replace("t0", "\\ud800").encode(), JSON
    yield "json-not-an-export", b'{"resourceSpans": "nope"}', JSON
    yield "gzip-bomb-256MiB", gzip_bomb(256 * MiB), {**protobuf, "Content-Encoding": "gzip"}


def test_hostile_otlp_exports_are_refused_and_store_nothing(span_server: SpanServer) -> None:
    session_id = str(uuid.uuid4())
    stored = span_server.spans.count_spans()
    for path in (INGEST, "/v1/traces"):
        for name, body, headers in hostile_exports(session_id):
            r = span_server.client.post(path, content=body, headers={**WRITER, **headers})
            assert r.status_code in (400, 422), (path, name, r.status_code, r.text[:200])
            assert_envelope(r, r.status_code)
    assert span_server.spans.count_spans() == stored
    r = span_server.client.post(f"{BASE}/items/rebuild", json={"session_id": session_id}, headers=ADMIN)
    assert r.json() == {"processed": 0}


# --------------------------------------------------------------------------- a real `harness serve`


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("hostile") / "data" / "items.db", "--rate-limit", "0") as server:
        yield server


def raw(server: ServeProcess, request: bytes, stream_header_bytes: int = 0) -> bytes:
    """Send `request` (and, if asked, that many more header bytes) over a fresh socket; the answer."""
    head = request
    chunk = b"a" * 65536 if stream_header_bytes else b""
    _, answer = exchange(server.url, head, chunk, body_cap=stream_header_bytes)
    return answer


HEAD = f"GET {BASE}/items/summary HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-reader-token\r\n".encode()


def test_request_heads_over_the_limit_are_400_in_the_envelope_with_memory_bounded(served: ServeProcess) -> None:
    peak = served.peak_rss_kib()
    cases = {
        "one-70KiB-header": HEAD + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        "2000-headers": HEAD + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(2000)) + b"\r\n",
        "70KiB-url": f"GET {BASE}/items?q={'x' * 70_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "not-http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello to a plain port\r\n\r\n",
        "control-char-in-header": HEAD + b"X-Evil: a\x01b\r\n\r\n",
    }
    for name, request in cases.items():
        status, body = envelope_of(raw(served, request))
        assert (status, body["code"], body["type"]) == (400, 400, "invalid_request_error"), name
    # A 256 MiB header, streamed: refused after about 64 KiB, never held.
    status, body = envelope_of(raw(served, HEAD + b"X-Endless: ", stream_header_bytes=256 * MiB))
    assert status == 400 and "exceed" in body["detail"]
    ok = httpx.get(f"{served.url}{BASE}/items/summary", headers={**DEV_WRITER, "X-Fine": "a" * 60_000})
    assert ok.status_code == 200  # the server still serves, and a 60 KB header is fine
    grown = served.peak_rss_kib() - peak
    assert grown < 64 * 1024, (peak, grown)
    print(f"\nRELIABILITY hostile peak RSS growth after oversized heads: {grown // 1024} MiB")


def test_ingest_bombs_keep_memory_bounded(served: ServeProcess) -> None:
    peak = served.peak_rss_kib()
    bomb = gzip_bomb(1024 * MiB)  # 1 GiB of zeros in about 1 MiB
    assert len(bomb) < 2 * MiB
    protobuf = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    for path in (INGEST, "/v1/traces"):
        r = httpx.post(f"{served.url}{path}", content=bomb, headers={**DEV_WRITER, **protobuf}, timeout=60)
        assert_envelope(r, 400)
        r = httpx.post(f"{served.url}{path}", content=_with_attribute(_nested_any_value(100_000)),
                       headers={**DEV_WRITER, "Content-Type": "application/x-protobuf"}, timeout=60)
        assert_envelope(r, 400)
    grown = served.peak_rss_kib() - peak
    assert grown < 400 * 1024, grown  # bounded by the 64 MiB decompression limit, not by the 1 GiB bomb
    assert httpx.get(f"{served.url}{BASE}/items/access", headers=DEV_ADMIN).status_code == 200
    print(f"\nRELIABILITY hostile peak RSS growth after 1 GiB gzip bombs: {grown // 1024} MiB")
