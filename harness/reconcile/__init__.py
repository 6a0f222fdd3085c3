"""Pure reconcile: span reports + existing rows -> row and link changes (no I/O, no clock, no randomness)."""

from harness.reconcile.digest import reflected_digests, report_digest
from harness.reconcile.links import LinkPlan, plan_links, resolve_link_target
from harness.reconcile.merge import (
    disposition_from_envelope,
    json_equal,
    latest_reports,
    reconcile,
    span_owned_values,
)
from harness.reconcile.refs import RefRequest, resolve_refs

__all__ = [
    "LinkPlan",
    "RefRequest",
    "disposition_from_envelope",
    "json_equal",
    "latest_reports",
    "plan_links",
    "reconcile",
    "reflected_digests",
    "report_digest",
    "resolve_link_target",
    "resolve_refs",
    "span_owned_values",
]
