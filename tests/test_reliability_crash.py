"""Crash safety: SIGKILL `harness serve` in the middle of a big rebuild, then restart it.

Prepared the way an operator would: `harness fixtures generate` writes a session's spans and the
POSTs that landed, `harness spans load` puts the spans in the chDB store beside the --db, `harness
reconcile` loads some of those POSTs (items the runtime created). A copy of that data directory is
the twin: it gets the same triage (offline, `harness reconcile --patches`) and one uninterrupted
rebuild by a `harness serve` of its own, and is what the crashed server must converge to.

On the served copy: triage over HTTP (every PATCH acknowledged), a rebuild of the whole session,
SIGKILL once the rebuild's transaction has written a good part of its pages (the WAL has grown).
After the kill: `PRAGMA integrity_check` is ok, the tables are exactly as before the rebuild (all or
nothing), every acknowledged disposition is there; after a restart, a new rebuild converges to the
twin's table. Short variant: 10,000 items (default run); long: 200,000.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_reliability_support import (
    BASE,
    DEV_ADMIN,
    DEV_WRITER,
    ServeProcess,
    integrity_check,
    json_lines,
    snapshot,
)

STATUSES = ("open", "triaged", "verified", "resolved", "dismissed")
POSTED = 300
TRIAGED = 100


def harness(*args: str, timeout: float = 3600) -> str:
    result = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def chdb_dsn(data_dir: Path) -> str:
    return f"chdb://{data_dir / 'spans.chdb'}"


def wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def prepare(tmp: Path, runs: int, items_per_run: int) -> tuple[Path, str, list[dict[str, Any]]]:
    """A data directory with the session's spans in chDB and POSTED runtime items; the triage to apply."""
    fixtures, data = tmp / "fixtures", tmp / "served"
    harness("fixtures", "generate", "--sessions", "1", "--runs-per-session", str(runs), "--items-per-run",
            str(items_per_run), "--seed", "6", "--out", str(fixtures))
    harness("spans", "load", str(fixtures), "--into", chdb_dsn(data))
    posts = json_lines(fixtures / "posts.jsonl")[:POSTED]
    session_id = str(posts[0]["session_id"])
    (tmp / "posted.jsonl").write_text("".join(json.dumps(p) + "\n" for p in posts))
    harness("reconcile", "--spans", chdb_dsn(data), "--db", str(data / "items.db"), "--posts",
            str(tmp / "posted.jsonl"), "--run-id", "nothing-to-rebuild-yet")
    triage = [{"dedupe_key": p["dedupe_key"], "status": STATUSES[i % len(STATUSES)], "notes": f"human note {i}"}
              for i, p in enumerate(posts[:TRIAGED])]
    return data, session_id, triage


def uninterrupted_rebuild(db: Path, session_id: str, result: dict[str, Any]) -> None:
    """The twin's one rebuild, through the endpoint of a `harness serve` of its own (its own chDB engine)."""
    with ServeProcess(db, "--rebuild-timeout", "3600", "--rate-limit", "0") as twin:
        started = time.monotonic()
        r = httpx.post(f"{twin.url}{BASE}/items/rebuild", json={"session_id": session_id}, headers=DEV_ADMIN,
                       timeout=3600)
        result.update(status=r.status_code, seconds=round(time.monotonic() - started, 1),
                      processed=r.json().get("processed"))


