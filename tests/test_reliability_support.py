"""Shared parts of the reliability tests (tests/test_reliability_*.py); no tests of its own.

`ServeProcess` runs `harness serve` exactly as a user does, in its own process (so with its own chDB
engine), its output in a file (a pipe would fill and stall a chatty server). `snapshot` reads every
row of the items, links and events tables through a connection of the test's own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BASE = "/api/v1/org/example/ws/example/projects/example"
DEV_ADMIN = {"Authorization": "Bearer dev-admin-token"}
DEV_WRITER = {"Authorization": "Bearer dev-writer-token"}
DEV_READER = {"X-API-Key": "dev-reader-token"}
TABLES = ("items", "links", "events")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServeProcess:
    """`harness serve --port P --db DB [extra...]`, ready when its spec answers."""

    def __init__(self, db: Path, *extra: str, log: Path | None = None, startup_s: float = 120.0) -> None:
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or db.parent / f"serve-{self.port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "serve", "--port", str(self.port), "--db", str(db), *extra],
            stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
        )
        deadline = time.monotonic() + startup_s
        while True:
            try:
                httpx.get(f"{self.url}/api/v1/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"harness serve did not start:\n{self.output()}") from None
                time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def peak_rss_kib(self) -> int:
        """VmHWM: the most resident memory the server process ever had."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM in /proc status")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no commit, no checkpoint runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._out.close()

    def stop(self) -> int:
        """Ctrl-C, as a user would."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=30)
        self._out.close()
        return code

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()


def snapshot(db: Path, tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `tables`, ordered, read through a fresh connection (sees only committed data)."""
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
    finally:
        conn.close()


def integrity_check(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    finally:
        conn.close()


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
