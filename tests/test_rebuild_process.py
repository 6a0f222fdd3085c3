"""What a rebuild leaves behind in the process that ran it, and the ids it hands out."""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.experiment import ExperimentProject
from harness.items.store import ItemStore, new_id
from harness.model import DecodeStats, SpanItem
from harness.rebuild import REBUILD_GC_THRESHOLD, rebuild
from harness.spans.errors import SpanStoreUnavailable
from harness.spans.files import FileSpanSource
from harness.spans.source import SpanQuery

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCOPE = ExperimentProject("example", "example", "example").scope(None, ())


class FailingSource:
    """A span store that goes away part way, after one batch's worth of items."""

    def __init__(self, inner: FileSpanSource) -> None:
        self.inner = inner
        self.thresholds_seen: list[tuple[int, int, int]] = []

    def item_spans(self, query: SpanQuery, stats: DecodeStats) -> Iterator[SpanItem]:
        self.thresholds_seen.append(gc.get_threshold())
        yield from self.inner.item_spans(query, stats)
        raise SpanStoreUnavailable("the span store went away")


def test_collector_thresholds_are_raised_during_a_rebuild_and_restored_after_even_a_failed_one(
    tmp_path: Path,
) -> None:
    before = gc.get_threshold()
    assert before != REBUILD_GC_THRESHOLD
    store = ItemStore(tmp_path / "items.db")
    try:
        source = FailingSource(FileSpanSource([FIXTURES / "default"]))
        with pytest.raises(SpanStoreUnavailable):
            rebuild(store, source, SCOPE)
        assert source.thresholds_seen == [REBUILD_GC_THRESHOLD]
        assert gc.get_threshold() == before
        assert store.query("SELECT COUNT(*) AS n FROM items")[0]["n"] == 0  # rolled back
        report = rebuild(store, FileSpanSource([FIXTURES / "default"]), SCOPE)
        assert report.processed == 3 and gc.get_threshold() == before
    finally:
        store.close()


def test_ids_are_uuids_that_sort_in_the_order_they_were_made() -> None:
    """Time-ordered ids keep index inserts at the end of each id index (bench/scaling.py)."""
    earlier = [new_id() for _ in range(300)]  # more than one buffer of random bytes
    time.sleep(0.002)
    later = [new_id() for _ in range(300)]
    assert len(set(earlier + later)) == 600
    assert all(uuid.UUID(i).version == 7 and str(uuid.UUID(i)) == i for i in earlier + later)
    assert max(earlier) < min(later)
    assert abs((uuid.UUID(later[0]).int >> 80) - time.time_ns() // 1_000_000) < 5_000  # milliseconds since 1970