def comparable(db: Path) -> dict[str, Any]:
    """The tables with what legitimately differs between two servers taken out: row ids, clocks, who
    wrote a disposition (a credential here, the offline tool there). Rows are keyed by dedupe_key."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        key_of = {r["id"]: r["dedupe_key"] for r in conn.execute("SELECT id, dedupe_key FROM items")}
        volatile = {"id", "created_at", "updated_at", "disposition_updated_at", "disposition_updated_by"}
        rows = conn.execute("SELECT * FROM items").fetchall()
        columns = [c for c in (rows[0].keys() if rows else []) if c not in volatile]
        items = sorted(tuple((c, r[c]) for c in columns) for r in rows)
        links = sorted((key_of[r["source_item_id"]], key_of[r["target_item_id"]], r["relationship"], r["origin"])
                       for r in conn.execute("SELECT * FROM links"))
        events = sorted((key_of[r["item_id"]], r["seq"], r["event_type"], r["actor_type"],
                         _payload(r["payload"], key_of)) for r in conn.execute("SELECT * FROM events"))
        return {"items": items, "links": links, "events": events}
    finally:
        conn.close()


def _payload(text: str, key_of: dict[str, str]) -> str:
    """An event payload with item ids as dedupe keys and link ids left out (both are random per server)."""
    payload = json.loads(text)
    if isinstance(payload, dict):
        payload.pop("link_id", None)
        payload = {k: key_of.get(v, v) if isinstance(v, str) else v for k, v in payload.items()}
    return json.dumps(payload, sort_keys=True)


def dispositions(db: Path) -> dict[str, tuple[str | None, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return {k: (s, n) for k, s, n in conn.execute(
            "SELECT dedupe_key, disposition_status, disposition_notes FROM items WHERE has_disposition = 1")}
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("runs", "items_per_run", "kill_at_mb"),
    [pytest.param(10, 1_000, 8, id="10k-items"),
     pytest.param(20, 10_000, 200, id="200k-items", marks=pytest.mark.long)],
)
def test_sigkill_in_the_middle_of_a_big_rebuild(
    runs: int, items_per_run: int, kill_at_mb: int, tmp_path: Path
) -> None:
    figures: dict[str, Any] = {"items": runs * items_per_run}
    started = time.monotonic()
    served, session_id, triage = prepare(tmp_path, runs, items_per_run)
    figures["prepare_s"] = round(time.monotonic() - started, 1)

    # The twin: the same data directory and triage, then one uninterrupted rebuild by a server of its own.
    twin = tmp_path / "twin"
    shutil.copytree(served, twin, symlinks=True)  # chDB links metadata -> store relatively
    (tmp_path / "triage.jsonl").write_text("".join(json.dumps(t) + "\n" for t in triage))
    harness("reconcile", "--spans", chdb_dsn(twin), "--db", str(twin / "items.db"), "--patches",
            str(tmp_path / "triage.jsonl"), "--run-id", "nothing-to-rebuild-yet")
    reference: dict[str, Any] = {}
    twin_thread = threading.Thread(target=uninterrupted_rebuild, args=(twin / "items.db", session_id, reference))
    twin_thread.start()

    db = served / "items.db"
    server = ServeProcess(db, "--rebuild-timeout", "3600", "--rate-limit", "0")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            ids = {i["dedupe_key"]: i["id"] for i in client.get(f"{BASE}/items", params={"limit": 200},
                                                                 headers=DEV_WRITER).json()["items"]}
            page2 = client.get(f"{BASE}/items", params={"limit": 200, "page": 2}, headers=DEV_WRITER).json()["items"]
            ids |= {i["dedupe_key"]: i["id"] for i in page2}
            for t in triage:  # every one acknowledged (200) before the kill
                r = client.patch(f"{BASE}/items/{ids[t['dedupe_key']]}",
                                 json={"status": t["status"], "notes": t["notes"]}, headers=DEV_WRITER)
                assert r.status_code == 200, r.text
        acknowledged = dispositions(db)
        assert {t["dedupe_key"]: acknowledged.get(t["dedupe_key"]) for t in triage} == {
            t["dedupe_key"]: (t["status"], t["notes"]) for t in triage}
        before = snapshot(db)
        wal_before = wal_bytes(db)

        outcome: dict[str, Any] = {}

        def rebuild() -> None:
            try:
                outcome["response"] = httpx.post(f"{server.url}{BASE}/items/rebuild", json={"session_id": session_id},
                                                 headers=DEV_ADMIN, timeout=3600)
            except httpx.TransportError as exc:
                outcome["error"] = type(exc).__name__

        thread = threading.Thread(target=rebuild)
        rebuild_started = time.monotonic()
        thread.start()
        while wal_bytes(db) < wal_before + kill_at_mb * 1024 * 1024:
            assert thread.is_alive(), f"the rebuild ended before the kill point: {outcome}"
            time.sleep(0.02)
        server.kill()
        figures["killed_after_s"] = round(time.monotonic() - rebuild_started, 1)
        figures["wal_mb_at_kill"] = round(wal_bytes(db) / 2**20, 1)
        thread.join(60)
        assert "response" not in outcome, "the rebuild answered before the kill"
    finally:
        if server.proc.poll() is None:
            server.kill()

    # After the crash, before any restart.
    assert integrity_check(db) == ["ok"]
    assert snapshot(db) == before  # all or nothing: here, nothing
    assert dispositions(db) == acknowledged

    restarted = ServeProcess(db, "--rebuild-timeout", "3600", "--rate-limit", "0")
    try:
        t0 = time.monotonic()
        r = httpx.post(f"{restarted.url}{BASE}/items/rebuild", json={"session_id": session_id}, headers=DEV_ADMIN,
                       timeout=3600)
        figures["rebuild_after_restart_s"] = round(time.monotonic() - t0, 1)
        assert r.status_code == 200, r.text
        processed = r.json()["processed"]
    finally:
        restarted.stop()

    twin_thread.join(3600)
    assert reference.get("status") == 200, reference
    assert processed == reference["processed"] > POSTED
    figures["uninterrupted_rebuild_s"] = reference["seconds"]
    figures["processed"] = processed
    assert integrity_check(db) == ["ok"]
    served_table, twin_table = comparable(db), comparable(twin / "items.db")
    assert len(served_table["items"]) == len(twin_table["items"]) >= processed
    assert served_table == twin_table
    triaged = dispositions(db)
    for t in triage:  # the rebuild refreshed these items and kept every disposition
        assert triaged[t["dedupe_key"]] == (t["status"], t["notes"])
    print(f"\nRELIABILITY crash {json.dumps(figures)}")
