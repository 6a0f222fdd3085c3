"""Shared plumbing of bench/: the cached datasets, timing helpers, and the results every script records.

Datasets are generated once (`harness.spans.synthetic.generate`, the code behind `harness fixtures
generate`) under a cache directory and reused by every script and every run; span stores are loaded
into one chDB directory, one database per dataset. `--scale` shrinks every size for a quick run;
the documented figures use the default, `--scale 1` (the issue's sizes).

Every figure is a ratio to a baseline measured in the same run, or a median of several runs: this
machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(os.environ.get("ITEMS_HARNESS_BENCH_CACHE", "/tmp/items-harness-bench"))
ITEMS_PER_RUN = 1000
PROJECT = "example"
CHDB_DIR_NAME = "spans.chdb"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- options


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--scale", type=float, default=1.0,
                   help="Multiply every dataset size by this (default 1: the issue's sizes; 0.01 for a smoke run).")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help="Where datasets, span stores and results live (default %(default)s; "
                        "env ITEMS_HARNESS_BENCH_CACHE).")
    p.add_argument("--repeat", type=int, default=3, help="Repetitions per measurement; medians are reported.")
    p.add_argument("--results-tag", default="",
                   help="Save results as <bench>-<tag>.json (e.g. `before`, for a run of another checkout "
                        "with PYTHONPATH=<checkout>); run_all.py reads untagged results only.")
    return p


def command_line() -> str:
    """The command that produced a figure, as recorded beside it."""
    script = Path(sys.argv[0]).resolve()
    shown = str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else str(script)
    return " ".join(["python", shown, *map(shlex.quote, sys.argv[1:])])


def scaled(full: int, scale: float, minimum: int = 100) -> int:
    return max(minimum, round(full * scale))


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Dataset:
    """Synthetic spans written by `generate`: sessions x runs x items_per_run reported items."""

    name: str
    sessions: int
    runs_per_session: int
    items_per_run: int
    seed: int

    @property
    def reported(self) -> int:
        return self.sessions * self.runs_per_session * self.items_per_run

    def path(self, cache: Path) -> Path:
        return cache / "datasets" / self.name

    def summary(self, cache: Path) -> dict[str, Any]:
        """Generate (once) and return what was written: items, spans, session ids, bytes."""
        out = self.path(cache)
        done = out / "summary.json"
        if done.exists():
            loaded: dict[str, Any] = json.loads(done.read_text())
            if loaded.get("spec") == asdict(self):
                return loaded
        from harness.spans.synthetic import generate

        log(f"generating dataset {self.name}: {self.reported:,} reported items into {out} (once; cached)")
        started = time.perf_counter()
        progress = _Progress(f"generate {self.name}", self.reported)
        summary = generate(out, sessions=self.sessions, runs_per_session=self.runs_per_session,
                           items_per_run=self.items_per_run, failed_post_fraction=0.2, seed=self.seed,
                           project=PROJECT, progress=progress.advance)
        progress.close()
        record = {
            "spec": asdict(self),
            "items": summary.items,
            "spans": summary.spans,
            "offloaded": summary.offloaded,
            "malformed": summary.malformed,
            "session_ids": summary.session_ids,
            "bytes": sum(p.stat().st_size for p in summary.span_files),
            "seconds": round(time.perf_counter() - started, 1),
        }
        done.write_text(json.dumps(record))
        return record


def sized(
    name: str, items: int, seed: int, *, items_per_run: int = ITEMS_PER_RUN, runs_per_session: int = 0
) -> Dataset:
    """A dataset of about `items` reported items, in runs of `items_per_run` (fewer for a small one).

    `runs_per_session` 0: every run is a session of its own; otherwise that many runs per session.
    """
    per_run = min(items_per_run, items)
    runs = max(1, math.ceil(items / per_run))
    if runs_per_session <= 0:
        return Dataset(name, runs, 1, per_run, seed)
    per_session = min(runs_per_session, runs)
    return Dataset(name, max(1, math.ceil(runs / per_session)), per_session, per_run, seed)


class _Progress:
    """A one-line progress report with rate and ETA on stderr (bench runs are long)."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, max(1, total), 0
        self.started = self.last = time.perf_counter()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= 2.0:
            self.last = now
            rate = self.done / (now - self.started)
            eta = (self.total - self.done) / rate if rate else math.inf
            print(f"\r  {self.what}: {self.done:,}/{self.total:,} ({rate:,.0f}/s, ETA {eta:,.0f}s)   ",
                  end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        print(f"\r  {self.what}: {self.done:,} in {time.perf_counter() - self.started:,.1f}s" + " " * 20,
              file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- chDB span stores


def chdb_path(cache: Path) -> Path:
    return cache / CHDB_DIR_NAME


def chdb_dsn(cache: Path, database: str) -> str:
    return f"chdb://{chdb_path(cache).resolve()}?database={database}"


def source_dsns(text: str, cache: Path, dataset: Dataset, chdb_database: str,
                chdb_datasets: Sequence[Dataset]) -> dict[str, str]:
    """name -> DSN of the span sources `--sources` names (comma-separated: files, chdb), in its order:
    the dataset's span files, and a chDB database holding `chdb_datasets` (loaded once)."""
    dsns: dict[str, str] = {}
    for name in (s.strip() for s in text.split(",") if s.strip()):
        if name == "files":
            dsns[name] = str(dataset.path(cache))
        elif name == "chdb":
            dsns[name] = ensure_chdb(cache, chdb_database, chdb_datasets)
        else:
            raise SystemExit(f"unknown span source {name!r}: use files, chdb")
    return dsns


def ensure_chdb(cache: Path, database: str, datasets: Sequence[Dataset]) -> str:
    """A chDB database holding exactly `datasets` (loaded once, recorded in a marker); returns its DSN.

    Loads through `ClickHouseSpanStore.insert_spans`, what `harness spans load` does.
    """
    from harness.spans.clickhouse import ClickHouseSpanStore
    from harness.spans.files import iter_spans

    dsn = chdb_dsn(cache, database)
    marker = cache / "chdb-loaded" / f"{database}.json"
    wanted = [asdict(d) for d in datasets]
    store = ClickHouseSpanStore(dsn, timeout_s=600)
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return dsn
    expected = sum(int(d.summary(cache)["spans"]) for d in datasets)
    store.ensure_schema()
    if store.count_spans():
        store._command(f"TRUNCATE TABLE `{database}`.`otel_traces`")
    log(f"loading {expected:,} spans into chDB database {database} (once; cached)")
    progress = _Progress(f"load {database}", expected)
    for dataset in datasets:
        for path in sorted(dataset.path(cache).glob("spans-*.jsonl")):
            progress.advance(store.insert_spans(iter_spans([path]), batch_size=20_000))
    progress.close()
    loaded = store.count_spans()
    if loaded != expected:
        raise RuntimeError(f"chDB database {database} holds {loaded} spans, expected {expected}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(wanted))
    return dsn


# --------------------------------------------------------------------------- items databases and rebuilds


def fresh_db(path: Path) -> Path:
    """Remove an SQLite file and its WAL/SHM siblings."""
    for sibling in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        sibling.unlink(missing_ok=True)
    return path


def scope(session_id: str | None = None) -> Any:
    from harness.experiment import ExperimentProject

    return ExperimentProject().scope(session_id, ())


def open_source(dsn_or_path: str | Path) -> Any:
    from harness.spans.store import SpanStoreConfig, open_span_store

    text = str(dsn_or_path)
    return open_span_store(SpanStoreConfig(dsn=text, data_dir=Path("/nonexistent"), timeout_s=600))


def timed_rebuild(db: Path, source: Any, session_id: str | None = None) -> tuple[float, Any]:
    """Seconds of one `harness.rebuild.rebuild` (the store opened and migrated beforehand), and its report."""
    from harness.items.store import ItemStore
    from harness.rebuild import rebuild

    store = ItemStore(db)
    try:
        started = time.perf_counter()
        report = rebuild(store, source, scope(session_id))
        return time.perf_counter() - started, report
    finally:
        store.close()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def repeat(n: int, fn: Callable[[], float]) -> list[float]:
    return [fn() for _ in range(max(1, n))]


@contextlib.contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    started = time.perf_counter()
    yield lambda: time.perf_counter() - started


# --------------------------------------------------------------------------- results


@dataclass
class Figure:
    """One row of the table: what was measured against what, and whether the target holds."""

    target: str
    measured: str
    ratio: float | None
    met: bool | None
    """None: not measured here (see note)."""
    note: str = ""


@dataclass
class Results:
    bench: str
    command: str
    scale: float
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, target: str, measured: str, ratio: float | None, met: bool | None, note: str = "") -> None:
        self.figures.append(Figure(target, measured, ratio, met, note))
        mark = {True: "met", False: "NOT met", None: "n/a"}[met]
        ratio_text = f"{ratio:.2f}" if ratio is not None else "-"
        log(f"{self.bench}: {target}: {measured} (ratio {ratio_text}, {mark}) {note}")

    def save(self, cache: Path) -> Path:
        tag = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--results-tag=")), "")
        if not tag and "--results-tag" in sys.argv:
            tag = sys.argv[sys.argv.index("--results-tag") + 1]
        out = cache / "results" / (f"{self.bench}-{tag}.json" if tag else f"{self.bench}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(asdict(self), indent=2, default=str))
        log(f"results written to {out}")
        return out


def load_results(cache: Path, bench: str) -> dict[str, Any] | None:
    path = cache / "results" / f"{bench}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB (Linux: ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- the datasets of the issue

RECONCILE_ITEMS = 200_000
STORE_SIZES = (10_000, 100_000, 1_000_000)
SESSION_SIZES = (100, 1_000, 10_000, 100_000)
PROBE_ITEMS = 100
MEMORY_ITEMS = 1_000_000


def reconcile_dataset(scale: float) -> Dataset:
    """bench/reconcile.py: 200,000 reported items, 10 runs per session."""
    n = scaled(RECONCILE_ITEMS, scale)
    return sized(f"reconcile-{n}", n, seed=1, runs_per_session=10)


def fill_dataset(items: int) -> Dataset:
    """The bulk of a store: sessions of one run of 1,000 items each (seeds differ per size)."""
    return sized(f"fill-{items}", items, seed=1000 + len(str(items)))


def probe_dataset() -> Dataset:
    """The 100-item session bench/scaling.py rebuilds in stores of every size."""
    return Dataset(f"probe-{PROBE_ITEMS}", 1, 1, PROBE_ITEMS, seed=7)


def store_sizes(scale: float) -> list[int]:
    return sorted({scaled(n, scale, minimum=1_000) for n in STORE_SIZES})


def session_dataset(items: int) -> Dataset:
    """One session of `items` reported items (runs of 1,000)."""
    return sized(f"session-{items}", items, seed=2000 + len(str(items)), runs_per_session=10**9)


def session_sizes(scale: float) -> list[int]:
    top = max(1_000, scaled(SESSION_SIZES[-1], scale))
    return [n for n in SESSION_SIZES if n <= top]


def memory_dataset(scale: float) -> Dataset:
    """bench/memory.py reads the largest store of bench/scaling.py: 1,000,000 reported items."""
    return fill_dataset(scaled(MEMORY_ITEMS, scale, minimum=1_000))
