"""`harness check` against the reference server, over real HTTP: every level, the reports, the exit codes."""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from server_fixtures import BASE, WRITER, Running, SpanServer

from harness.conformance.catalogue import CATALOGUE, OWN_CHECKS, Level, basis_provenance, catalogue_markdown
from harness.conformance.command import check
from harness.conformance.envelope import envelope_verdicts
from harness.conformance.http import Exchange
from harness.conformance.results import Redactor, Results
from harness.conformance.validation import response_problem
from harness.provenance import Authority, Provenance

ADMIN_TOKEN = "admin-token-0123456789"
READER_TOKEN = "reader-token-0123456789"
ACME_TOKEN = "acme-token-0123456789"
SECRETS = (ADMIN_TOKEN, READER_TOKEN, ACME_TOKEN)

KNOWN_SERVER_BUGS: dict[str, str] = {}
"""Reference-server bugs the suite found (reported to the lead). Remove an entry once the server is fixed:
the reference tests below then require that check to pass, and they fail while a listed bug still shows."""


def harness_check(
    url: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[Result, dict[str, Any]]:
    report = tmp_path / "report.json"
    args = ["--base-url", url, "--strict", "--reader-token", READER_TOKEN, "--other-tenant-token", ACME_TOKEN,
            "--junit-xml", str(tmp_path / "junit.xml"), "--json", str(report), "--markdown", str(tmp_path / "r.md"),
            *extra]
    if env is None:
        args += ["--token", ADMIN_TOKEN]
    result = CliRunner().invoke(check, args, env=env)
    data: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    return result, data


def failed_ids(report: dict[str, Any]) -> set[str]:
    return {r["check"] for r in report["results"] if r["outcome"] == "fail"}


def assert_reference_passes(result: Result, report: dict[str, Any], level: Level, tmp_path: Path) -> None:
    known = {cid for cid in KNOWN_SERVER_BUGS if next(c for c in OWN_CHECKS if c.id == cid).level <= level}
    assert failed_ids(report) == known, result.output + result.stderr
    assert result.exit_code == (1 if known else 0)
    ran = {r["check"] for r in report["results"] if r["outcome"] == "pass"}
    expected = {c.id for c in OWN_CHECKS if c.level <= level} - known
    assert expected <= ran, f"checks that never ran: {sorted(expected - ran)}"
    texts = [result.output, result.stderr, *((tmp_path / n).read_text() for n in ("junit.xml", "report.json", "r.md"))]
    for secret in SECRETS:
        assert all(secret not in text for text in texts), "a token leaked into the output or a report"


def test_reference_contract_level(server: Running, tmp_path: Path) -> None:
    seeded = server.client.post(f"{BASE}/items", headers=WRITER, json={
        "item_type": "finding", "ref": "already-there", "data": {"title": "Existing finding", "severity": "low"}})
    assert seeded.status_code == 201
    before = server.items_table()
    result, report = harness_check(server.url, tmp_path, "--level", "contract", env={"HARNESS_TOKEN": ADMIN_TOKEN})
    assert_reference_passes(result, report, Level.CONTRACT, tmp_path)
    assert server.items_table() == before, "the contract level must not change anything"
    assert report["duration_s"] < 60


def test_reference_stateful_level_is_the_default(server: Running, tmp_path: Path) -> None:
    started = time.monotonic()
    result, report = harness_check(server.url, tmp_path)
    assert report["level"] == "stateful"
    assert_reference_passes(result, report, Level.STATEFUL, tmp_path)
    assert time.monotonic() - started < 60
    tag = report["run_tag"]
    rows = server.items_table()
    ours = [r for r in rows if (r["dedupe_key"] or "").startswith(tag)]
    assert ours, "the run tags what it creates"
    untagged = [r for r in rows if r["dedupe_key"] is None or not r["dedupe_key"].startswith(tag)]
    assert not untagged, f"every item a stateful run creates carries its tag: {untagged[:3]}"


def test_reference_full_level(span_server: SpanServer, tmp_path: Path) -> None:
    result, report = harness_check(span_server.url, tmp_path, "--level", "full")
    assert_reference_passes(result, report, Level.FULL, tmp_path)
    assert report["duration_s"] < 60
    assert not any(r["outcome"] == "not run" for r in report["results"])


def test_unreachable_target_exits_2(tmp_path: Path) -> None:
    result, report = harness_check("http://127.0.0.1:9", tmp_path, "--level", "contract")
    assert result.exit_code == 2, result.stderr
    assert "unreachable" in report["error"]


def test_unusable_credentials_exit_2_without_echoing_them(server: Running, tmp_path: Path) -> None:
    wrong = "wrong-token-9876543210"
    result = CliRunner().invoke(check, ["--base-url", server.url, "--token", wrong, "--level", "contract"])
    assert result.exit_code == 2 and "not accepted" in result.stderr
    assert wrong not in result.stderr + result.output
    result = CliRunner().invoke(check, ["--base-url", server.url], env={"HARNESS_TOKEN": ""})
    assert result.exit_code == 2 and "exactly one main credential" in result.stderr
    result = CliRunner().invoke(check, ["--base-url", server.url, "--token", READER_TOKEN, "--level", "stateful"])
    assert result.exit_code == 2 and "items:write" in result.stderr


def test_api_key_credential(server: Running, tmp_path: Path) -> None:
    result = CliRunner().invoke(check, ["--base-url", server.url, "--api-key", ADMIN_TOKEN, "--level", "contract",
                                       "--json", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert failed_ids(report) == set(), result.stderr
    assert ADMIN_TOKEN not in result.stderr


@pytest.mark.parametrize(("status", "content_type", "body", "failing"), [
    (404, "application/json", {"code": 404, "detail": "Item not found", "type": "not_found_error"}, set()),
    (404, "application/json", {"code": 400, "detail": "Item not found", "type": "not_found_error"}, {"ENV002"}),
    (404, "application/json", {"code": 404, "detail": "Item not found"}, {"ENV003"}),
    (404, "application/problem+json", {"type": "about:blank", "status": 404, "title": "Not Found"},
     {"ENV001", "ENV002", "ENV003", "ENV005"}),
    (403, "application/json", {"code": 403, "detail": "no", "type": "forbidden"}, {"ENV004"}),
    (422, "application/json", {"code": 422, "detail": "bad", "type": "validation_error"}, {"ENV008"}),
    (422, "application/json", {"code": 422, "detail": "bad", "type": "validation_error",
                               "errors": [{"loc": ["limit"], "msg": "m", "type": "t"}]}, {"ENV008"}),
    (429, "application/json", {"code": 429, "detail": "slow down", "type": "rate_limit_error"}, {"ENV007"}),
    (500, "text/html", "<h1>500</h1>", {"ENV001"}),
])
def test_envelope_rules(status: int, content_type: str, body: Any, failing: set[str]) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    verdicts = envelope_verdicts(status, content_type, raw, {})
    assert {k for k, v in verdicts.items() if v is not None} == failing


def test_redactor_masks_tokens_and_credential_headers() -> None:
    redact = Redactor([ADMIN_TOKEN])
    text = redact(f"curl -H 'Authorization: Bearer {ADMIN_TOKEN}' -H 'X-API-Key: other-secret' {ADMIN_TOKEN}")
    assert ADMIN_TOKEN not in text and "other-secret" not in text
    assert "Authorization: Bearer ***" in text and "X-API-Key: ***" in text


def test_full_level_without_ingest_says_what_it_could_not_check(server: Running, tmp_path: Path) -> None:
    """The `server` fixture reads spans from files: ingest is refused, so the span checks are `not run`."""
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(check, ["--base-url", server.url, "--token", ADMIN_TOKEN, "--level", "full",
                                        "--json", str(report_path)])
    report = json.loads(report_path.read_text())
    assert result.exit_code == 1 and "ING001" in failed_ids(report)
    reasons = {r["check"]: r["reason"] for r in report["results"] if r["outcome"] == "not run"}
    assert "SPN001" in reasons and "ING001" in str(reasons["SPN001"])


def test_the_suite_imports_no_server_code() -> None:
    """harness/conformance must check any implementation over HTTP: it may not import the reference server."""
    allowed = ("harness.conformance", "harness.contract", "harness.provenance", "harness.model", "harness.spans.otlp")
    root = Path(__file__).resolve().parents[1] / "harness" / "conformance"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                assert not name.startswith("harness") or name.startswith(allowed), f"{path.name} imports {name}"


def test_docs_show_the_catalogue_with_each_authority() -> None:
    """docs/conformance.md's catalogue is the code's: a check added or re-based shows there with its authority."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "conformance.md").read_text()
    assert catalogue_markdown() in doc


def test_every_reference_check_names_a_decision_of_the_repository() -> None:
    """A verdict a user disputes leads to a page they can read: a decision number in DECISIONS.md, or the
    documentation page or standard named in full."""
    text = (Path(__file__).resolve().parents[1] / "DECISIONS.md").read_text()
    decisions = set(re.findall(r"^\*\*(D\d+)\.", text, re.MULTILINE))
    for rule in CATALOGUE.values():
        if rule.authority == Authority.REFERENCE:
            cited = set(re.findall(r"\bD\d+\b", rule.source))
            assert cited and cited <= decisions, f"{rule.id} cites {rule.source}, not a decision in DECISIONS.md"
        else:
            assert rule.source and "items-api" not in rule.source, rule.id


def _finding_results(strict: bool) -> Results:
    results = Results(Redactor([]), seed=1, strict=strict)
    results.passed("SPN001", "rebuild_items")
    results.failed("SPN010", "rebuild_items", "created_by is 'system'")  # a reference decision (D20)
    return results


def test_reference_differences_fail_only_under_strict() -> None:
    default, strict = _finding_results(strict=False), _finding_results(strict=True)
    assert default.ok and default.differing_ids == {"SPN010"} and not default.failed_ids
    assert not strict.ok and strict.failed_ids == {"SPN010"} and not strict.differing_ids
    default.failed("SPN001", "rebuild_items", "the healed item never appeared")  # documented: fails the run
    assert not default.ok and default.failed_ids == {"SPN001"}


def test_a_finding_takes_the_authority_it_is_given() -> None:
    """A documented check with a detail the reference decided: that detail's failure only differs."""
    results = Results(Redactor([]), seed=1)
    results.failed("LNK001", "create_item_link", "answered 200", provenance=basis_provenance("D14"))
    assert results.ok and results.differing_ids == {"LNK001"}


def _exchange(op: str, method: str, path: str, status: int, body: object) -> Exchange:
    url = "http://127.0.0.1/api/v1/org/example/ws/example/projects/example" + path
    return Exchange(op, method, url, {}, None, status, {"content-type": "application/json"}, json.dumps(body).encode())


def test_a_response_problem_takes_the_authority_of_what_it_breaks() -> None:
    """SCH001 through openapi-core: a broken reference-only limit differs, a missing documented field fails,
    and a success status the reference decided (204) only differs when another 2xx comes back."""
    link = "/items/0190a0a0-0000-7000-8000-000000000000/links/0190a0a0-0000-7000-8000-000000000001"
    below_zero = response_problem(_exchange("rebuild_items", "POST", "/items/rebuild", 200, {"processed": -1}))
    missing = response_problem(_exchange("rebuild_items", "POST", "/items/rebuild", 200, {}))
    undeclared = response_problem(_exchange("delete_item_link", "DELETE", link, 200, {}))
    assert below_zero is not None and below_zero.provenance.authority == Authority.REFERENCE
    assert missing is not None and missing.provenance.authority == Authority.DOCUMENTED
    assert undeclared is not None and undeclared.provenance == Provenance(Authority.REFERENCE, "D14")
    assert response_problem(_exchange("rebuild_items", "POST", "/items/rebuild", 200, {"processed": 3})) is None
