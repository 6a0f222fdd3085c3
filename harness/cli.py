"""`harness serve | check | reconcile | spans | fixtures`: the one entry point for every user."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from harness.rebuild import RebuildReport
from harness.server.config import ConfigError, Tenancy, development_tenancy, load_tenancy

if TYPE_CHECKING:
    from harness.spans.source import SpanQuery, SpanSource

console = Console(stderr=True)


@click.group()
def main() -> None:
    """items-harness: reference server and conformance harness for the Items API."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _print_development_credentials(tenancy: Tenancy, base: str) -> None:
    table = Table(title="Development credentials (for local use only)")
    table.add_column("token")
    table.add_column("scopes")
    for credential in tenancy.credentials:
        table.add_row(credential.token or "", " ".join(sorted(credential.scopes)))
    console.print(table)
    console.print(f"API: {base}/api/v1/org/example/ws/example/projects/example/items   UI: {base}/api/v1/ui")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--db", "db_path", default="data/items.db", show_default=True, type=click.Path(path_type=Path),
              help="SQLite file for items; the default chDB span store lives in the same directory.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file of projects and credentials (see README). Default: development tenant.")
@click.option("--spans", "spans_dsn", default=None,
              help="Span store: chdb:///path (default: beside --db), http://user:pass@host:8123/db, or a folder "
                   "of span files.")
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes.")
@click.option("--allow-prefer", is_flag=True, help="Honour Prism's 'Prefer: code=NNN' header.")
@click.option("--validate-responses", is_flag=True, help="Check every response against openapi.yaml.")
@click.option("--rate-limit", default=1000.0, show_default=True, type=click.FloatRange(min=0),
              help="Requests per second per credential and worker, on average (0: no limit); over it: 429.")
