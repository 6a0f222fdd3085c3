"""Proof that the suite catches bugs: each broken variant of the reference server, under `harness check`
and under plain `schemathesis run` (its CLI, as a subprocess), compared in docs/conformance.md.

The default run checks every variant with our own checks (Schemathesis' generated phases off, to keep
CI fast) and compares plain Schemathesis on a few variants; `-m long` runs the complete
`harness check` (with Schemathesis) and plain Schemathesis on every variant.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from broken_variants import BY_NAME, VARIANTS, Variant, start_variant
from click.testing import CliRunner
from server_fixtures import write_tenancy

from harness.conformance.catalogue import Level
from harness.conformance.command import check
from harness.conformance.runner import run
from harness.conformance.settings import Credential, Settings
from harness.contract import spec_path
from harness.items.store import ItemStore
from harness.server.config import Tenancy, load_tenancy
from harness.spans.files import FileSpanSource

ADMIN_TOKEN = "admin-token-0123456789"
READER_TOKEN = "reader-token-0123456789"
ACME_TOKEN = "acme-token-0123456789"
REFERENCE = Variant("reference", "the reference server, unbroken", "", "full", needs_spans=True)
PLAIN_MISSES = frozenset({
    "disposition-overwritten", "healed-missing", "duplicate-span-post", "code-not-status", "reader-rebuilds",
    "cross-tenant-read", "processed-zero", "severity-filter-ignored",
})
"""Variants plain `schemathesis run` does not catch (measured; the table in docs/conformance.md)."""
PLAIN_SEED, PLAIN_EXAMPLES = 1, 10
QUICK_PLAIN = ("problem-json", "severity-filter-ignored")
"""Variants compared under plain Schemathesis in the default run (all of them with -m long)."""


@dataclass
class Served:
    name: str
    url: str
    store: ItemStore


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path, tenancy: Tenancy) -> Iterator[Served]:
    """The variant named by the test's `served` parameter, as a real server on 127.0.0.1."""
    variant = BY_NAME.get(request.param, REFERENCE)
    source: Any
    if variant.needs_spans:
        source = request.getfixturevalue("chdb_store")
    else:
        (tmp_path / "spans").mkdir()
        source = FileSpanSource([tmp_path / "spans"])
    live, store = start_variant(variant, tmp_path / "items.db", tenancy, source)
    yield Served(variant.name, live.url, store)
    live.stop()
    store.close()


def settings(url: str, level: str, **extra: Any) -> Settings:
    return Settings(base_url=url, credential=Credential(ADMIN_TOKEN), reader=Credential(READER_TOKEN),
                    other_tenant=Credential(ACME_TOKEN), level=Level.parse(level), seed=PLAIN_SEED, **extra)


@pytest.mark.parametrize("served", [v.name for v in VARIANTS], indirect=True)
def test_variant_is_caught_by_its_check(served: Served) -> None:
    """A bug against the documentation or a standard fails the default run; a departure from a decision of
    the reference is listed as a difference there, and fails only under --strict."""
    variant = BY_NAME[served.name]
    report = run(settings(served.url, variant.level, schemathesis=False))
    assert report.error is None, report.error
    results = report.results
    if variant.reference_only:
        assert variant.catches in results.differing_ids and not results.failed_ids, (
            f"{variant.name} must only differ on {variant.catches}; failed {sorted(results.failed_ids)}, differs "
            f"{sorted(results.differing_ids)}")
        assert report.exit_code == 0
        strict = run(settings(served.url, variant.level, schemathesis=False, strict=True))
        assert variant.catches in strict.results.failed_ids and strict.exit_code == 1
        return
    assert variant.catches in results.failed_ids, (
        f"{variant.name} ({variant.what}) must fail {variant.catches}; failed: {sorted(results.failed_ids)}")
    assert report.exit_code == 1


@pytest.mark.long
@pytest.mark.parametrize("served", [v.name for v in VARIANTS], indirect=True)
def test_variant_is_caught_by_the_full_command(served: Served, tmp_path: Path) -> None:
    """The command as CI runs it (Schemathesis included, --level full): the same check fails."""
    variant = BY_NAME[served.name]
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(check, [
        "--base-url", served.url, "--token", ADMIN_TOKEN, "--reader-token", READER_TOKEN,
        "--other-tenant-token", ACME_TOKEN, "--level", "full" if variant.needs_spans else "stateful",
        "--seed", str(PLAIN_SEED), "--json", str(report_path)])
    report = json.loads(report_path.read_text())
    failed = {r["check"] for r in report["results"] if r["outcome"] == "fail"}
    if variant.reference_only:
        differs = {r["check"] for r in report["results"] if r["outcome"] == "differs"}
        assert result.exit_code == 0 and variant.catches in differs, result.stderr
        return
    assert result.exit_code == 1 and variant.catches in failed, result.stderr


