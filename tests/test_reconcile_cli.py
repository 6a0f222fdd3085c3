"""`harness reconcile` on every fixture folder prints the counts fixtures/README.md promises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.items.store import ItemStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def readme_rows() -> dict[str, dict[str, int]]:
    """scenario -> the README table's numeric columns."""
    lines = [line for line in (FIXTURES / "README.md").read_text().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows: dict[str, dict[str, int]] = {}
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != len(header) or not re.fullmatch(r"\d+", cells[-1]):
            continue
        rows[cells[0]] = {name: int(value) for name, value in zip(header, cells, strict=True) if value.isdigit()}
    return rows


ROWS = readme_rows()


def reconcile(folder: Path, db: Path, *extra: str) -> dict[str, Any]:
    args = ["reconcile", "--spans", str(folder), "--db", str(db), "--json", *extra]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def side_files(folder: Path) -> list[str]:
    args: list[str] = []
    for name in ("posts", "patches"):
        if (folder / f"{name}.jsonl").exists():
            args += [f"--{name}", str(folder / f"{name}.jsonl")]
    return args


def test_readme_table_covers_every_fixture_folder() -> None:
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert set(ROWS) == folders


@pytest.mark.parametrize("scenario", sorted(ROWS))
def test_reconcile_counts_match_the_readme(scenario: str, tmp_path: Path) -> None:
    folder = FIXTURES / scenario
    expected = ROWS[scenario]
    report = reconcile(folder, tmp_path / "items.db", *side_files(folder))
    assert report["processed"] == expected["distinct"]
    assert report["healed"] == expected["healed"]
    assert report["offloaded"] == expected["offloaded"]
    assert report["malformed"] == expected["malformed"]
    assert len(report["ref_collisions"]) == expected["ref collisions"]
    assert report["healed"] + report["refreshed"] + report["unchanged"] == report["processed"]
    # A second pass over the same spans changes nothing.
    again = reconcile(folder, tmp_path / "items.db")
    assert (again["healed"], again["refreshed"], again["unchanged"]) == (0, 0, report["processed"])


def test_triaged_dispositions_survive_and_later_span_wins(tmp_path: Path) -> None:
    folder = FIXTURES / "triaged"
    db = tmp_path / "items.db"
    report = reconcile(folder, db, *side_files(folder))
    assert report["preserved"] == 2 and report["refreshed"] == 1 and report["superseded"] == 1
    store = ItemStore(db)
    patches = [json.loads(line) for line in (folder / "patches.jsonl").read_text().splitlines() if line.strip()]
    for patch in patches:
        row = store.item_by_dedupe_key(store.query("SELECT project_id FROM items LIMIT 1")[0]["project_id"],
                                       patch["dedupe_key"])
        assert row is not None and row.disposition is not None
        assert (row.disposition.status, row.disposition.notes) == (patch.get("status"), patch.get("notes"))
        assert row.disposition.updated_by == "experiment"  # the human's, not the rebuild's
    idor = store.query("SELECT data FROM items WHERE ref = 'idor-orders'")
    assert json.loads(idor[0]["data"])["severity"] == "critical"
    store.close()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "items.db"
    report = reconcile(FIXTURES / "default", db, "--dry-run")
    assert report["dry_run"] is True and report["healed"] == 3
    store = ItemStore(db)
    assert store.query("SELECT COUNT(*) AS n FROM items")[0]["n"] == 0
    store.close()


def test_session_and_run_filters(tmp_path: Path) -> None:
    two_runs = FIXTURES / "two-runs"
    only_run = reconcile(two_runs, tmp_path / "a.db", "--run-id", "2b89b3ee-ded3-5d18-9972-108d983549e2")
    assert only_run["processed"] == 2
    both = reconcile(two_runs, tmp_path / "b.db", "--session-id", "15684050-7F19-5B7B-A9D3-750D2968D1D0",
                     "--run-id", "eedf8343665faa5662d2f0f95a2a39d2")
    assert both["processed"] == 1
    other_session = reconcile(two_runs, tmp_path / "c.db", "--session-id", "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0")
    assert other_session["processed"] == 0


def test_table_output_names_every_count(tmp_path: Path) -> None:
    folder = FIXTURES / "ref-collisions"
    result = CliRunner().invoke(main, ["reconcile", "--spans", str(folder), "--db", str(tmp_path / "i.db"),
                                       *side_files(folder)], catch_exceptions=False)
    assert result.exit_code == 0
    for word in ("processed", "healed", "refreshed", "unchanged", "preserved", "unrecoverable", "malformed",
                 "ref collisions"):
        assert word in result.output
    assert result.output.count("ref collision:") == 2
