"""Concurrency: PATCHes of dispositions racing rebuilds of the same session, over real HTTP,
against `harness serve --workers N` (several processes on one SQLite file).

chDB serves one process per data directory, so the multi-worker server reads its spans from a folder
of span files (`--spans DIR`); a writer thread keeps adding newer versions of the items' spans, so
rebuilds really refresh rows while triage lands. Each item belongs to one patcher thread, which
PATCHes it sequentially: "the last PATCH acknowledged for it" is then well defined.

Afterwards: each item's disposition is its last acknowledged PATCH (or bulk update), no duplicate
row, every item carries its newest span version, each item's events are numbered 1..n without gap,
and not one request answered 5xx. Decision (documented in RELIABILITY.md): a rebuild that meets
another write waits for it (SQLite serializes writers; busy timeout 30 s), so no request here
answers 409 either.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_reliability_support import BASE, DEV_ADMIN, DEV_WRITER, ServeProcess

from harness.model import Span
from harness.spans.otlp import encode_otlp_json
from harness.spans.report import envelope, item_span

STATUSES = ("open", "triaged", "verified", "resolved", "dismissed", None)


@dataclass
class Spans:
    """A session's item spans as files in a folder, re-reported with newer versions on demand."""

    folder: Path
    items: int
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    keys: list[str] = field(default_factory=list)
    version: dict[str, int] = field(default_factory=dict)
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _files: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keys = [uuid.uuid4().hex for _ in range(self.items)]
        self.write(self.keys)

    def span(self, key: str) -> Span:
        v = self.version[key] = self.version.get(key, 0) + 1
        tick = next(self._clock)
        env = envelope(item_type="finding", dedupe_key=key, title=f"{key[:8]} v{v}", status="open",
                       data={"severity": ("low", "medium", "high")[v % 3], "version": v})
        return item_span([env], trace_id=self.trace_id, span_id=f"{tick:016x}", project="example",
                         session_id=self.session_id, run_id=self.run_id, start_time_unix_nano=tick * 1_000_000,
                         end_time_unix_nano=tick * 1_000_000 + 500)

    def write(self, keys: list[str]) -> None:
        """A new span file with newer versions of `keys`, renamed into place (a reader never sees half)."""
        doc = encode_otlp_json([self.span(k) for k in keys])
        n = next(self._files)
        staging = self.folder.parent / f"staging-{n}.jsonl"
        staging.write_text(json.dumps(doc) + "\n")
        os.replace(staging, self.folder / f"spans-{n:05d}.jsonl")


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, what: str, response: httpx.Response, expected: int = 200) -> bool:
        with self.lock:
            self.statuses[f"{what} {response.status_code}"] += 1
            if response.status_code != expected:
                self.failures.append(f"{what}: {response.status_code} {response.text[:200]}")
                return False
            return True


def run_race(url: str, spans: Spans, ids: dict[str, str], patchers: int, patches_each: int, rebuilders: int,
             rebuilds_each: int, seed: int, new_files: int) -> tuple[Tally, dict[str, tuple[str | None, str]],
                                                                   Counter[str]]:
    tally = Tally()
    last: dict[str, tuple[str | None, str]] = {}
    changes: Counter[str] = Counter()  # user events expected per item
    owned = {w: [k for i, k in enumerate(spans.keys) if i % patchers == w] for w in range(patchers)}
    done = threading.Event()
    no_keepalive = httpx.Limits(max_keepalive_connections=0)  # new connection each call: spread over workers

    def patcher(w: int) -> None:
        rng = random.Random(seed * 1000 + w)
        status: dict[str, str | None] = {}
        notes: dict[str, str] = {}
        with httpx.Client(base_url=url, timeout=120, limits=no_keepalive) as client:
            for n in range(patches_each):
                if n % 10 == 9:  # now and then a bulk update of three of its own items
                    keys = rng.sample(owned[w], min(3, len(owned[w])))
                    new = rng.choice(STATUSES)
                    r = client.post(f"{BASE}/items/bulk-update", json={"item_ids": [ids[k] for k in keys],
                                                                        "status": new}, headers=DEV_WRITER)
                    if tally.note("bulk", r):
                        for k in keys:
                            if status.get(k, "open") != new:
                                changes[k] += 1
                            status[k] = new
                            last[k] = (new, notes.get(k, ""))
                    continue
                key = rng.choice(owned[w])
                new = rng.choice(STATUSES)
                note = f"w{w} n{n}"
                r = client.patch(f"{BASE}/items/{ids[key]}", json={"status": new, "notes": note}, headers=DEV_WRITER)
                if tally.note("patch", r):
                    changes[key] += 1  # the notes are new every time: always a change
                    status[key], notes[key] = new, note
                    last[key] = (new, note)

    def rebuilder(r_: int) -> None:
        with httpx.Client(base_url=url, timeout=120, limits=no_keepalive) as client:
            for n in range(rebuilds_each):
                body: dict[str, Any] = {"session_id": spans.session_id} if (n + r_) % 2 else {
                    "run_ids": [spans.run_id]}
                r = client.post(f"{BASE}/items/rebuild", json=body, headers=DEV_ADMIN)
                if tally.note("rebuild", r) and r.json()["processed"] != spans.items:
                    tally.failures.append(f"rebuild processed {r.json()} of {spans.items}")

    def span_writer() -> None:
        """Newer versions while the race runs; bounded, as every rebuild reads every file of the folder."""
        rng = random.Random(seed)
        for _ in range(new_files):
            if done.wait(0.1):
                return
            spans.write(rng.sample(spans.keys, min(5, len(spans.keys))))

    threads = [threading.Thread(target=patcher, args=(w,)) for w in range(patchers)]
    threads += [threading.Thread(target=rebuilder, args=(r,)) for r in range(rebuilders)]
    writer = threading.Thread(target=span_writer)
    writer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    writer.join()
    return tally, last, changes


