"""The server under load (issue 5, target 4): requests/s and p50/p99 latency at 32 concurrent connections.

`harness serve` is started as in production, one worker (the default: chDB, the default span store, is
one engine per process), with `--rate-limit 0` so the limiter (1,000 requests/s per credential by
default) does not cap the measurement. Its store holds 1,010 items (a 1,000-item session and a 10-item
one, rebuilt once from spans loaded into its chDB store). Load comes from `wrk` (Debian package; two
threads, 32 connections, loopback only), each run `--duration` seconds after a warm-up, `--repeat` times:

- get_item: GET .../items/{id} of one item;
- list_items: GET .../items (the first page of 50, newest first);
- rebuild: POST .../items/rebuild of the 10-item session (all rows already there: the steady state);
- Prism (`npx @stoplight/prism-cli mock openapi.yaml`, installed under the cache directory), get_item
  under the same load, in the same run: target, our get_item requests/s >= Prism's.

    python bench/server.py                  # 10 s per run, 3 repetitions
    python bench/server.py --duration 3 --repeat 1
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import common
import httpx

ADMIN = "dev-admin-token"
BASE = "/api/v1/org/example/ws/example/projects/example"
CONNECTIONS = 32
PRISM_PACKAGE = "@stoplight/prism-cli@5"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def wait_ready(url: str, headers: dict[str, str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s ({last})")


NEUTRAL_CWD = Path(tempfile.gettempdir())
"""Where `python -m harness.cli` runs: not the checkout, so PYTHONPATH decides which harness is measured."""


@contextmanager
def process(args: list[str], cwd: Path | None = None) -> Any:
    proc = subprocess.Popen(args, cwd=cwd or NEUTRAL_CWD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wrk(url: str, seconds: float, *, body: str | None = None) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 latency (ms), and the count of non-2xx answers."""
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency",
            "-H", f"Authorization: Bearer {ADMIN}"]
    script: Path | None = None
    if body is not None:
        script = Path(f"/tmp/items-harness-wrk-{os.getpid()}.lua")
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(body)}\n")
        args += ["-s", str(script)]
    try:
        out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    finally:
        if script is not None:
            script.unlink(missing_ok=True)
    return parse_wrk(out)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\b", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\b", out, re.MULTILINE)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if not (rps and p50 and p99):
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return {"rps": float(rps.group(1)), "p50_ms": _ms(*p50.groups()), "p99_ms": _ms(*p99.groups()),
            "non_2xx": float(bad.group(1)) if bad else 0.0, "socket_errors": 1.0 if errors else 0.0}


def seed(work: Path, cache: Path) -> tuple[Path, str, str]:
    """A server directory whose chDB store holds a 1,000-item session and a 10-item one."""
    big = common.Dataset("server-1000", 1, 1, 1000, seed=31)
    small = common.Dataset("server-10", 1, 1, 10, seed=32)
    for dataset in (big, small):
        dataset.summary(cache)
    server_dir = work / "server"
    shutil.rmtree(server_dir, ignore_errors=True)
    server_dir.mkdir(parents=True)
    dsn = "chdb://" + str((server_dir / "spans.chdb").resolve())
    subprocess.run([sys.executable, "-m", "harness.cli", "spans", "load", str(big.path(cache)), str(small.path(cache)),
                    "--into", dsn, "--org", "example"], check=True, capture_output=True, cwd=NEUTRAL_CWD)
    return server_dir, big.summary(cache)["session_ids"][0], small.summary(cache)["session_ids"][0]


def serve_args(port: int, server_dir: Path, workers: int, cache: Path) -> list[str]:
    args = [sys.executable, "-m", "harness.cli", "serve", "--port", str(port), "--db", str(server_dir / "items.db"),
            "--rate-limit", "0"]
    if workers > 1:  # chDB is one engine per process: several workers read a ClickHouse server or span files
        folder = server_dir / "span-files"
        folder.mkdir(exist_ok=True)
        for name in ("server-1000", "server-10"):
            for path in (cache / "datasets" / name).glob("spans-*.jsonl"):
                (folder / f"{name}-{path.name}").symlink_to(path)
        args += ["--workers", str(workers), "--spans", str(folder)]
    return args


def prism(cache: Path) -> list[str] | None:
    """The Prism command, installed once under the cache directory (never in the repository)."""
    prefix = cache / "prism"
    binary = prefix / "node_modules" / ".bin" / "prism"
    if not binary.exists():
        if shutil.which("npm") is None:
            return None
        common.log(f"installing {PRISM_PACKAGE} under {prefix} (once)")
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix), PRISM_PACKAGE],
                              capture_output=True, text=True)
        if done.returncode != 0 or not binary.exists():
            common.log(f"could not install Prism: {done.stderr[-500:]}")
            return None
    return [str(binary)]


