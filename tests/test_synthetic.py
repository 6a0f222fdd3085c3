"""Synthetic spans: they decode to exactly what the generator says it wrote, the same for a seed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.model import DecodeStats, SpanItem
from harness.spans import synthetic
from harness.spans.files import FileSpanSource, iter_spans
from harness.spans.source import SpanQuery
from harness.spans.synthetic import FORMATS, GenerationSummary, generate

QUERY = SpanQuery(project_keys=frozenset({"example"}))


def small(
    out_dir: Path,
    *,
    fmt: str = "otlp-jsonl",
    seed: int = 7,
    sessions: int = 2,
    failed_post_fraction: float = 0.3,
    progress: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """The small example: 2 sessions x 2 runs x 5 items."""
    return generate(
        out_dir,
        sessions=sessions,
        runs_per_session=2,
        items_per_run=5,
        failed_post_fraction=failed_post_fraction,
        seed=seed,
        fmt=fmt,
        progress=progress,
    )


def decode(out_dir: Path, query: SpanQuery = QUERY) -> tuple[list[SpanItem], DecodeStats]:
    stats = DecodeStats()
    return list(FileSpanSource([out_dir]).item_spans(query, stats)), stats


def posts(summary: GenerationSummary) -> list[dict[str, Any]]:
    assert summary.posts_file is not None
    return [json.loads(line) for line in summary.posts_file.read_text().splitlines()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_small_example_decodes_to_the_summary(tmp_path: Path, fmt: str) -> None:
    summary = small(tmp_path, fmt=fmt)
    items, stats = decode(tmp_path)
    assert (summary.sessions, summary.runs) == (2, 4)
    assert len(summary.session_ids) == len(set(summary.session_ids)) == 2
    assert len(items) == summary.items
    assert (stats.spans, stats.item_outputs, stats.offloaded, stats.malformed) == (
        summary.spans,
        summary.item_outputs,
        summary.offloaded,
        summary.malformed,
    )
    assert summary.items + summary.offloaded == 2 * 2 * 5
    assert summary.offloaded >= 1 and summary.malformed >= 1
    assert len({item.envelope.dedupe_key for item in items}) == summary.items
    assert {item.session_id for item in items} == set(summary.session_ids)
    assert len({item.run_id for item in items}) == 4
    for session_id in summary.session_ids:
        narrowed, _ = decode(tmp_path, SpanQuery(project_keys=frozenset({"example"}), session_id=session_id))
        assert narrowed and all(item.session_id == session_id for item in narrowed)


def test_the_first_run_exercises_every_decoder_path(tmp_path: Path) -> None:
    summary = small(tmp_path)
    spans = list(iter_spans([tmp_path]))
    outputs = [json.loads(s.attributes["dreadnode.outputs"]) for s in spans if s.name.startswith("tool:")]
    assert any(sum(o["name"] == "item" for o in out) > 1 for out in outputs if isinstance(out, list))
    objects_text = "".join(str(s.attributes.get("dreadnode.objects")) for s in spans)
    assert '"value_":' in objects_text and '"type":"uri"' in objects_text
    assert sum(s.name.startswith("agent:") for s in spans) == summary.runs
    assert all(s.parent_span_id for s in spans if s.name.startswith("tool:"))

    items, _ = decode(tmp_path)
    asset_refs = {(i.run_id, i.envelope.ref) for i in items if i.envelope.item_type == "asset"}
    links = [(item.run_id, link) for item in items for link in item.envelope.links]
    assert links and all(link.relationship == "affects" for _, link in links)
    assert all((run_id, link.target_ref) in asset_refs for run_id, link in links)  # same run, by ref
    assert {item.envelope.item_type for item in items} == {"asset", "finding"}
    findings = [item for item in items if item.envelope.item_type == "finding"]
    assert all(set(f.envelope.data) >= {"severity", "category", "evidence"} for f in findings)


def test_posts_are_the_runtime_bodies_of_successful_posts(tmp_path: Path) -> None:
    summary = small(tmp_path)
    bodies = posts(summary)
    assert len(bodies) == summary.posted
    assert 0 < summary.posted < summary.items + summary.offloaded
    items, _ = decode(tmp_path)
    by_key = {item.envelope.dedupe_key: item.envelope for item in items}
    assert len({b["dedupe_key"] for b in bodies}) == len(bodies)
    for body in bodies:
        assert body["source"] == "runtime"
        assert None not in body.values()
        envelope = by_key.get(body["dedupe_key"])
        if envelope is None:
            continue  # an offloaded item: POSTed, but not recoverable from its span
        assert (body["item_type"], body["data"], body.get("ref"), body["title"], body["schema_ref"]) == (
            envelope.item_type,
            envelope.data,
            envelope.ref,
            envelope.title,
            envelope.schema_ref,
        )
        assert body.get("session_id") in (None, envelope.session_id)
        assert [link["target_ref"] for link in body.get("links", [])] == [link.target_ref for link in envelope.links]


@pytest.mark.parametrize(("fraction", "expect_all"), [(0.0, True), (1.0, False)])
def test_failed_post_fraction_bounds(tmp_path: Path, fraction: float, expect_all: bool) -> None:
    summary = small(tmp_path, failed_post_fraction=fraction)
    assert summary.posted == (summary.items + summary.offloaded if expect_all else 0)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = small(tmp_path / "a")
    b = small(tmp_path / "b")
    c = small(tmp_path / "c", seed=8)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a.session_ids == b.session_ids != c.session_ids
    assert (tmp_path / "a" / "posts.jsonl").read_bytes() != (tmp_path / "c" / "posts.jsonl").read_bytes()


def test_otlp_and_mirror_carry_the_same_items(tmp_path: Path) -> None:
    small(tmp_path / "otlp", fmt="otlp-jsonl")
    small(tmp_path / "mirror", fmt="mirror")
    otlp_items, otlp_stats = decode(tmp_path / "otlp")
    mirror_items, mirror_stats = decode(tmp_path / "mirror")
    assert otlp_items == mirror_items
    assert (otlp_stats.spans, otlp_stats.item_outputs, otlp_stats.offloaded, otlp_stats.malformed) == (
        mirror_stats.spans,
        mirror_stats.item_outputs,
        mirror_stats.offloaded,
        mirror_stats.malformed,
    )


def test_span_files_rotate_and_progress_advances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "SPANS_PER_FILE", 5)
    advanced: list[int] = []
    summary = small(tmp_path, progress=advanced.append)
    assert len(summary.span_files) > 2 and all(p.is_file() for p in summary.span_files)
    assert sum(advanced) == summary.items + summary.offloaded and len(advanced) == summary.runs
    items, stats = decode(tmp_path)
    assert len(items) == summary.items and stats.spans == summary.spans


def test_every_malformation_counts_once(tmp_path: Path) -> None:
    summary = generate(tmp_path, sessions=40, runs_per_session=3, items_per_run=3, failed_post_fraction=0, seed=3)
    items, stats = decode(tmp_path)
    assert summary.malformed >= len(synthetic.MALFORMATIONS)
    assert (len(items), stats.offloaded, stats.malformed, stats.item_outputs) == (
        summary.items,
        summary.offloaded,
        summary.malformed,
        summary.item_outputs,
    )


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        small(tmp_path, failed_post_fraction=1.5)
    with pytest.raises(ValueError):
        small(tmp_path, fmt="csv")
    with pytest.raises(ValueError):
        small(tmp_path, sessions=-1)
    empty = small(tmp_path / "empty", sessions=0)
    assert (empty.spans, empty.items, empty.posted) == (0, 0, 0)
