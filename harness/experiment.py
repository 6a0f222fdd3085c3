"""Offline reconcile experiments: play the POSTs that landed and a human's triage, then rebuild from spans.

`harness reconcile` is this module plus a table; tests call it directly to hold the fixtures to the
counts fixtures/README.md states.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.items.store import UNSET, Actor, ItemPatch, ItemStore, NewItem
from harness.rebuild import RebuildReport, RebuildScope, rebuild
from harness.reconcile import plan_links
from harness.server.config import org_uuid, project_uuid
from harness.spans.source import SpanSource

AGENT = Actor("agent", "experiment")
HUMAN = Actor("user", "experiment")


@dataclass(frozen=True)
class ExperimentProject:
    org: str = "example"
    workspace: str = "example"
    project: str = "example"

    @property
    def project_id(self) -> str:
        """The same UUID `harness serve` gives this project, so a database can be served afterwards."""
        return project_uuid(self.org, self.workspace, self.project)

    def scope(self, session_id: str | None, run_ids: tuple[str, ...]) -> RebuildScope:
        return RebuildScope(
            organization_id=org_uuid(self.org),
            project_id=self.project_id,
            project_keys=frozenset({self.project, self.project_id}),
            org=self.org,
            session_id=session_id.lower() if session_id else None,
            run_ids=run_ids,
        )


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_posts(store: ItemStore, project: ExperimentProject, path: Path) -> int:
    """The create_item bodies whose POST landed, as the server would have stored them."""
    count = 0
    for body in _json_lines(path):
        store.create_item(org_uuid(project.org), project.project_id, NewItem.from_body(body), AGENT, plan_links)
        count += 1
    return count


def apply_patches(store: ItemStore, project: ExperimentProject, path: Path) -> int:
    """A human's triage: `{"dedupe_key", "status", "notes"}` lines, applied like update_item."""
    count = 0
    for line in _json_lines(path):
        row = store.item_by_dedupe_key(project.project_id, line["dedupe_key"])
        if row is None:
            continue
        store.update_item(project.project_id, row.id, ItemPatch(status=line.get("status", UNSET),
                                                                notes=line.get("notes", UNSET)), HUMAN)
        count += 1
    return count


def run_experiment(
    store: ItemStore,
    source: SpanSource,
    project: ExperimentProject,
    *,
    session_id: str | None = None,
    run_ids: tuple[str, ...] = (),
    posts: Path | None = None,
    patches: Path | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    if posts is not None:
        load_posts(store, project, posts)
    if patches is not None:
        apply_patches(store, project, patches)
    return rebuild(store, source, project.scope(session_id, run_ids), dry_run=dry_run, progress=progress)
