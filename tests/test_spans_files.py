"""Reading spans from files and folders, query filtering, and the fixtures' stated counts."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.model import DecodeStats, Span, SpanItem
from harness.spans.errors import InvalidSpanPayload
from harness.spans.files import FileSpanSource, iter_spans, parse_line, span_files, spans_of_record
from harness.spans.otlp import encode_otlp_json
from harness.spans.source import SpanQuery, SpanSource

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
DEFAULT_SESSION = "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0"
REFERENCE = Path("/work/shared/reference")
PROJECT_UUID = "9D8C7B6A-5F4E-4D3C-8B2A-1F0E9D8C7B6A"


def collect(source: SpanSource, query: SpanQuery) -> tuple[list[SpanItem], DecodeStats]:
    stats = DecodeStats()
    return list(source.item_spans(query, stats)), stats


def example(**kwargs: Any) -> SpanQuery:
    return SpanQuery(frozenset({"example"}), **kwargs)


# ------------------------------------------------------------------------------- the fixtures table


def readme_rows() -> list[dict[str, str]]:
    lines = [ln for ln in (FIXTURES / "README.md").read_text().splitlines() if ln.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True)) for ln in lines[2:]]


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def ref_collisions(items: list[SpanItem], posts: list[dict[str, Any]]) -> int:
    """Items whose ref another item already holds: posted rows first, then the latest envelope per key."""
    latest: dict[str, SpanItem] = {}
    for item in sorted(items, key=lambda i: i.order):
        latest[item.envelope.dedupe_key] = item
    holders = {post["ref"]: post["dedupe_key"] for post in posts if post.get("ref")}
    collisions = 0
    for item in sorted(latest.values(), key=lambda i: i.order):
        ref, key = item.envelope.ref, item.envelope.dedupe_key
        if ref is None:
            continue
        if holders.setdefault(ref, key) != key:
            collisions += 1
    return collisions


ROWS = readme_rows()


def test_every_fixture_folder_is_in_the_readme() -> None:
    assert sorted(row["scenario"] for row in ROWS) == sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    assert len({row["session"] for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row["scenario"] for row in ROWS])
def test_fixture_counts_match_the_readme(row: dict[str, str]) -> None:
    folder = FIXTURES / row["scenario"]
    spans = list(iter_spans([folder]))
    items, stats = collect(FileSpanSource([folder]), example(session_id=row["session"]))
    posts = jsonl(folder / "posts.jsonl")
    keys = {item.envelope.dedupe_key for item in items}
    actual = {
        "spans": len(spans),
        "selected": stats.spans,
        "item outputs": stats.item_outputs,
        "distinct": len(keys),
        "offloaded": stats.offloaded,
        "malformed": stats.malformed,
        "ref collisions": ref_collisions(items, posts),
        "healed": len(keys - {post["dedupe_key"] for post in posts}),
    }
    assert actual == {name: int(row[name]) for name in actual}
    assert len(stats.malformed_reasons) == stats.malformed or row["scenario"] == "malformed"
    for post in posts:  # what was POSTed is what the span holds
        assert post["source"] == "runtime" and post["dedupe_key"] in keys
    for patch in jsonl(folder / "patches.jsonl"):
        assert patch["dedupe_key"] in keys and set(patch) == {"dedupe_key", "status", "notes"}
    assert all(item.project == "example" for item in items)


def test_default_fixture_answers_the_documentation_curl_example() -> None:
    """D12: {"run_ids": ["example"], "session_id": "2489E9AD-..."} finds N > 0 items."""
    query = example(session_id="2489E9AD-2EE2-8E00-8EC9-32D5F69181C0", run_ids=("example",))
    items, _ = collect(FileSpanSource([FIXTURES / "default"]), query)
    assert len(items) == 3
    assert {i.envelope.ref for i in items} == {"web-1", "sqli-login", "xss-search"}
    assert all(i.session_id == DEFAULT_SESSION for i in items)


def test_all_fixtures_together_and_by_run() -> None:
    source = FileSpanSource([FIXTURES])
    items, stats = collect(source, example())
    assert len({i.envelope.dedupe_key for i in items}) == sum(int(r["distinct"]) for r in ROWS)
    assert stats.malformed == sum(int(r["malformed"]) for r in ROWS)
    two_runs = next(r for r in ROWS if r["scenario"] == "two-runs")
    run_1, run_2 = "2b89b3ee-ded3-5d18-9972-108d983549e2", "eedf8343665faa5662d2f0f95a2a39d2"
    by_run = {
        runs: len(collect(source, example(session_id=two_runs["session"], run_ids=runs))[0])
        for runs in [(run_1,), (run_2.upper(),), (run_1, run_2), ("nope",)]
    }
    assert by_run == {(run_1,): 2, (run_2.upper(),): 1, (run_1, run_2): 3, ("nope",): 0}
    assert len(collect(source, example(run_ids=(run_1,)))[0]) == 2  # runs without a session
    assert len(collect(source, example(session_id=DEFAULT_SESSION, run_ids=(run_1,)))[0]) == 0  # D1: both hold
    d7 = [i for i in collect(source, example(run_ids=(run_1,)))[0] if i.envelope.dedupe_key.startswith("span:")]
    assert len(d7) == 1 and d7[0].envelope.dedupe_key.endswith(":1")
    assert d7[0].envelope.session_id == two_runs["session"]  # null in the envelope: the span's session
    assert d7[0].envelope.trace_id == d7[0].order.trace_id
    other, _ = collect(source, SpanQuery(frozenset({"other"})))
    assert [i.envelope.title for i in other] == ["Other project's finding"]


# ------------------------------------------------------------------------------- query filtering


def span(trace: str, span_id: str, resource: dict[str, Any] | None = None, **attrs: Any) -> Span:
    outputs = '[{"name":"item","hash":"h"}]'
    objects = json.dumps({"h": {"hash": "h", "type": "val", "value": {"item_type": "finding", "dedupe_key": span_id}}})
    base = {"dreadnode.outputs": outputs, "dreadnode.objects": objects}
    return Span(trace, span_id, None, "s", "INTERNAL", 1, 2, base | attrs, resource or {})


@pytest.fixture
def mixed_file(tmp_path: Path) -> Path:
    t = "ab" * 16
    session_a, session_b = "aaaa0000-0000-4000-8000-000000000001", "bbbb0000-0000-4000-8000-000000000002"

    def dn(project: str | None = None, session: str | None = None, run: str | None = None) -> dict[str, Any]:
        pairs = (("dreadnode.project", project), ("dreadnode.session.id", session), ("dreadnode.run.id", run))
        return {key: value for key, value in pairs if value is not None}

    spans = [
        span(t, "0000000000000001", **dn("example", session_a.upper(), "r1")),
        span(t, "0000000000000002", **dn(PROJECT_UUID.lower(), session_a, "r2")),
        span(t, "0000000000000003", **dn("example", session_b, "r1"), resource={"harness.org": "acme"}),
        span(t, "0000000000000004", **dn("example"), resource={"harness.org": "other"}),
        span(t, "0000000000000005", **dn(session=session_a)),
    ]
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps(encode_otlp_json([s])) + "\n" for s in spans))
    return path


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (SpanQuery(frozenset({"example", PROJECT_UUID})), [1, 2, 3, 4]),
        (SpanQuery(frozenset({"example"})), [1, 3, 4]),
        (SpanQuery(frozenset({PROJECT_UUID})), [2]),
        (SpanQuery(frozenset()), []),
        (SpanQuery(frozenset({"example", PROJECT_UUID}), session_id="AAAA0000-0000-4000-8000-000000000001"), [1, 2]),
        (SpanQuery(frozenset({"example", PROJECT_UUID}), run_ids=("r1",)), [1, 3]),
        (
            SpanQuery(
                frozenset({"example", PROJECT_UUID}), session_id="aaaa0000-0000-4000-8000-000000000001", run_ids=("r1",)
            ),
            [1],
        ),
        (SpanQuery(frozenset({"example", PROJECT_UUID}), org="acme"), [1, 2, 3]),
        (SpanQuery(frozenset({"example"}), org="other"), [1, 4]),
        (SpanQuery(frozenset({"Example"})), []),  # slugs compare exactly
    ],
)
def test_query_filtering(mixed_file: Path, query: SpanQuery, expected: list[int]) -> None:
    items, stats = collect(FileSpanSource([mixed_file]), query)
    assert [int(i.envelope.dedupe_key) for i in items] == expected
    assert stats.spans == len(expected)


# ------------------------------------------------------------------------------- file formats


def test_formats_side_files_and_order(tmp_path: Path) -> None:
    if not REFERENCE.is_dir():
        pytest.skip("reference spans not available")
    nested = tmp_path / "b" / "deeper"
    nested.mkdir(parents=True)
    shutil.copy(REFERENCE / "report_item_span.otlp.json", tmp_path / "z-pretty.json")  # one indented document
    shutil.copy(REFERENCE / "report_item_span.sdk-mirror.jsonl", nested / "spans_x.ndjson")
    shutil.copy(FIXTURES / "triaged" / "posts.jsonl", tmp_path / "posts.jsonl")
    (tmp_path / "notes.txt").write_text("ignored")
    files = span_files([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["b/deeper/spans_x.ndjson", "z-pretty.json"]
    stats = DecodeStats()
    spans = list(iter_spans([tmp_path], stats))
    assert [s.name for s in spans] == ["tool:report_item", "agent:recon"] * 2
    assert stats.malformed == 0
    # Named explicitly, a side file is read, and its lines are not spans.
    stats = DecodeStats()
    assert list(iter_spans([tmp_path / "posts.jsonl"], stats)) == []
    assert stats.malformed == 3 and "no start_time" in stats.malformed_reasons[0]
    with pytest.raises(FileNotFoundError):
        span_files([tmp_path / "missing"])


def test_bad_lines_are_counted_and_reading_goes_on(tmp_path: Path) -> None:
    good = json.dumps(encode_otlp_json([span("cd" * 16, "0000000000000009", None, **{"dreadnode.project": "example"})]))
    path = tmp_path / "spans.jsonl"
    path.write_bytes(
        b"{ not json\n"
        + good.encode()
        + b"\n\n"
        + b"\xff\xfe broken utf-8\n"
        + b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}\n'
        + b'{"trace_id": "x", "span_id": "y"}\n'
        + b"[1, 2]\n"
        + good.encode()  # last line without a newline
    )
    stats = DecodeStats()
    spans = list(iter_spans([path], stats))
    assert [s.span_id for s in spans] == ["0000000000000009"] * 2
    assert stats.malformed == 5
    assert stats.malformed_reasons[0].startswith(f"{path}:1:")
    items, stats = collect(FileSpanSource([path]), example())
    assert len(items) == 2 and stats.malformed == 5


def test_iter_spans_streams(tmp_path: Path) -> None:
    """The first span comes out before later lines are read: a file is never held whole in memory."""
    path = tmp_path / "spans.jsonl"
    line = json.dumps(encode_otlp_json([span("ef" * 16, "000000000000000a")]))
    path.write_text(line + "\n" + line + "\n")
    iterator = iter_spans([path])
    assert next(iterator).span_id == "000000000000000a"
    with path.open("a") as fh:  # appended after the first span was read: still seen
        fh.write(line + "\n")
    assert len(list(iterator)) == 2


def test_spans_of_record_rejects_other_shapes() -> None:
    from harness.spans.files import spans_of_record

    with pytest.raises(InvalidSpanPayload):
        spans_of_record({"item_type": "finding", "trace_id": "x"})
    assert spans_of_record({"resourceSpans": []}) == []


# ------------------------------------------------------------------------------- parsing a line


def _otlp_line(value: str) -> bytes:
    attribute = '{"key": "n", "value": ' + value + "}"
    return ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "' + "ab" * 16 + '", "spanId": "'
            + "cd" * 8 + '", "attributes": [' + attribute + "]}]}]}]}").encode()


@pytest.mark.parametrize("line", [
    b'{"trace_id": "x", "span_id": "y", "attributes": {"n": 123456789012345678901234567890}}',  # mirror: exact
    b'{"trace_id": "x", "span_id": "y", "attributes": {"n": -9223372036854775809, "f": 1e-400}}',
    b'{"a": "\\ud800", "b": "\\u0000"}',  # a lone surrogate, which the fast parser refuses
    b'{"a": 1, "a": 2}',
    _otlp_line('{"intValue": "42"}'),
])
def test_a_line_parses_exactly_as_json_loads_would(line: bytes) -> None:
    assert parse_line(line) == json.loads(line)


def test_nan_parses_as_json_loads_would() -> None:
    assert math.isnan(parse_line(b'{"a": NaN}')["a"])


@pytest.mark.parametrize("value", [
    '{"intValue": 9223372036854775808}',  # one past int64, which a fast parser may read as a float
    '{"intValue": "9223372036854775808"}',
    '{"intValue": 123456789012345678901234567890}',
    '{"intValue": -9223372036854775809}',
])
def test_an_int_attribute_beyond_int64_is_refused_whichever_parser_read_it(value: str) -> None:
    with pytest.raises(InvalidSpanPayload, match="int64"):
        spans_of_record(parse_line(_otlp_line(value)))


def test_int64_bounds_are_kept_exactly() -> None:
    for value in (9223372036854775807, -9223372036854775808):
        [span] = spans_of_record(parse_line(_otlp_line(f'{{"intValue": {value}}}')))
        assert span.attributes["n"] == value
