"""Generated hostile requests against a real `harness serve`: zero 5xx, every error in the envelope.

Schemathesis (its CLI, negative mode: every example breaks the schema somewhere) runs against the
server with the organization, workspace and project fixed to the development tenant, so requests get
past tenancy to validation and the handlers. The server's own access log counts every request it
answered and with what status, whoever sent it; the Schemathesis NDJSON report gives each response
body, checked for the envelope. The long variant adds `harness check --level full` with a raised
example count and brings the total past 5,000 requests.

ingest_traces is left to tests/test_reliability_hostile.py (Schemathesis cannot serialize protobuf)
and get_item_access has nothing negative to generate (no parameters left once the path is fixed).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_reliability_support import ServeProcess, write_toml

from harness.contract import spec_path

SCHEMATHESIS_CONFIG = """
[parameters]
"path.org" = "example"
"path.workspace" = "example"
"path.project" = "example"
"""
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')


def schemathesis(url: str, tmp: Path, max_examples: int, seed: int) -> Path:
    """Run the Schemathesis CLI in negative mode; the path of its NDJSON report."""
    executable = shutil.which("schemathesis") or shutil.which("st")
    assert executable is not None, "schemathesis is a dependency of items-harness"
    config = write_toml(tmp / "schemathesis.toml", SCHEMATHESIS_CONFIG)
    report = tmp / "schemathesis.ndjson"
    result = subprocess.run(
        [executable, "--config-file", str(config), "run", str(spec_path()), "--url", f"{url}/api/v1",
         "-H", "Authorization: Bearer dev-admin-token", "--mode", "negative", "--max-examples", str(max_examples),
         "--phases", "examples,coverage,fuzzing", "--checks", "not_a_server_error", "--seed", str(seed),
         "--workers", "2", "--suppress-health-check", "all", "--no-shrink", "--exclude-operation-id", "ingest_traces",
         "--exclude-operation-id", "get_item_access", "--report", "ndjson", "--report-ndjson-path", str(report)],
        capture_output=True, text=True, timeout=3600, cwd=tmp,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return report


def interactions(report: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for line in report.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished:
            found.extend(finished["recorder"].get("interactions", {}).values())
    return found


def not_envelopes(found: list[dict[str, Any]]) -> list[str]:
    """Error responses whose body is not `{code, detail, type[, errors]}` with code == status."""
    bad: list[str] = []
    for interaction in found:
        response = interaction.get("response")
        if response is None or response["status_code"] < 400:
            continue
        raw = base64.b64decode(response["content"]["$base64"]) if response.get("content") else b""
        try:
            body = json.loads(raw)
            ok = (set(body) <= {"code", "detail", "type", "errors"} and body["code"] == response["status_code"]
                  and isinstance(body["detail"], str) and isinstance(body["type"], str))
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            bad.append(f"{interaction['request']['method']} {interaction['request']['uri']} -> "
                       f"{response['status_code']} {raw[:200]!r}")
    return bad


def served_statuses(log: str) -> Counter[int]:
    return Counter(int(m["status"]) for m in ACCESS_LINE.finditer(log))


def harness_check(url: str, tmp: Path, max_examples: int) -> None:
    """`harness check --level full` (the conformance suite); its verdict is the conformance tests' business,
    here it is a second source of generated and hand-written requests."""
    result = subprocess.run(
        [sys.executable, "-c", "from harness.conformance.command import check; check()", "--base-url", url,
         "--token", "dev-admin-token", "--reader-token", "dev-reader-token", "--level", "full",
         "--max-examples", str(max_examples), "--seed", "6", "--json", str(tmp / "check.json")],
        capture_output=True, text=True, timeout=3600, cwd=tmp,
    )
    report = json.loads((tmp / "check.json").read_text())
    assert report["error"] is None and result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize(("max_examples", "with_check", "at_least"), [
    pytest.param(3, False, 500, id="short"),
    pytest.param(500, True, 5_000, id="5000-requests", marks=pytest.mark.long),
])
def test_generated_hostile_requests_never_get_a_5xx(
    max_examples: int, with_check: bool, at_least: int, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with ServeProcess(tmp_path / "data" / "items.db", "--rate-limit", "0", "--access-log", log=log) as server:
        report = schemathesis(server.url, tmp_path, max_examples, seed=6)
        if with_check:
            harness_check(server.url, tmp_path, max_examples=50)
    output = log.read_text(encoding="utf-8", errors="replace")
    statuses = served_statuses(output)
    generated = interactions(report)
    assert sum(statuses.values()) >= at_least, statuses
    assert len(generated) >= min(at_least, 500)
    assert [s for s in statuses if s >= 500] == [], statuses
    assert not_envelopes(generated) == []
    assert "Traceback" not in output and "unhandled error" not in output
    print(f"\nRELIABILITY fuzz requests={sum(statuses.values())} schemathesis={len(generated)} "
          f"statuses={dict(sorted(statuses.items()))}")