@pytest.mark.parametrize(
    ("workers", "items", "patchers", "patches_each", "rebuilders", "rebuilds_each"),
    [pytest.param(2, 40, 4, 200, 2, 100, id="2-workers-1000-ops"),
     pytest.param(4, 200, 8, 1_000, 4, 500, id="4-workers-10000-ops", marks=pytest.mark.long)],
)
def test_patches_racing_rebuilds_on_several_workers(
    workers: int, items: int, patchers: int, patches_each: int, rebuilders: int, rebuilds_each: int,
    tmp_path: Path,
) -> None:
    spans = Spans(tmp_path / "spans", items)
    db = tmp_path / "data" / "items.db"
    with ServeProcess(db, "--workers", str(workers), "--spans", str(spans.folder), "--rate-limit", "0") as server:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) >= workers, children  # uvicorn's supervisor and its worker processes
        first = httpx.post(f"{server.url}{BASE}/items/rebuild", json={"session_id": spans.session_id},
                           headers=DEV_ADMIN, timeout=120)
        assert first.status_code == 200 and first.json() == {"processed": items}, first.text
        listed = httpx.get(f"{server.url}{BASE}/items", params={"limit": 200, "session_id": spans.session_id},
                           headers=DEV_WRITER).json()["items"]
        ids = {i["dedupe_key"]: i["id"] for i in listed}
        assert len(ids) == items
        started = time.monotonic()
        tally, last, changes = run_race(server.url, spans, ids, patchers, patches_each, rebuilders, rebuilds_each,
                                        seed=workers, new_files=items)
        elapsed = time.monotonic() - started
        final = httpx.post(f"{server.url}{BASE}/items/rebuild", json={"session_id": spans.session_id},
                           headers=DEV_ADMIN, timeout=120)
        assert final.status_code == 200, final.text
    operations = sum(tally.statuses.values())
    assert operations >= patchers * patches_each + rebuilders * rebuilds_each
    assert tally.failures == [], (tally.failures[:10], tally.statuses)
    assert not [s for s in tally.statuses if s.split()[1].startswith("5")]

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        rows = {r["dedupe_key"]: r for r in conn.execute("SELECT * FROM items")}
        assert len(rows) == items == len(set(rows))  # no duplicate row
        for key, (status, notes) in last.items():
            assert (rows[key]["disposition_status"], rows[key]["disposition_notes"] or "") == (status, notes), key
        for key in spans.keys:  # the newest span version won every refresh
            assert json.loads(rows[key]["data"])["version"] == spans.version[key]
            assert rows[key]["title"] == f"{key[:8]} v{spans.version[key]}"
        id_to_key = {r["id"]: k for k, r in rows.items()}
        seqs: dict[str, list[int]] = {}
        users: Counter[str] = Counter()
        for e in conn.execute("SELECT item_id, seq, actor_type, event_type FROM events ORDER BY item_id, seq"):
            seqs.setdefault(e["item_id"], []).append(e["seq"])
            if e["actor_type"] == "user" and e["event_type"] == "updated":
                users[id_to_key[e["item_id"]]] += 1
        for item_id, numbers in seqs.items():
            assert numbers == list(range(1, len(numbers) + 1)), item_id  # no gap, no duplicate
        assert users == changes  # one user event per acknowledged change, none lost or doubled
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    print(f"\nRELIABILITY concurrency workers={workers} operations={operations} seconds={elapsed:.1f} "
          f"statuses={dict(tally.statuses)}")
