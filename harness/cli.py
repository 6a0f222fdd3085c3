"""`harness serve | check | reconcile | spans | fixtures`: the one entry point for every user."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from harness.server.config import ConfigError, Tenancy, development_tenancy, load_tenancy

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
@click.option("--rate-limit", default=0.0, show_default=True, type=float,
              help="Requests per second per credential (0: no limit).")
@click.option("--rebuild-timeout", default=60.0, show_default=True, type=float,
              help="Seconds a span store query may take before rebuild answers 504.")
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
    rebuild_timeout: float,
) -> None:
    """Start the reference server (Ctrl-C stops it)."""
    import uvicorn

    from harness.server.runtime import RuntimeOptions, export_options

    try:
        tenancy = load_tenancy(config_path) if config_path else development_tenancy()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if tenancy.development and not _is_loopback(host):
        raise click.ClickException(
            f"refusing to listen on {host} with development credentials; pass --config with real ones"
        )
    options = RuntimeOptions(
        db_path=db_path.resolve(),
        config_path=config_path.resolve() if config_path else None,
        spans_dsn=spans_dsn,
        allow_prefer=allow_prefer,
        validate_responses=validate_responses,
        rate_limit=rate_limit,
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
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    sys.exit(main())
