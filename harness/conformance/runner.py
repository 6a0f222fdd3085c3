"""One `harness check` run: preflight, our probes level by level, then Schemathesis; the outcome and exit code.

Exit codes follow Schemathesis: 0 every check passed, 1 a check failed, 2 the suite could not run
(target unreachable, spec or credentials unusable).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from harness.conformance import auth_checks, input_checks, item_checks, list_checks, read_checks, span_checks
from harness.conformance.catalogue import OWN_CHECKS, SCHEMATHESIS_CHECKS, TOUCHED, Level
from harness.conformance.context import CheckFailed, Context
from harness.conformance.operations import operations
from harness.conformance.rebuild_checks import check_rebuild_without_spans
from harness.conformance.results import Redactor, Results
from harness.conformance.schemathesis_run import NOT_TESTED_BY_SCHEMATHESIS, run_schemathesis
from harness.conformance.scratch import create_scratch, obj
from harness.conformance.settings import Settings

Progress = Callable[[str], None]
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
NEEDED_GRANTS = {Level.CONTRACT: ("read",), Level.STATEFUL: ("read", "write"), Level.FULL: ("read", "write", "admin")}


@dataclass
class RunReport:
    settings: Settings
    results: Results
    started_at: float = field(default_factory=time.time)
    duration_s: float = 0.0
    error: str | None = None
    """Why the run could not run (exit 2)."""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_ERROR
        return EXIT_OK if self.results.ok else EXIT_FAILED


class CannotRun(Exception):
    """The target, the spec or the credentials are unusable: exit 2."""


def preflight(ctx: Context) -> None:
    """The spec loads, the target answers, and the main credential may do what the level needs."""
    try:
        operations()
    except Exception as exc:
        raise CannotRun(f"openapi.yaml is unusable: {exc}") from exc
    try:
        ex = ctx.api.call("get_item_access")
    except httpx.HTTPError as exc:
        raise CannotRun(f"{ctx.settings.api_url} is unreachable: {type(exc).__name__}: {exc}") from exc
    s = ctx.settings
    if ex.status == 401:
        raise CannotRun("the main credential is not accepted (401 on get_item_access)")
    if ex.status == 404:
        raise CannotRun(f"project {s.org}/{s.workspace}/{s.project} does not exist or the main credential may not "
                        "see it (404 on get_item_access)")
    grants = obj(ex)
    if ex.status != 200 or not grants:
        raise CannotRun(f"get_item_access answered {ex.status} {ex.response_body[:200]!r}; cannot tell what the "
                        "main credential may do")
    missing = [g for g in NEEDED_GRANTS[s.level] if grants.get(g) is not True]
    if missing:
        raise CannotRun(f"--level {s.level.label} needs items:{', items:'.join(missing)} on the main credential "
                        f"(get_item_access says {grants})")


def _timed(report: RunReport, name: str, progress: Progress, step: Callable[[], None],
           level: Level | None = None) -> None:
    """Run one step; if it stops early, the checks of `level` it did not reach say why (not run)."""
    progress(name)
    started = time.monotonic()
    try:
        step()
    except CheckFailed as exc:
        for check in OWN_CHECKS:
            if level is not None and check.level == level:
                report.results.not_run(check.id, TOUCHED.get(check.id, ()), f"stopped early: {exc}")
    report.timings[name] = round(time.monotonic() - started, 2)


def _stateful(ctx: Context) -> None:
    scratch = create_scratch(ctx)
    list_checks.run_all(ctx, scratch)
    item_checks.run_all(ctx, scratch)
    check_rebuild_without_spans(ctx, scratch)


def _mark_not_run(settings: Settings, results: Results) -> None:
    for check in OWN_CHECKS:
        if check.level > settings.level:
            results.not_run(check.id, TOUCHED.get(check.id, ()), f"needs --level {check.level.label}")
    for check in SCHEMATHESIS_CHECKS:
        for op in operations():
            if op in NOT_TESTED_BY_SCHEMATHESIS:
                continue
            if not settings.schemathesis:
                results.not_run(check.id, [op], "Schemathesis disabled for this run")
            elif settings.level == Level.CONTRACT and operations()[op].writes:
                results.not_run(check.id, [op], "writes are generated from --level stateful")


def run(settings: Settings, progress: Progress = lambda _m: None) -> RunReport:
    results = Results(Redactor(settings.secrets()), settings.seed, settings.strict)
    report = RunReport(settings, results)
    ctx = Context(settings, results)
    started = time.monotonic()
    try:
        progress("preflight")
        preflight(ctx)
        _timed(report, "auth, scopes, tenancy", progress, lambda: auth_checks.run_all(ctx))
        _timed(report, "input and methods", progress, lambda: input_checks.run_all(ctx))
        _timed(report, "reads", progress, lambda: read_checks.run_all(ctx))
        if settings.level >= Level.STATEFUL:
            _timed(report, "items, lists, rebuild invariants", progress, lambda: _stateful(ctx), Level.STATEFUL)
        if settings.level >= Level.FULL:
            _timed(report, "spans over OTLP and rebuild", progress, lambda: span_checks.run_all(ctx), Level.FULL)
        if settings.schemathesis:
            ok = True

            def generated() -> None:
                nonlocal ok
                ok = run_schemathesis(settings, results, progress)

            _timed(report, "Schemathesis", progress, generated)
            if not ok:
                raise CannotRun("Schemathesis could not run: " + "; ".join(results.notes[-1:]))
        _mark_not_run(settings, results)
    except CannotRun as exc:
        report.error = results.redact(str(exc))
    except httpx.HTTPError as exc:
        report.error = results.redact(f"lost the connection to {settings.api_url}: {type(exc).__name__}: {exc}")
    finally:
        ctx.api.close()
        report.duration_s = round(time.monotonic() - started, 2)
    return report
