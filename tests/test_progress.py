"""Long operations show how far they are, with a rate and an ETA. For `harness reconcile`, the rebuild
reports items and span input per batch, and the input adds up to what the source said it would read,
so the bar's percentage and ETA are honest."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import harness.cli
from harness.cli import main
from harness.experiment import ExperimentProject
from harness.items.store import ItemStore
from harness.rebuild import rebuild
from harness.spans.clickhouse import ClickHouseSpanStore
from harness.spans.files import FileSpanSource, iter_spans
from harness.spans.synthetic import generate

SCOPE = ExperimentProject("example", "example", "example").scope(None, ())


@pytest.fixture
def spans(tmp_path: Path) -> Path:
    out = tmp_path / "spans"
    generate(out, sessions=2, runs_per_session=3, items_per_run=30, failed_post_fraction=0.5, seed=5)
    return out


def progress_of(tmp_path: Path, source: FileSpanSource | ClickHouseSpanStore) -> tuple[list[tuple[int, int]], int]:
    calls: list[tuple[int, int]] = []
    store = ItemStore(tmp_path / "items.db")
    try:
        report = rebuild(store, source, SCOPE, batch_size=40, progress=lambda n, read: calls.append((n, read)))
    finally:
        store.close()
    return calls, report.processed + report.superseded


@pytest.mark.parametrize("warm", [False, True], ids=["first rebuild", "memo warm"])
def test_file_input_adds_up_to_the_files_size(tmp_path: Path, spans: Path, warm: bool) -> None:
    source = FileSpanSource([spans])
    if warm:
        progress_of(tmp_path, source)
    calls, reports = progress_of(tmp_path, source)
    assert len(calls) > 3  # one call per batch of 40 reports
    assert sum(n for n, _ in calls) == reports
    total = source.input_size(SCOPE.query())
    assert total == sum(p.stat().st_size for p in spans.glob("spans-*"))
    assert sum(read for _, read in calls) == total


def test_chdb_input_is_the_candidate_spans(tmp_path: Path, spans: Path, chdb_store: ClickHouseSpanStore) -> None:
    chdb_store.insert_spans(iter_spans([spans]))
    calls, reports = progress_of(tmp_path, chdb_store)
    assert sum(n for n, _ in calls) == reports
    total = chdb_store.input_size(SCOPE.query())
    assert 0 < total < chdb_store.count_spans()  # agent root spans carry no item: never streamed
    assert sum(read for _, read in calls) == total


def test_the_cli_draws_a_bar_with_rate_and_eta(tmp_path: Path, spans: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(harness.cli, "console", Console(file=screen, force_terminal=True, width=150))
    result = CliRunner().invoke(main, ["reconcile", "--spans", str(spans), "--db", str(tmp_path / "i.db"), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0
    drawn = screen.getvalue()
    assert "reconciling" in drawn and "items/s" in drawn and "ETA" in drawn and "100%" in drawn


def test_fixtures_generate_draws_a_bar_with_rate_and_eta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(harness.cli, "console", Console(file=screen, force_terminal=True, width=150))
    result = CliRunner().invoke(main, ["fixtures", "generate", "--sessions", "2", "--items-per-run", "50",
                                       "--out", str(tmp_path / "spans")], catch_exceptions=False)
    assert result.exit_code == 0
    drawn = screen.getvalue()
    assert "generating" in drawn and "items/s" in drawn and "ETA" in drawn and "200/200" in drawn
