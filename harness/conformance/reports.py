"""The results as a console matrix, JUnit XML (one testcase per check x operation), JSON and Markdown.

Every text here comes from `Results`, which is already redacted: no report can carry a token.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.conformance.catalogue import CATALOGUE, Check
from harness.conformance.operations import operations
from harness.conformance.results import Cell, Finding, Outcome
from harness.conformance.runner import RunReport
from harness.provenance import Provenance

SHORT = {
    "get_item_access": "access", "list_items": "list", "item_summary": "summary", "get_item": "get",
    "list_item_events": "events", "list_item_links": "links", "create_item": "create", "update_item": "update",
    "bulk_update_items": "bulk", "create_item_link": "link+", "delete_item_link": "link-",
    "rebuild_items": "rebuild", "ingest_traces": "ingest",
}
SYMBOL = {Outcome.PASS: "[green]✓[/]", Outcome.FAIL: "[bold red]✗[/]", Outcome.DIFFERS: "[yellow]≠[/]",
          Outcome.NOT_RUN: "[dim]-[/]"}
PLAIN = {Outcome.PASS: "✓", Outcome.FAIL: "✗", Outcome.DIFFERS: "≠", Outcome.NOT_RUN: "-"}
LEGEND = "✓ pass  ✗ fail  ≠ differs from the reference server  - not run  (blank: not applicable)"


def _columns(report: RunReport) -> list[str]:
    ops = list(operations())
    extra = sorted({op for _, op in report.results.cells} - set(ops))
    return ops + extra


def _rows(report: RunReport) -> list[str]:
    present = {check_id for check_id, _ in report.results.cells}
    ordered = [c for c in CATALOGUE if c in present]
    return ordered + sorted(present - set(ordered))


def _check(check_id: str) -> Check | None:
    return CATALOGUE.get(check_id)


def replay_command(report: RunReport) -> str:
    """The command that replays this run (tokens as environment references, never values)."""
    s = report.settings
    parts = ["harness", "check", "--base-url", s.base_url, "--level", s.level.label, "--org", s.org,
             "--workspace", s.workspace, "--project", s.project, "--seed", str(s.seed),
             "--max-examples", str(s.max_examples)]
    if s.workers != 1:
        parts += ["--workers", str(s.workers)]
    if s.rate_limit:
        parts += ["--rate-limit", str(s.rate_limit)]
    text = " ".join(shlex.quote(p) for p in parts)
    if s.credential.kind == "api-key":
        text = text.replace("harness check", 'harness check --api-key "$HARNESS_API_KEY"', 1)
    return text + (' --reader-token "$READER_TOKEN"' if s.reader else "") + (
        ' --other-tenant-token "$OTHER_TENANT_TOKEN"' if s.other_tenant else "")


def summary(report: RunReport) -> dict[str, int]:
    counts = {o.value: 0 for o in Outcome}
    for cell in report.results.cells.values():
        counts[cell.outcome.value] += 1
    return counts


# ----------------------------------------------------------------------------------------- console


@dataclass
class Group:
    """All findings of one check on one authority: how the console, Markdown and JSON summarize a run."""

    check_id: str
    provenance: Provenance
    counts: bool
    """Whether these findings fail the run (else they only differ from the reference server)."""
    findings: list[Finding]
    total: int
    operations: list[str]

    @property
    def rule(self) -> str:
        check = _check(self.check_id)
        return check.rule if check is not None else self.check_id


def groups(report: RunReport) -> list[Group]:
    """Findings grouped by check and authority, failures first, then by how often they were seen."""
    found: dict[tuple[str, Provenance], Group] = {}
    for (check_id, op), cell in report.results.cells.items():
        for finding in cell.failures:
            key = (check_id, finding.provenance)
            group = found.setdefault(key, Group(check_id, finding.provenance, finding.counts(report.results.strict),
                                                [], 0, []))
            group.findings.append(finding)
            if op not in group.operations:
                group.operations.append(op)
    for (check_id, _, provenance), count in report.results.failure_counts.items():
        if (check_id, provenance) in found:
            found[check_id, provenance].total += count
    return sorted(found.values(), key=lambda g: (not g.counts, -g.total, g.check_id))


def _group_text(group: Group) -> list[str]:
    example = group.findings[0]
    mark = "[bold red]✗[/]" if group.counts else "[yellow]≠[/]"
    lines = [f"{mark} [bold]{group.check_id}[/]  {group.total} finding(s) on {escape(', '.join(group.operations))}",
             f"  rule:      {escape(group.rule)}",
             f"  authority: {escape(str(group.provenance))}",
             f"  example:   {escape(example.message)}  [dim]({example.origin}, on {example.operation})[/]"]
    if example.evidence is not None:
        lines.append(f"  request:   {escape(example.evidence.curl)}")
        lines.append(f"  response:  {example.evidence.status} {escape(example.evidence.response[:400])}")
    return lines


def print_console(report: RunReport, console: Console) -> None:
    s = report.settings
    console.print(f"[bold]harness check[/] {escape(s.api_url)}  level={s.level.label}  seed={s.seed}  "
                  f"tag={s.run_tag}  {'strict  ' if s.strict else ''}{report.duration_s:.1f}s")
    if report.error is not None:
        console.print(f"[bold red]could not run:[/] {escape(report.error)}")
        return
    cols = _columns(report)
    table = Table(title="check x operation", show_lines=False, pad_edge=False)
    table.add_column("check", no_wrap=True)
    for op in cols:
        table.add_column(SHORT.get(op, op), justify="center")
    for check_id in _rows(report):
        row = [check_id]
        for op in cols:
            cell = report.results.cells.get((check_id, op))
            row.append(SYMBOL[cell.outcome] if cell is not None else "")
        table.add_row(*row)
    console.print(table)
    console.print(LEGEND)
    reasons = sorted({(cid, cell.not_run) for (cid, _), cell in report.results.cells.items()
                      if cell.outcome == Outcome.NOT_RUN and cell.not_run})
    for check_id, reason in reasons:
        console.print(f"[dim]- {check_id}: not run, {escape(reason)}[/]")
    for note in report.results.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    found = groups(report)
    failing = [g for g in found if g.counts]
    differing = [g for g in found if not g.counts]
    if failing:
        console.print(f"\n[bold red]Failures[/] ({len(failing)} check(s); the full list is in the JSON and JUnit "
                      "reports)")
        for group in failing:
            console.print("\n".join(_group_text(group)))
    if differing:
        console.print(f"\n[bold yellow]Differs from the reference server[/] ({len(differing)} check(s)): rules "
                      "that stand on a decision of the reference (DECISIONS.md), not on the documentation or a "
                      "standard. They do not fail the run; --strict counts them.")
        for group in differing:
            console.print("\n".join(_group_text(group)))
    if found:
        console.print(f"\nseed {s.seed}; replay: {escape(replay_command(report))}")
    counts = summary(report)
    verdict = "[bold green]PASSED[/]" if report.exit_code == 0 else "[bold red]FAILED[/]"
    console.print(f"{verdict}  {counts['pass']} passed, {counts['fail']} failed, {counts['differs']} differ from "
                  f"the reference, {counts['not run']} not run (check x operation)")


# ----------------------------------------------------------------------------------------- machines


def _cell_json(check_id: str, op: str, cell: Cell) -> dict[str, Any]:
    return {
        "check": check_id, "operation": op, "outcome": cell.outcome.value, "passes": cell.passes,
        "reason": cell.not_run or None,
        "failures": [_finding_json(f) for f in cell.failures],
    }


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"message": f.message, "origin": f.origin, "seed": f.seed, "authority": f.provenance.authority.value,
            "source": f.provenance.source,
            "request": f.evidence.curl if f.evidence else None,
            "status": f.evidence.status if f.evidence else None,
            "response": f.evidence.response if f.evidence else None}


def to_json(report: RunReport) -> dict[str, Any]:
    s = report.settings
    return {
        "target": s.api_url, "level": s.level.label, "org": s.org, "workspace": s.workspace, "project": s.project,
        "seed": s.seed, "run_tag": s.run_tag, "max_examples": s.max_examples, "strict": s.strict,
        "exit_code": report.exit_code,
        "error": report.error, "duration_s": report.duration_s, "timings": report.timings,
        "summary": summary(report), "notes": report.results.notes, "replay": replay_command(report),
        "checks": {cid: {"title": c.title, "rule": c.rule, "authority": c.authority.value, "source": c.source}
                   for cid, c in CATALOGUE.items()},
        "groups": [{"check": g.check_id, "authority": g.provenance.authority.value, "source": g.provenance.source,
                    "fails_run": g.counts, "count": g.total, "operations": g.operations, "rule": g.rule}
                   for g in groups(report)],
        "results": [_cell_json(cid, op, cell) for (cid, op), cell in sorted(report.results.cells.items())],
    }


def write_json(report: RunReport, path: Path) -> None:
    path.write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")


def write_junit(report: RunReport, path: Path) -> None:
    """One testcase per check x operation: classname is the check ID, name the operation."""
    cells = sorted(report.results.cells.items())
    counts = summary(report)
    root = ET.Element("testsuites", name="harness check")
    suite = ET.SubElement(root, "testsuite", name=f"harness check ({report.settings.level.label}"
                          f"{', strict' if report.settings.strict else ''})",
                          tests=str(len(cells)), failures=str(counts["fail"]), skipped=str(counts["not run"]),
                          errors="1" if report.error else "0", time=f"{report.duration_s:.2f}")
    if report.error is not None:
        case = ET.SubElement(suite, "testcase", classname="harness", name="run")
        ET.SubElement(case, "error", message=report.error)
    replay = replay_command(report)
    for (check_id, op), cell in cells:
        case = ET.SubElement(suite, "testcase", classname=check_id, name=op)
        check = _check(check_id)
        properties = ET.SubElement(case, "properties")
        if check is not None:
            ET.SubElement(properties, "property", name="authority", value=check.authority.value)
            ET.SubElement(properties, "property", name="source", value=check.source)
        rule = check.rule if check else check_id
        if cell.outcome == Outcome.FAIL:
            text = "\n\n".join("\n".join(_plain_finding(f, replay)) for f in cell.failures)
            failure = ET.SubElement(case, "failure", message=rule, type=check_id)
            failure.text = text
        elif cell.outcome == Outcome.DIFFERS:
            ET.SubElement(properties, "property", name="differs-from-reference",
                          value="; ".join(sorted({f.provenance.source for f in cell.failures})))
            out = ET.SubElement(case, "system-out")
            out.text = "differs from the reference server (does not fail the run; --strict fails it)\n\n" + \
                "\n\n".join("\n".join(_plain_finding(f, replay)) for f in cell.failures)
        elif cell.outcome == Outcome.NOT_RUN:
            ET.SubElement(case, "skipped", message=cell.not_run or "not run")
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _plain_finding(f: Finding, replay: str) -> list[str]:
    check = _check(f.check_id)
    lines = [f"{f.check_id} on {f.operation} ({f.origin})"]
    if check is not None:
        lines.append(f"rule: {check.rule}")
    lines.append(f"authority: {f.provenance}")
    lines.append(f"problem: {f.message}")
    if f.evidence is not None:
        lines += [f"request: {f.evidence.curl}", f"response: {f.evidence.status} {f.evidence.response[:1000]}"]
    lines.append(f"seed: {f.seed}  replay: {replay}")
    return lines


def to_markdown(report: RunReport) -> str:
    s = report.settings
    lines = [f"## harness check: {s.level.label} against `{s.api_url}`", ""]
    if report.error is not None:
        return "\n".join([*lines, f"**Could not run:** {report.error}", ""])
    counts = summary(report)
    verdict = "passed" if report.exit_code == 0 else "**failed**"
    lines += [f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['differs']} differ from the "
              f"reference, {counts['not run']} not run "
              f"(check x operation), seed `{s.seed}`, {report.duration_s:.1f}s", ""]
    cols = _columns(report)
    lines.append("| check | " + " | ".join(SHORT.get(op, op) for op in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for check_id in _rows(report):
        marks = []
        for op in cols:
            cell = report.results.cells.get((check_id, op))
            marks.append(PLAIN[cell.outcome] if cell is not None else "")
        lines.append(f"| {check_id} | " + " | ".join(marks) + " |")
    found = groups(report)
    for title, wanted in (("Failures", True), ("Differs from the reference server", False)):
        chosen = [g for g in found if g.counts == wanted]
        if not chosen:
            continue
        lines += ["", f"### {title}", ""]
        if not wanted:
            lines += ["Rules that stand on a decision of the reference (DECISIONS.md); they do not fail the run "
                      "unless `--strict`.", ""]
        lines += ["| check | authority | findings | operations | rule |", "|---|---|---|---|---|"]
        lines += [f"| {g.check_id} | {g.provenance} | {g.total} | {', '.join(g.operations)} | {g.rule} |"
                  for g in chosen]
        for g in chosen:
            example = g.findings[0]
            lines.append(f"- **{g.check_id}** on `{example.operation}`: {example.message}")
            if example.evidence is not None:
                lines += ["  ```", f"  {example.evidence.curl}",
                          f"  -> {example.evidence.status} {example.evidence.response[:300]}", "  ```"]
    if found:
        lines += ["", f"Replay: `{replay_command(report)}`"]
    return "\n".join(lines) + "\n"


def write_markdown(report: RunReport, path: Path) -> None:
    path.write_text(to_markdown(report), encoding="utf-8")
