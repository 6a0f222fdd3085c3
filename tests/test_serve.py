"""`harness serve` as a user runs it: a real process, the README's curl session, restart, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from envelope import assert_envelope
from test_reliability_support import free_port

DOC_SESSION = "2489E9AD-2EE2-8E00-8EC9-32D5F69181C0"
BASE = "/api/v1/org/example/ws/example/projects/example"
ADMIN = {"Authorization": "Bearer dev-admin-token"}


class Serve:
    def __init__(self, db: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "serve", "--port", str(self.port), "--db", str(db), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"{self.url}/api/v1/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {self.output()}") from None
                time.sleep(0.2)

    def output(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        out, _ = self.proc.communicate(timeout=30)
        return out

    def stop(self) -> int:
        """Ctrl-C, as a user would."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=30)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    running = Serve(tmp_path / "data" / "items.db")
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def test_documentation_example_against_default_server(serve: Serve, tmp_path: Path) -> None:
    """The seed's own curl example, with a development token, answers {"processed": N>0} (D12)."""
    body = {"run_ids": ["example"], "session_id": DOC_SESSION}
    first = httpx.post(f"{serve.url}{BASE}/items/rebuild", json=body, headers=ADMIN, timeout=60)
    assert first.status_code == 200, first.text
    processed = first.json()["processed"]
    assert processed > 0
    items = httpx.get(f"{serve.url}{BASE}/items?session_id={DOC_SESSION.lower()}", headers=ADMIN).json()
    assert items["total"] == processed
    assert {i["source"] for i in items["items"]} == {"extracted"}
    before = httpx.get(f"{serve.url}{BASE}/items?limit=200", headers=ADMIN).json()["items"]
    second = httpx.post(f"{serve.url}{BASE}/items/rebuild", json=body, headers=ADMIN, timeout=60)
    assert second.json() == {"processed": processed}
    after = httpx.get(f"{serve.url}{BASE}/items?limit=200", headers=ADMIN).json()["items"]
    assert after == before  # a second rebuild changes nothing, not even updated_at
    assert httpx.get(f"{serve.url}/api/v1/ui/").status_code == 200
    assert_envelope(httpx.get(f"{serve.url}{BASE}/items"), 401)
    assert serve.stop() == 0  # Ctrl-C stops it cleanly
    assert "dev-admin-token" in serve.output()  # development credentials are printed at startup


def test_data_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "data" / "items.db"
    first = Serve(db)
    created = httpx.post(f"{first.url}{BASE}/items", json={"item_type": "finding", "ref": "keep", "status": "triaged"},
                         headers=ADMIN).json()
    assert first.stop() == 0
    second = Serve(db)
    try:
        again = httpx.get(f"{second.url}{BASE}/items/{created['id']}", headers=ADMIN)
        assert again.status_code == 200 and again.json() == created
    finally:
        second.stop()


def test_refuses_development_credentials_on_a_public_host(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "serve", "--host", "0.0.0.0", "--db", str(tmp_path / "i.db")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "development credentials" in result.stderr
