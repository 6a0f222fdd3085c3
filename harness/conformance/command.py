"""`harness check`: its options are a contract CI pipelines script against; change them only compatibly."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console

from harness.conformance.catalogue import Level
from harness.conformance.reports import print_console, write_json, write_junit, write_markdown
from harness.conformance.runner import EXIT_ERROR, run
from harness.conformance.settings import Credential, Settings

LEVELS = [level.label for level in Level]


@click.command()
@click.option("--base-url", required=True, help="Server root; the API lives under /api/v1.")
@click.option("--token", envvar="HARNESS_TOKEN", default=None,
              help="Main credential as a Bearer token (items:read, write, admin); env HARNESS_TOKEN.")
@click.option("--api-key", default=None, help="Main credential as an X-API-Key instead of --token.")
@click.option("--reader-token", default=None, help="A read-only credential, for the 403 checks.")
@click.option("--other-tenant-token", default=None, help="A credential of another organization (isolation checks).")
@click.option("--org", default="example", show_default=True)
@click.option("--workspace", default="example", show_default=True)
@click.option("--project", default="example", show_default=True, help="A scratch project from --level stateful.")
@click.option("--level", type=click.Choice(LEVELS), default="stateful", show_default=True,
              help="contract: changes nothing; stateful: writes tagged items; full: also seeds spans over OTLP.")
@click.option("--otlp-url", default=None, help="Default: {base-url}/api/v1/org/{org}/otel/traces.")
@click.option("--max-examples", type=click.IntRange(min=1), default=10, show_default=True,
              help="Schemathesis examples per operation and phase.")
@click.option("--seed", type=int, default=None, help="Replay a run: the seed every failure prints.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--rate-limit", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Requests per second (0: no limit).")
@click.option("--strict", is_flag=True, default=False,
              help="Also fail on differences from the reference server (rules that stand on a decision of this "
                   "project, not on the documentation or a standard).")
@click.option("--junit-xml", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None)
def check(
    base_url: str,
    token: str | None,
    api_key: str | None,
    reader_token: str | None,
    other_tenant_token: str | None,
    org: str,
    workspace: str,
    project: str,
    level: str,
    otlp_url: str | None,
    max_examples: int,
    seed: int | None,
    workers: int,
    rate_limit: float,
    strict: bool,
    junit_xml: Path | None,
    json_path: Path | None,
    markdown: Path | None,
) -> None:
    """Check that the Items API at BASE_URL keeps the contract; exit 0 pass, 1 fail, 2 could not run."""
    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=160)  # CI logs: wide enough for the matrix and curl lines
    if bool(token) == bool(api_key):
        console.print("[bold red]could not run:[/] give exactly one main credential: --token (or HARNESS_TOKEN) "
                      "or --api-key")
        sys.exit(EXIT_ERROR)
    credential = Credential(token, "bearer") if token else Credential(api_key or "", "api-key")
    settings = Settings(
        base_url=base_url, credential=credential, org=org, workspace=workspace, project=project,
        level=Level.parse(level), reader=Credential(reader_token) if reader_token else None,
        other_tenant=Credential(other_tenant_token) if other_tenant_token else None, otlp_url=otlp_url,
        max_examples=max_examples, workers=workers, rate_limit=rate_limit, strict=strict,
    )
    if seed is not None:
        settings = replace(settings, seed=seed)
    with console.status("harness check: starting") as status:
        report = run(settings, progress=lambda message: status.update(f"harness check: {message}"))
    print_console(report, console)
    for path, write in ((junit_xml, write_junit), (json_path, write_json), (markdown, write_markdown)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(report, path)
    sys.exit(report.exit_code)