# ------------------------------------------------------------------------------------ plain Schemathesis


def plain_schemathesis(url: str, out: Path) -> set[tuple[str, str]]:
    """`schemathesis run openapi.yaml` with every check, the admin token and nothing of ours: (code, operation)."""
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(spec_path()), "--url", f"{url}/api/v1",
               "-H", f"Authorization: Bearer {ADMIN_TOKEN}", "--checks", "all", "--max-examples", str(PLAIN_EXAMPLES),
               "--seed", str(PLAIN_SEED), "--workers", "1", "--report", "json", "--report-json-path", str(out)]
    # cwd: plain Schemathesis keeps a crash cache (and would read a schemathesis.toml) in its working directory
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=out.parent)
    assert out.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    return {(f["code"], op) for f in report["failures"] for op in f["operations"]}


@pytest.fixture(scope="module")
def plain_baseline(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """What plain Schemathesis reports against the unbroken reference server (its own, started here)."""
    directory = tmp_path_factory.mktemp("plain-baseline")
    (directory / "spans").mkdir()
    tenancy = load_tenancy(write_tenancy(directory))
    live, store = start_variant(REFERENCE, directory / "items.db", tenancy, FileSpanSource([directory / "spans"]))
    try:
        return plain_schemathesis(live.url, directory / "st.json")
    finally:
        live.stop()
        store.close()


def _compare_with_plain(served: Served, tmp_path: Path, baseline: set[tuple[str, str]]) -> None:
    """Caught means: plain Schemathesis reports a (code, operation) it does not report for the reference."""
    new = plain_schemathesis(served.url, tmp_path / "st.json") - baseline
    expected_caught = served.name not in PLAIN_MISSES
    assert bool(new) == expected_caught, f"plain Schemathesis on {served.name}: new failures {sorted(new)}"


@pytest.mark.parametrize("served", QUICK_PLAIN, indirect=True)
def test_plain_schemathesis_on_some_variants(served: Served, tmp_path: Path,
                                             plain_baseline: set[tuple[str, str]]) -> None:
    _compare_with_plain(served, tmp_path, plain_baseline)


@pytest.mark.long
@pytest.mark.parametrize("served", [v.name for v in VARIANTS if v.name not in QUICK_PLAIN], indirect=True)
def test_plain_schemathesis_on_every_variant(served: Served, tmp_path: Path,
                                             plain_baseline: set[tuple[str, str]]) -> None:
    _compare_with_plain(served, tmp_path, plain_baseline)


@pytest.mark.parametrize("served", ["code-not-status"], indirect=True)
def test_reports_name_rule_request_response_and_seed(served: Served, tmp_path: Path) -> None:
    """Every report carries, per failure, the rule, a replayable curl (token masked), the answer and the seed."""
    paths = {name: tmp_path / name for name in ("junit.xml", "report.json", "report.md")}
    result = CliRunner().invoke(check, [
        "--base-url", served.url, "--token", ADMIN_TOKEN, "--level", "contract", "--seed", "4242",
        "--junit-xml", str(paths["junit.xml"]), "--json", str(paths["report.json"]),
        "--markdown", str(paths["report.md"])])
    assert result.exit_code == 1
    report = json.loads(paths["report.json"].read_text())
    cells = report["results"]
    cases = ET.parse(paths["junit.xml"]).getroot().findall(".//testcase")
    assert {(c.get("classname"), c.get("name")) for c in cases} == {(r["check"], r["operation"]) for r in cells}
    assert len(cases) == len(cells)
    failing = [c for c in cases if c.find("failure") is not None]
    assert failing and {c.get("classname") for c in failing} == {"ENV002"}
    text = failing[0].findtext("failure") or ""
    assert "rule: The envelope's `code` equals the HTTP status." in text
    assert "curl -sS -X" in text and "Bearer ***" in text and "seed: 4242" in text and '"code": 400' in text
    markdown = paths["report.md"].read_text()
    assert markdown.startswith("## harness check: contract") and "| check | access | list |" in markdown
    assert "seed 4242" in result.stderr and "--seed 4242" in report["replay"]
    # the console groups findings by check: one entry for ENV002 with its count, rule, authority and an example
    assert result.stderr.count("✗ ENV002") == 1 and "authority: documented" in result.stderr
    group = next(g for g in report["groups"] if g["check"] == "ENV002")
    assert group["fails_run"] and group["count"] >= 10 and len(group["operations"]) >= 5
    assert "authority: documented" in text
    for text in (result.stderr, result.output, *(p.read_text() for p in paths.values())):
        assert ADMIN_TOKEN not in text