def main() -> None:
    p = common.parser(__doc__ or "")
    p.add_argument("--duration", type=float, default=10.0, help="Seconds per wrk run (default %(default)s).")
    p.add_argument("--no-prism", action="store_true")
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn workers; above 1 the server reads span files instead of chDB (default 1).")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/server.py needs wrk: apt-get install wrk")
    cache: Path = args.cache
    work = cache / "work"
    server_dir, big_session, small_session = seed(work, cache)
    results = common.Results("server" if args.workers == 1 else f"server-{args.workers}-workers",
                             common.command_line(), args.scale)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {ADMIN}"}
    runs: dict[str, list[dict[str, float]]] = {}
    prism_cmd = None if args.no_prism else prism(cache)
    with process(serve_args(port, server_dir, args.workers, cache)) as server:
        wait_ready(f"{url}{BASE}/items/access", headers)
        for session in (big_session, small_session):
            r = httpx.post(f"{url}{BASE}/items/rebuild", json={"session_id": session}, headers=headers, timeout=600)
            r.raise_for_status()
            common.log(f"seeded: rebuild of session {session}: {r.json()}")
        listed = httpx.get(f"{url}{BASE}/items", params={"limit": 1}, headers=headers).json()
        item_id = listed["items"][0]["id"]
        targets = {
            "get_item": (f"{url}{BASE}/items/{item_id}", None),
            "list_items": (f"{url}{BASE}/items", None),
            "rebuild (10 items)": (f"{url}{BASE}/items/rebuild", json.dumps({"session_id": small_session})),
        }
        for target, body in targets.values():
            wrk(target, 2, body=body)  # warm-up
        for rep in range(args.repeat):
            for name, (target, body) in targets.items():
                run = wrk(target, args.duration, body=body)
                runs.setdefault(name, []).append(run)
                common.log(f"rep {rep + 1}: {name}: {run['rps']:,.0f} req/s, p50 {run['p50_ms']:.1f} ms, "
                           f"p99 {run['p99_ms']:.1f} ms, non-2xx {run['non_2xx']:.0f}")
        if server.poll() is not None:
            raise RuntimeError("harness serve exited during the run: " + (server.stderr.read().decode()[-2000:]))
    if prism_cmd is not None:
        prism_port = free_port()
        with process([*prism_cmd, "mock", str(common.ROOT / "openapi.yaml"), "-h", "127.0.0.1", "-p",
                      str(prism_port)]):
            # Prism serves the spec's paths without the `servers` base (/api/v1).
            prism_url = f"http://127.0.0.1:{prism_port}"
            prism_base = BASE.removeprefix("/api/v1")
            wait_ready(f"{prism_url}{prism_base}/items/access", headers, timeout=120)
            target = f"{prism_url}{prism_base}/items/00000000-0000-4000-8000-000000000000"
            wrk(target, 2)
            for rep in range(args.repeat):
                run = wrk(target, args.duration)
                runs.setdefault("prism get_item", []).append(run)
                common.log(f"rep {rep + 1}: prism get_item: {run['rps']:,.0f} req/s, p50 {run['p50_ms']:.1f} ms, "
                           f"p99 {run['p99_ms']:.1f} ms, non-2xx {run['non_2xx']:.0f}")

    def med(name: str, key: str) -> float:
        return common.median([r[key] for r in runs[name]])

    for name in ("get_item", "list_items", "rebuild (10 items)"):
        bad = sum(r["non_2xx"] for r in runs[name])
        measured = (f"{med(name, 'rps'):,.0f} req/s, p50 {med(name, 'p50_ms'):.1f} ms, p99 {med(name, 'p99_ms'):.1f} ms"
                    + (f", {bad:.0f} non-2xx" if bad else ""))
        if name == "get_item" and "prism get_item" in runs:
            ratio = med(name, "rps") / med("prism get_item", "rps")
            bad += sum(r["non_2xx"] for r in runs["prism get_item"])
            results.add("get_item requests/s >= Prism's (32 connections)",
                        measured + f" vs Prism {med('prism get_item', 'rps'):,.0f} req/s, "
                        f"p50 {med('prism get_item', 'p50_ms'):.1f} ms, p99 {med('prism get_item', 'p99_ms'):.1f} ms",
                        ratio, ratio >= 1.0 and bad == 0)
        else:
            results.add(f"{name} at 32 connections (no target; reported)", measured, None, None if not bad else False)
    if "prism get_item" not in runs:
        results.add("get_item requests/s >= Prism's", "Prism not available (npm missing or install failed)", None,
                    None)
    results.details = {"runs": runs, "duration_s": args.duration, "connections": CONNECTIONS,
                       "cpus": os.cpu_count(), "workers": args.workers}
    results.save(cache)


if __name__ == "__main__":
    main()
