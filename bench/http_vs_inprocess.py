"""Rebuild over HTTP vs in process (issue 5, target 6): a 1,000-item session rebuilt through
`POST .../items/rebuild` at most 1.3x the same rebuild called in process.

Both read the same chDB span store (the session loaded with `harness spans load`) into a fresh items
database, after one warm-up rebuild of another (100-item) session on each side. chDB is one engine per
process, so the in-process rebuild runs in a child process (timed around the `rebuild()` call) that
exits before `harness serve` starts on the same store; the HTTP rebuild is timed around the request,
from a client on loopback, the server already up. Each repetition does both; reported: medians and the
median of the per-repetition ratios.

    python bench/http_vs_inprocess.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import common
import httpx
import server as server_bench

ADMIN = "dev-admin-token"
CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, {bench!r})
import common
source = common.open_source({dsn!r})
db = common.fresh_db(Path({db!r}))
common.timed_rebuild(db, source, {warmup!r})  # warm-up, as the server gets one
seconds, report = common.timed_rebuild(db, source, {session!r})
print(json.dumps({{"seconds": seconds, "processed": report.processed}}))
"""


def main() -> None:
    p = common.parser(__doc__ or "")
    p.add_argument("--items", type=int, default=1000, help="Session size (default %(default)s).")
    args = p.parse_args()
    cache: Path = args.cache
    dataset = common.session_dataset(args.items)
    summary = dataset.summary(cache)
    session_id = summary["session_ids"][0]
    work = cache / "work" / "http"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spans = work / "spans.chdb"
    dsn = f"chdb://{spans}"
    warmup = common.probe_dataset()
    warmup_id = warmup.summary(cache)["session_ids"][0]
    subprocess.run([sys.executable, "-m", "harness.cli", "spans", "load", str(dataset.path(cache)),
                    str(warmup.path(cache)), "--into", dsn, "--org", "example"], check=True, capture_output=True,
                   cwd=server_bench.NEUTRAL_CWD)
    results = common.Results("http_vs_inprocess", common.command_line(), args.scale)
    runs: dict[str, list[float]] = {"in process": [], "http": []}
    processed = 0
    for rep in range(args.repeat):
        child = CHILD.format(bench=str(Path(__file__).parent), dsn=dsn, db=str(work / "inprocess.db"),
                             session=session_id, warmup=warmup_id)
        out = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True, text=True,
                             cwd=server_bench.NEUTRAL_CWD)
        inproc = json.loads(out.stdout.strip().splitlines()[-1])
        runs["in process"].append(inproc["seconds"])
        db = common.fresh_db(work / "http.db")
        port = server_bench.free_port()
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {ADMIN}"}
        serve = [sys.executable, "-m", "harness.cli", "serve", "--port", str(port), "--db", str(db), "--spans", dsn]
        with server_bench.process(serve):
            server_bench.wait_ready(f"{url}{server_bench.BASE}/items/access", headers)
            with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
                client.get(f"{server_bench.BASE}/items/access")  # a warm connection, as a client keeps one
                client.post(f"{server_bench.BASE}/items/rebuild", json={"session_id": warmup_id}).raise_for_status()
                started = time.perf_counter()
                r = client.post(f"{server_bench.BASE}/items/rebuild", json={"session_id": session_id})
                seconds = time.perf_counter() - started
            r.raise_for_status()
            processed = r.json()["processed"]
            assert processed == inproc["processed"], (processed, inproc)
        runs["http"].append(seconds)
        common.log(f"rep {rep + 1}: {processed:,} items: in process {inproc['seconds'] * 1000:.0f} ms, "
                   f"over HTTP {seconds * 1000:.0f} ms ({seconds / inproc['seconds']:.2f}x)")
    ratios = [h / i for h, i in zip(runs["http"], runs["in process"], strict=True)]
    ratio = common.median(ratios)
    results.add(f"{processed:,}-item session rebuild over HTTP <= 1.3x in process",
                f"HTTP {common.median(runs['http']) * 1000:.0f} ms vs in process "
                f"{common.median(runs['in process']) * 1000:.0f} ms", ratio, ratio <= 1.3)
    results.details = {"seconds": runs, "ratios": ratios, "processed": processed}
    results.save(cache)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
