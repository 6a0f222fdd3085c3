"""`harness spans load` and `harness fixtures generate`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.model import DecodeStats
from harness.spans.clickhouse import ClickHouseSpanStore
from harness.spans.files import iter_spans
from harness.spans.source import SpanQuery

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_spans_load_puts_every_fixture_span_in_the_store(chdb_dsn: str) -> None:
    result = CliRunner().invoke(main, ["spans", "load", str(FIXTURES), "--into", chdb_dsn, "--org", "example"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    expected = sum(1 for _ in iter_spans([FIXTURES]))
    store = ClickHouseSpanStore(chdb_dsn)
    assert store.count_spans() == expected
    default = SpanQuery(frozenset({"example"}), org="example", session_id="2489e9ad-2ee2-8e00-8ec9-32d5f69181c0")
    assert len(list(store.item_spans(default, DecodeStats()))) == 3
    assert f"loaded {expected} spans" in result.output


def test_spans_load_reports_an_unreachable_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["spans", "load", str(FIXTURES / "default"), "--into",
                                       "http://127.0.0.1:1/db"])
    assert result.exit_code == 1
    assert "unavailable" in result.output


def test_generated_fixtures_reconcile_to_their_summary(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = CliRunner().invoke(main, ["fixtures", "generate", "--sessions", "2", "--runs-per-session", "2",
                                       "--items-per-run", "15", "--failed-post-fraction", "0.3", "--seed", "7",
                                       "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    posts = out / "posts.jsonl"
    n_posts = sum(1 for line in posts.read_text().splitlines() if line.strip())
    report = CliRunner().invoke(main, ["reconcile", "--spans", str(out), "--db", str(tmp_path / "i.db"),
                                       "--posts", str(posts), "--json"], catch_exceptions=False)
    data = json.loads(report.output)
    assert data["processed"] > 0 and data["malformed"] >= 1 and data["offloaded"] >= 1
    # Every readable item is now in the table: those posted (minus offloaded ones) plus the healed.
    assert data["healed"] + data["refreshed"] + data["unchanged"] == data["processed"]
    assert 0 < data["healed"] < data["processed"] <= n_posts + data["healed"]
