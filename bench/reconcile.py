"""Reconcile throughput (issue 5, target 1): rebuild of 200,000 item envelopes into a fresh SQLite file.

In one process and interleaved, each repetition measures:

- the floor: `json.loads` of the same envelopes (their JSON text, read into memory beforehand) plus one
  `sqlite3.executemany` INSERT of equivalent rows (same table, indexes, column values, WAL and
  synchronous=FULL) in one transaction;
- `harness.rebuild.rebuild` of every item span of the project, from the span files and from chDB
  (through clickhouse-connect), into a fresh items database: the first rebuild;
- the same rebuild again, nothing having changed: the second rebuild.

Targets: first rebuild >= 0.5 x the floor's items/s; second rebuild >= 3x faster than the first.
Reported: medians over `--repeat` repetitions, and the median of the per-repetition ratios (each ratio
pairs two runs measured minutes apart, not hours).

    python bench/reconcile.py                  # the issue's 200,000 items (datasets cached in /tmp)
    python bench/reconcile.py --scale 0.05     # 10,000 items, a smoke run
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import common

ENVELOPES = "floor-envelopes.txt"
"""Beside the span files, under a name a rebuild never reads as spans (`.txt`): an earlier
`envelopes.jsonl` was read by every files rebuild as 200,000 malformed span lines."""


def envelope_texts(dataset: common.Dataset, cache: Path) -> list[str]:
    """The JSON text of every readable envelope of the dataset (14 keys, as the SDK records them)."""
    path = dataset.path(cache) / ENVELOPES
    if not path.exists():
        from harness.model import ENVELOPE_KEYS, DecodeStats

        common.log(f"extracting envelopes of {dataset.name} for the floor (once; cached)")
        source = common.open_source(dataset.path(cache))
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            for item in source.item_spans(common.scope().query(), DecodeStats()):
                envelope = {key: getattr(item.envelope, key) for key in ENVELOPE_KEYS}
                envelope["links"] = [
                    {k: v for k, v in (("relationship", s.relationship), ("target_ref", s.target_ref),
                                       ("target_item_id", s.target_item_id)) if v is not None}
                    for s in item.envelope.links
                ]
                out.write(json.dumps(envelope, ensure_ascii=False) + "\n")
        tmp.rename(path)
    return path.read_text(encoding="utf-8").splitlines()


def floor(texts: list[str], db: Path) -> float:
    """Seconds to json.loads every envelope and INSERT equivalent rows with one executemany."""
    from harness.items.rows import ROW_COLUMNS
    from harness.items.store import ItemStore, utc_now

    common.fresh_db(db)
    ItemStore(db).close()  # the same schema, indexes and pragmas as the real store
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    sql = f"INSERT INTO items ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
    severities = {"critical", "high", "medium", "low", "info"}
    started = time.perf_counter()
    now = utc_now()
    conn.execute("BEGIN IMMEDIATE")
    rows: list[tuple[Any, ...]] = []
    for text in texts:
        e = json.loads(text)
        data = e["data"]
        data_json = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        severity = data.get("severity")
        rows.append((
            str(uuid.uuid4()), "org", "project", e["item_type"], data_json, e["title"], e["ref"], e["dedupe_key"],
            e["schema_ref"], e["session_id"], e["trace_id"], e["span_id"], e["capability"],
            e["capability_version"], "extracted", 0, None, None, None, None, now, None, now, None,
            json.dumps(e["links"], separators=(",", ":"), sort_keys=True),
            severity.lower() if isinstance(severity, str) and severity.lower() in severities else None,
            data.get("category") if isinstance(data.get("category"), str) else None,
            f"{e['title'] or ''}\n{data_json}".lower(),
        ))
    conn.executemany(sql, rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def read_floor(dataset: common.Dataset, cache: Path) -> float:
    """Seconds to `json.loads` every line of the dataset's span files and nothing else (informative:
    what reading the span files costs before any decoding, the part of a rebuild from files the floor
    does not have)."""
    started = time.perf_counter()
    for path in sorted(dataset.path(cache).glob("spans-*.jsonl")):
        with path.open("rb") as fh:
            for line in fh:
                json.loads(line)
    return time.perf_counter() - started


def main() -> None:
    p = common.parser(__doc__ or "")
    p.add_argument("--sources", default="files,chdb", help="Comma-separated: files, chdb.")
    args = p.parse_args()
    cache: Path = args.cache
    dataset = common.reconcile_dataset(args.scale)
    summary = dataset.summary(cache)
    dsns = common.source_dsns(args.sources, cache, dataset, f"reconcile_{summary['items']}", [dataset])
    sources = list(dsns)
    texts = envelope_texts(dataset, cache)
    opened = {name: common.open_source(dsns[name]) for name in sources}
    work = cache / "work"
    work.mkdir(parents=True, exist_ok=True)
    db = work / "reconcile.db"

    results = common.Results("reconcile", common.command_line(), args.scale)
    runs: dict[str, list[float]] = {"floor": []}
    ratios: dict[str, list[float]] = {}
    processed = 0
    for rep in range(args.repeat):
        floor_s = floor(texts, db)
        runs["floor"].append(floor_s)
        if "files" in sources:
            runs.setdefault("json.loads of the span files", []).append(read_floor(dataset, cache))
        common.log(f"rep {rep + 1}: floor {len(texts) / floor_s:,.0f} items/s ({floor_s:.2f}s)")
        for name in sources:
            common.fresh_db(db)
            first_s, report = common.timed_rebuild(db, opened[name])
            second_s, again = common.timed_rebuild(db, opened[name])
            processed = report.processed
            assert again.processed == processed and len(again.created) == 0 and len(again.refreshed) == 0
            runs.setdefault(f"{name} first", []).append(first_s)
            runs.setdefault(f"{name} second", []).append(second_s)
            ratios.setdefault(f"{name} first/floor", []).append((processed / first_s) / (len(texts) / floor_s))
            ratios.setdefault(f"{name} first/second", []).append(first_s / second_s)
            common.log(f"rep {rep + 1}: {name}: first {processed / first_s:,.0f} items/s ({first_s:.2f}s), "
                       f"second {second_s:.2f}s ({first_s / second_s:.1f}x faster)")
    common.fresh_db(db)

    floor_rate = len(texts) / common.median(runs["floor"])
    results.details = {"dataset": summary | {"session_ids": len(summary["session_ids"])}, "envelopes": len(texts),
                       "processed": processed, "seconds": runs, "ratios": ratios,
                       "floor_items_per_s": floor_rate}
    if "files" in sources:
        loads = common.median(runs["json.loads of the span files"])
        results.add("(informative) json.loads of every span-file line, nothing else",
                    f"{processed / loads:,.0f} items/s ({summary['bytes'] / loads / 1e6:,.0f} MB/s)",
                    (processed / loads) / floor_rate, None)
    for name in sources:
        first = common.median(runs[f"{name} first"])
        second = common.median(runs[f"{name} second"])
        ratio = common.median(ratios[f"{name} first/floor"])
        results.add(f"reconcile from {name} >= 0.5x floor (items/s)",
                    f"{processed / first:,.0f} items/s vs floor {floor_rate:,.0f} items/s "
                    f"({processed:,} items, median of {args.repeat})", ratio, ratio >= 0.5)
        speedup = common.median(ratios[f"{name} first/second"])
        results.add(f"second unchanged rebuild from {name} >= 3x faster",
                    f"first {first:.2f}s, second {second:.2f}s", speedup, speedup >= 3.0)
    results.save(cache)


if __name__ == "__main__":
    main()
