"""Pure reconcile: span reports + existing rows -> row and link changes (no I/O, no clock, no randomness)."""

from harness.reconcile.links import LinkPlan, plan_links, resolve_link_target
from harness.reconcile.merge import disposition_from_envelope, json_equal, reconcile, span_owned_values
from harness.reconcile.refs import RefRequest, resolve_refs

__all__ = [
    "LinkPlan",
    "RefRequest",
    "disposition_from_envelope",
    "json_equal",
    "plan_links",
    "reconcile",
    "resolve_link_target",
    "resolve_refs",
    "span_owned_values",
]
