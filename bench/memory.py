"""Memory (issue 5, target 3): peak RSS of a rebuild of 1,000,000 item spans, from files and from chDB.

Each rebuild runs in a child process of its own (`--child`), into a fresh items database, so its peak
RSS (`ru_maxrss`) is the rebuild's and nothing else's: imports, the chDB engine (in-process ClickHouse,
for the chDB case) and the rebuild. The child also reports its RSS just before the rebuild starts, so
the table shows what the rebuild itself adds. Target: peak under 300 MB.

    python bench/memory.py                   # 1,000,000 items (the largest store of bench/scaling.py)
    python bench/memory.py --scale 0.01      # 10,000 items, a smoke run
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import common

LIMIT_MB = 300.0


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(dsn: str, db: Path) -> None:
    """Run one rebuild and print what it cost (JSON on stdout)."""
    source = common.open_source(dsn)
    if hasattr(source, "count_spans"):
        source.count_spans()  # open the engine before measuring the baseline
    common.fresh_db(db)
    before = rss_mb()
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append(rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    seconds, report = common.timed_rebuild(db, source)
    done.set()
    sampler.join()
    common.fresh_db(db)
    print(json.dumps({"processed": report.processed, "seconds": seconds, "rss_before_mb": before,
                      "peak_rss_mb": common.peak_rss_mb(), "rss_samples_mb": samples[:: max(1, len(samples) // 40)]}))


def main() -> None:
    p = common.parser(__doc__ or "")
    p.add_argument("--sources", default="files,chdb", help="Comma-separated: files, chdb.")
    p.add_argument("--child", nargs=2, metavar=("DSN", "DB"), help=argparse_help())
    p.set_defaults(repeat=1)  # peak RSS barely varies between runs; each run of 1M items takes minutes
    args = p.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    cache: Path = args.cache
    dataset = common.memory_dataset(args.scale)
    summary = dataset.summary(cache)
    size = int(dataset.name.split("-")[1])
    dsns = common.source_dsns(args.sources, cache, dataset, f"store_{size}", [dataset, common.probe_dataset()])
    sources = list(dsns)
    results = common.Results("memory", common.command_line(), args.scale)
    db = cache / "work" / "memory.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    for name in sources:
        peaks: list[float] = []
        runs: list[dict[str, float]] = []
        for rep in range(args.repeat):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--cache", str(cache), "--child", dsns[name], str(db)],
                                 check=True, capture_output=True, text=True)
            run = json.loads(out.stdout.strip().splitlines()[-1])
            runs.append(run)
            peaks.append(run["peak_rss_mb"])
            common.log(f"rep {rep + 1}: {name}: {run['processed']:,} items in {run['seconds']:.0f}s, peak RSS "
                       f"{run['peak_rss_mb']:.0f} MB (before the rebuild {run['rss_before_mb']:.0f} MB) "
                       f"[{time.perf_counter() - started:.0f}s with start-up]")
        peak = common.median(peaks)
        before = common.median([r["rss_before_mb"] for r in runs])
        results.add(f"peak RSS of a rebuild of {runs[0]['processed']:,} items from {name} < {LIMIT_MB:.0f} MB",
                    f"{peak:.0f} MB peak ({before:.0f} MB before the rebuild began; "
                    f"{runs[0]['processed'] / common.median([r['seconds'] for r in runs]):,.0f} items/s)",
                    peak / LIMIT_MB, peak < LIMIT_MB)
        results.details[name] = runs
    results.details["dataset"] = summary | {"session_ids": len(summary["session_ids"])}
    results.save(cache)


def argparse_help() -> str:
    return "internal: run one rebuild of DSN into DB and print its cost as JSON"


if __name__ == "__main__":
    main()
