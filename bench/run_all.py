"""Run every benchmark of bench/ and write the table into BENCHMARKS.md (`tox -e bench` runs this).

Each script runs in a process of its own (chDB is one engine per process) and records its figures in
`<cache>/results/<bench>.json`; this script then prints one table of them all and replaces the part
of BENCHMARKS.md between the `bench:table` markers with it. Options are passed on to every script
(`--scale`, `--cache`, `--repeat`); `--only`/`--skip` choose scripts.

    python bench/run_all.py                     # the issue's sizes: about an hour the first time
    python bench/run_all.py --scale 0.01 --repeat 1 --no-write
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import common

BENCHES = ("reconcile", "scaling", "memory", "http_vs_inprocess", "server", "server-2-workers", "check")
SCRIPTS = {"server-2-workers": ("server", ["--workers", "2"])}
"""Benches that are another run of a script: (script, extra arguments)."""
START, END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"


def table(cache: Path, benches: list[str]) -> str:
    lines = ["| bench | target | measured | ratio | met? |", "|---|---|---|---|---|"]
    commands: list[str] = []
    for bench in benches:
        loaded = common.load_results(cache, bench)
        if loaded is None:
            lines.append(f"| {bench} | (not run) | | | |")
            continue
        commands.append(f"- `{bench}`: `{loaded['command']}` (scale {loaded['scale']})")
        for f in loaded["figures"]:
            ratio = "-" if f["ratio"] is None else f"{f['ratio']:.2f}"
            met = {True: "yes", False: "**no**", None: "n/a"}[f["met"]]
            note = f" ({f['note']})" if f["note"] else ""
            lines.append(f"| {bench} | {f['target']} | {f['measured']}{note} | {ratio} | {met} |")
    return "\n".join([*lines, "", "Produced by:", "", *commands])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scale", type=float, default=None)
    p.add_argument("--cache", type=Path, default=common.DEFAULT_CACHE)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--only", default=",".join(BENCHES))
    p.add_argument("--skip", default="")
    p.add_argument("--no-write", action="store_true", help="Print the table, leave BENCHMARKS.md alone.")
    args = p.parse_args()
    chosen = [b for b in args.only.split(",") if b and b not in args.skip.split(",")]
    passed: list[str] = ["--cache", str(args.cache)]
    if args.scale is not None:
        passed += ["--scale", str(args.scale)]
    if args.repeat is not None:
        passed += ["--repeat", str(args.repeat)]
    failed: list[str] = []
    for bench in chosen:
        started = time.perf_counter()
        common.log(f"=== {bench}: {' '.join(passed)}")
        script, extra = SCRIPTS.get(bench, (bench, []))
        done = subprocess.run([sys.executable, str(Path(__file__).parent / f"{script}.py"), *passed, *extra])
        common.log(f"=== {bench}: exit {done.returncode} after {time.perf_counter() - started:,.0f}s")
        if done.returncode != 0:
            failed.append(bench)
    text = table(args.cache, list(BENCHES))  # every result on record, re-run or not
    print(text)
    if not args.no_write:
        doc = common.ROOT / "BENCHMARKS.md"
        current = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
        if START in current and END in current:
            head, rest = current.split(START, 1)
            _, tail = rest.split(END, 1)
            doc.write_text(f"{head}{START}\n{text}\n{END}{tail}")
            common.log(f"table written into {doc}")
    if failed:
        raise SystemExit(f"benchmarks that failed to run: {', '.join(failed)}")


if __name__ == "__main__":
    main()