@click.option("--rate-limit-burst", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Requests a credential may make at once before --rate-limit applies.")
@click.option("--rebuild-timeout", default=60.0, show_default=True, type=float,
              help="Seconds a span store query may take before rebuild answers 504.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log", is_flag=True, help="Log one line per request (method, path, status).")
def serve(
    host: str,
    port: int,
    db_path: Path,
    config_path: Path | None,
    spans_dsn: str | None,
    workers: int,
    allow_prefer: bool,
    validate_responses: bool,
    rate_limit: float,
    rate_limit_burst: int,
    rebuild_timeout: float,
    log_level: str,
    access_log: bool,
) -> None:
    """Start the reference server (Ctrl-C stops it)."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from harness.server.runtime import RuntimeOptions, export_options
    from harness.server.transport import BoundedHttpToolsProtocol

    if workers > 1 and (spans_dsn is None or spans_dsn.startswith("chdb:")):
        raise click.ClickException(
            "chDB serves one process per data directory, so --workers > 1 needs --spans "
            "http://user:pass@host:8123/db (a ClickHouse server) or a folder of span files"
        )

    try:
        tenancy = load_tenancy(config_path) if config_path else development_tenancy()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if tenancy.development and not _is_loopback(host):
        raise click.ClickException(
            f"refusing to listen on {host} with development credentials; pass --config with real ones"
        )
    log_config = copy.deepcopy(LOGGING_CONFIG)  # uvicorn's, plus a root handler: our logs and libraries' too
    log_config["root"] = {"handlers": ["default"], "level": log_level.upper()}
    for name in ("uvicorn", "uvicorn.error"):
        log_config["loggers"][name]["level"] = log_level.upper()
    log_config["loggers"]["uvicorn.access"]["level"] = "INFO" if access_log else "WARNING"
    options = RuntimeOptions(
        db_path=db_path.resolve(),
        config_path=config_path.resolve() if config_path else None,
        spans_dsn=spans_dsn,
        allow_prefer=allow_prefer,
        validate_responses=validate_responses,
        rate_limit=rate_limit,
        rate_limit_burst=rate_limit_burst,
        rebuild_timeout=rebuild_timeout,
    )
    export_options(options)
    if tenancy.development:
        _print_development_credentials(tenancy, f"http://{host}:{port}")
    uvicorn.run(
        "harness.server.runtime:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=BoundedHttpToolsProtocol,  # request heads over 64 KiB: 400 in the envelope, never buffered
        log_config=log_config,  # levels included: uvicorn's log_level would override the access log's
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )


def _report_table(report: RebuildReport) -> Table:
    table = Table(title="reconcile" + (" (dry run: nothing written)" if report.dry_run else ""))
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("meaning")
    rows = [
        ("processed", report.processed, "distinct items found in the spans (D6)"),
        ("created (healed)", len(report.created), "in the spans, missing from the table: created as extracted"),
        ("refreshed", len(report.refreshed), "span-owned fields changed (D8)"),
        ("unchanged", len(report.unchanged), "confirmed by the spans, nothing to write"),
        ("preserved", len(report.preserved), "existing rows whose disposition the rebuild kept"),
        ("superseded", report.superseded, "older reports of an item a later span reported again"),
        ("unrecoverable", report.stats.offloaded, "offloaded values (type uri): not in the span"),
        ("malformed", report.stats.malformed, "spans or outputs that could not be decoded: skipped"),
        ("ref collisions", len(report.ref_collisions), "refs another item holds: never taken over (D9)"),
        ("unresolved links", report.unresolved_links, "link targets not (yet) in the project"),
        ("spans read", report.stats.spans, "spans the query selected"),
    ]
    for name, count, meaning in rows:
        table.add_row(name, str(count), meaning)
    return table


@contextlib.contextmanager
def _reconcile_progress(source: SpanSource, query: SpanQuery) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr over the span input (bytes of span files, spans of ClickHouse), with the
    items found so far, their rate and the ETA; a source that cannot size its input gets a bar without
    a total."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    input_size = getattr(source, "input_size", None)
    total = input_size(query) if input_size is not None else None
    with Progress(TextColumn("reconciling"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TextColumn("{task.fields[items]:,} items, {task.fields[rate]}"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("reconcile", total=total, items=0, rate="")
        items = 0

        def advance(item_count: int, input_read: int) -> None:
            nonlocal items
            items += item_count
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(task, advance=input_read, items=items,
                       rate=f"{items / elapsed:,.0f} items/s" if elapsed else "")

        yield advance


@main.command()
@click.option("--spans", "spans_path", required=True,
              help="Span files or a folder of them, or a chdb:// / http:// ClickHouse DSN.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite items database (created if missing).")
@click.option("--session-id", default=None, help="Only spans of this session (default: every session).")
@click.option("--run-id", "run_ids", multiple=True, help="Only spans of this run (repeatable).")
@click.option("--org", default="example", show_default=True)
@click.option("--workspace", default="example", show_default=True)
@click.option("--project", default="example", show_default=True)
@click.option("--posts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON lines of create_item bodies whose POST landed, loaded first.")
@click.option("--patches", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON lines {dedupe_key, status, notes}: a human's triage, applied before the rebuild.")
@click.option("--dry-run", is_flag=True, help="Compute everything, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def reconcile(
    spans_path: str,
    db_path: Path,
    session_id: str | None,
    run_ids: tuple[str, ...],
    org: str,
    workspace: str,
    project: str,
    posts: Path | None,
    patches: Path | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Run reconcile offline and show what it created, refreshed, healed and preserved."""
    from harness.experiment import ExperimentProject, run_experiment
    from harness.items.store import ItemStore
    from harness.spans.errors import SpanStoreError
    from harness.spans.store import SpanStoreConfig, open_span_store

    store = ItemStore(db_path)
    experiment = ExperimentProject(org, workspace, project)
    try:
        source = open_span_store(SpanStoreConfig(dsn=spans_path, data_dir=db_path.parent))
        with _reconcile_progress(source, experiment.scope(session_id, run_ids).query()) as progress:
            report = run_experiment(store, source, experiment, session_id=session_id, run_ids=run_ids, posts=posts,
                                    patches=patches, dry_run=dry_run, progress=progress)
    except (SpanStoreError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    Console().print(_report_table(report))
    for collision in report.ref_collisions:
        Console().print(f"ref collision: '{collision.ref}' asked for by {collision.dedupe_key}, "
                        f"kept by {collision.held_by}")


@main.group()
def spans() -> None:
    """Span stores: load files into ClickHouse or chDB."""


@spans.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--into", "dsn", required=True, help="chdb:///path or http://user:pass@host:8123/db")
@click.option("--org", default=None, help="Record the spans as ingested for this organization.")
def spans_load(paths: tuple[Path, ...], dsn: str, org: str | None) -> None:
    """Load span files (OTLP/JSON, JSON lines, SDK mirror; folders too), creating otel_traces if missing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harness.model import DecodeStats
    from harness.spans.clickhouse import ClickHouseSpanStore
    from harness.spans.errors import SpanStoreError
    from harness.spans.files import iter_spans, span_files

    files = span_files(paths)
    total_bytes = sum(f.stat().st_size for f in files)
    stats = DecodeStats()
    try:
        store = ClickHouseSpanStore(dsn)
        store.ensure_schema()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("loading", total=total_bytes, rate="")
            loaded = 0
            done = 0
            for path in files:
                loaded += store.insert_spans(iter_spans([path], stats), org=org)
                done += path.stat().st_size
                elapsed = progress.tasks[0].elapsed or 0.0
                progress.update(task, completed=done, rate=f"{loaded / elapsed:,.0f} spans/s" if elapsed else "")
    except SpanStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"loaded {loaded} spans from {len(files)} files into {store.location.display}"
                  f" ({stats.malformed} malformed lines skipped)")


@main.group()
def fixtures() -> None:
    """Synthetic span fixtures for experiments and benchmarks."""


@fixtures.command("generate")
@click.option("--sessions", default=1, show_default=True, type=click.IntRange(min=0))
@click.option("--runs-per-session", default=2, show_default=True, type=click.IntRange(min=0))
@click.option("--items-per-run", default=10, show_default=True, type=click.IntRange(min=0))
@click.option("--failed-post-fraction", default=0.2, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Share of reported items whose direct POST failed (left out of posts.jsonl).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--project", default="example", show_default=True, help="The spans' dreadnode.project.")
@click.option("--format", "fmt", default="otlp-jsonl", show_default=True,
              type=click.Choice(["otlp-jsonl", "mirror"]))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def fixtures_generate(
    sessions: int,
    runs_per_session: int,
    items_per_run: int,
    failed_post_fraction: float,
    seed: int,
    project: str,
    fmt: str,
    out_dir: Path,
) -> None:
    """Write realistic synthetic spans (and posts.jsonl of the POSTs that landed) into --out."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harness.spans.synthetic import generate

    total = sessions * runs_per_session * items_per_run
    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("items"),
                  TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                  console=console) as progress:
        task = progress.add_task("items", total=total, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            speed = progress.tasks[0].speed
            progress.update(task, rate=f"{speed:,.0f} items/s" if speed else "")

        summary = generate(out_dir, sessions=sessions, runs_per_session=runs_per_session,
                           items_per_run=items_per_run, failed_post_fraction=failed_post_fraction, seed=seed,
                           project=project, fmt=fmt, progress=advance)
    console.print(
        f"{summary.spans} spans, {summary.items} items ({summary.offloaded} offloaded, {summary.malformed} "
        f"malformed spans), {summary.posted} posted, in {len(summary.span_files)} files under {out_dir}"
    )


def _register_check() -> None:
    from harness.conformance.command import check

    main.add_command(check)


_register_check()


if __name__ == "__main__":
    sys.exit(main())
