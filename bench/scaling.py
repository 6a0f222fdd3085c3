"""Cost follows the session, not the store (issue 5, target 2). chDB span stores (the server's default).

Part 1, store sizes: the same 100-item session ("probe") rebuilt in stores of 10,000, 100,000 and
1,000,000 items: spans in chDB (the probe's spans plus the store's others), and an items database
holding every item of the store (made once by a full rebuild, cached). After one unrecorded warm-up
round, measured, median of `--repeat`:
- heal: the probe's rows deleted (untimed), then the rebuild that creates them again (100 creates,
  their events and links);
- unchanged: the rebuild again, nothing having changed.
Target: the 1,000,000 case at most 1.5x the 10,000 case.

Part 2, session sizes: sessions of 100, 1,000, 10,000 and 100,000 items in one chDB store, each
rebuilt into a fresh items database (a first rebuild: every item created). Target: 10x the items takes
at most 12x the time, at every step.

    python bench/scaling.py                  # the issue's sizes (datasets and stores cached in /tmp)
    python bench/scaling.py --scale 0.01     # stores of 1,000 / 1,000 / 10,000: a smoke run
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from pathlib import Path
from typing import Any

import common


def items_db(cache: Path, dsn: str, name: str, expected: int) -> Path:
    """An items database holding every item of the store (one full rebuild, cached)."""
    from harness.items.store import ItemStore

    db = cache / "work" / f"items-{name}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    marker = db.with_suffix(".done")
    schema = hashlib.sha256(b"".join((common.ROOT / "harness" / "items" / name).read_bytes()
                                     for name in ("schema.py", "store.py"))).hexdigest()[:16]
    if marker.exists() and json.loads(marker.read_text()).get("key") == [dsn, schema]:
        return db
    common.fresh_db(db)
    common.log(f"building items database {db.name} from {name} (once; cached)")
    seconds, report = common.timed_rebuild(db, common.open_source(dsn))
    if report.processed < expected:
        raise RuntimeError(f"{db} holds {report.processed} items, expected at least {expected}")
    store = ItemStore(db)
    store.close()
    marker.write_text(json.dumps({"key": [dsn, schema], "items": report.processed, "seconds": round(seconds, 1)}))
    return db


def forget_session(db: Path, session_id: str) -> int:
    """Delete a session's rows (and their links, events, digests) as if their POSTs had never landed."""
    from harness.items.store import ItemStore

    store = ItemStore(db)
    try:
        with store.write() as conn:
            ids = [r["id"] for r in store.query("SELECT id FROM items WHERE session_id = ?", [session_id])]
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                marks = ",".join("?" * len(part))
                conn.execute(f"DELETE FROM links WHERE source_item_id IN ({marks})", part)
                conn.execute(f"DELETE FROM links WHERE target_item_id IN ({marks})", part)
                conn.execute(f"DELETE FROM events WHERE item_id IN ({marks})", part)
                conn.execute(f"DELETE FROM items WHERE id IN ({marks})", part)
        return len(ids)
    finally:
        store.close()


def store_sizes(args: Any, results: common.Results) -> None:
    cache: Path = args.cache
    probe = common.probe_dataset()
    probe_summary = probe.summary(cache)
    session_id = probe_summary["session_ids"][0]
    heal: dict[int, list[float]] = {}
    unchanged: dict[int, list[float]] = {}
    sources: dict[int, tuple[Any, Path]] = {}
    for size in common.store_sizes(args.scale):
        fill = common.fill_dataset(size)
        fill.summary(cache)
        dsn = common.ensure_chdb(cache, f"store_{size}", [fill, probe])
        db = items_db(cache, dsn, f"store_{size}", size // 2)
        sources[size] = (common.open_source(dsn), db)
    for rep in range(-1, args.repeat):  # rep -1 warms the OS page cache and the engine; not recorded
        for size, (source, db) in sources.items():  # interleaved: noise hits every size alike
            forget_session(db, session_id)
            healed, report = common.timed_rebuild(db, source, session_id)
            assert len(report.created) == report.processed > 0, report.to_json()
            again, report = common.timed_rebuild(db, source, session_id)
            assert len(report.created) == 0
            if rep < 0:
                continue
            heal.setdefault(size, []).append(healed)
            unchanged.setdefault(size, []).append(again)
            common.log(f"rep {rep + 1}: store of {size:,}: heal {healed * 1000:.0f} ms, "
                       f"unchanged {again * 1000:.0f} ms ({report.processed} items)")
    small, large = min(sources), max(sources)
    for label, runs in (("heal", heal), ("unchanged", unchanged)):
        ratio = common.median(runs[large]) / common.median(runs[small])
        measured = ", ".join(f"{size:,}: {common.median(runs[size]) * 1000:.0f} ms" for size in sorted(runs))
        results.add(f"100-item session rebuild ({label}), store of {large:,} <= 1.5x store of {small:,}",
                    measured, ratio, ratio <= 1.5)
    results.details["store_sizes"] = {"heal_s": heal, "unchanged_s": unchanged, "probe_items": probe_summary["items"]}


def session_sizes(args: Any, results: common.Results) -> None:
    cache: Path = args.cache
    sizes = common.session_sizes(args.scale)
    datasets = {size: common.session_dataset(size) for size in sizes}
    summaries = {size: d.summary(cache) for size, d in datasets.items()}
    dsn = common.ensure_chdb(cache, "sessions", list(datasets.values()))
    source = common.open_source(dsn)
    db = cache / "work" / "session-sizes.db"
    runs: dict[int, list[float]] = {}
    processed: dict[int, int] = {}
    for rep in range(args.repeat):
        for size in sizes:
            common.fresh_db(db)
            seconds, report = common.timed_rebuild(db, source, summaries[size]["session_ids"][0])
            runs.setdefault(size, []).append(seconds)
            processed[size] = report.processed
            common.log(f"rep {rep + 1}: session of {report.processed:,} items: {seconds:.2f}s "
                       f"({report.processed / seconds:,.0f} items/s)")
    common.fresh_db(db)
    medians = {size: common.median(runs[size]) for size in sizes}
    worst = 0.0
    steps = []
    for smaller, larger in itertools.pairwise(sizes):
        growth = medians[larger] / medians[smaller]
        worst = max(worst, growth / (processed[larger] / processed[smaller]) * 10)
        steps.append(f"{processed[smaller]:,}->{processed[larger]:,}: x{growth:.1f}")
    results.add("session sizes: 10x the items <= 12x the time (worst step, scaled to exactly 10x)",
                "; ".join(steps) + " (" + ", ".join(f"{processed[s]:,}: {medians[s]:.2f}s" for s in sizes) + ")",
                worst, worst <= 12)
    results.details["session_sizes"] = {"seconds": runs, "processed": processed}


def main() -> None:
    p = common.parser(__doc__ or "")
    p.add_argument("--part", choices=("all", "stores", "sessions"), default="all")
    args = p.parse_args()
    results = common.Results("scaling", common.command_line(), args.scale)
    started = time.perf_counter()
    if args.part in ("all", "stores"):
        store_sizes(args, results)
    if args.part in ("all", "sessions"):
        session_sizes(args, results)
    results.details["wall_s"] = round(time.perf_counter() - started, 1)
    results.save(args.cache)


if __name__ == "__main__":
    main()
