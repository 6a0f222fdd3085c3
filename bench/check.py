"""The conformance run (issue 5, target 5): wall time of `harness check --level stateful` against the
reference server at default settings, and its ratio to plain `schemathesis run` with the same example
count on the same server.

Both runs get the same seed, the same credential and the same path parameters (org, workspace and
project `example`; without them Schemathesis would mostly generate paths of projects that do not
exist). `harness check` runs Schemathesis with its default phases (examples, coverage, fuzzing,
stateful) plus the harness's own checks; the baseline is `schemathesis run` with the same phases.
Targets: `harness check` under 60 s, and at most 1.5x the baseline.

If `harness check` is not registered on the `harness` command yet, the command object
(`harness.conformance.command.check`) is invoked directly, with the same options.

    python bench/check.py                  # 3 repetitions, 10 examples per operation (the default)
    python bench/check.py --repeat 1 --max-examples 5
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import common
import server as server_bench

ADMIN = "dev-admin-token"


def harness_check_command() -> list[str] | None:
    try:
        from harness.cli import main as cli
    except ImportError:
        return None
    if "check" in getattr(cli, "commands", {}):
        return [sys.executable, "-m", "harness.cli", "check"]
    try:
        import harness.conformance.command  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-c", "import sys; from harness.conformance.command import check; "
            "check.main(sys.argv[1:], prog_name='harness check')"]


def timed(args: list[str], cwd: Path) -> tuple[float, int, str]:
    """Run `args` in `cwd` (not the checkout: PYTHONPATH decides which harness runs)."""
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode, (done.stdout + done.stderr)[-3000:]


def main() -> None:
    p = common.parser(__doc__ or "")
    p.add_argument("--max-examples", type=int, default=10, help="Examples per operation and phase (harness "
                                                                 "check's default: %(default)s).")
    p.add_argument("--seed", type=int, default=20260101)
    args = p.parse_args()
    cache: Path = args.cache
    results = common.Results("check", common.command_line(), args.scale)
    check_cmd = harness_check_command()
    if check_cmd is None:
        results.add("harness check --level stateful < 60 s", "not available: harness.conformance is missing", None,
                    None)
        results.save(cache)
        return
    work = cache / "work" / "check"
    runs: dict[str, list[float]] = {"harness check": [], "schemathesis run": []}
    codes: dict[str, list[int]] = {"harness check": [], "schemathesis run": []}
    tails: dict[str, str] = {}
    for rep in range(args.repeat):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        (work / "schemathesis.toml").write_text(
            '[parameters]\n"path.org" = "example"\n"path.workspace" = "example"\n"path.project" = "example"\n')
        port = server_bench.free_port()
        url = f"http://127.0.0.1:{port}"
        serve = [sys.executable, "-m", "harness.cli", "serve", "--port", str(port), "--db", str(work / "items.db")]
        with server_bench.process(serve):
            server_bench.wait_ready(f"{url}{server_bench.BASE}/items/access", {"Authorization": f"Bearer {ADMIN}"})
            commands = {
                "harness check": [*check_cmd, "--base-url", url, "--token", ADMIN, "--level", "stateful",
                                  "--max-examples", str(args.max_examples), "--seed", str(args.seed)],
                "schemathesis run": ["schemathesis", "--config-file", str(work / "schemathesis.toml"), "run",
                                     str(common.ROOT / "openapi.yaml"), "--url", f"{url}/api/v1",
                                     "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                                     "-H", f"Authorization: Bearer {ADMIN}", "--no-color"],
            }
            order = list(commands) if rep % 2 == 0 else list(reversed(commands))  # neither always runs first
            for name in order:
                seconds, code, tail = timed(commands[name], work)
                runs[name].append(seconds)
                codes[name].append(code)
                tails[name] = tail
                common.log(f"rep {rep + 1}: {name}: {seconds:.1f}s (exit {code})")
    ours = common.median(runs["harness check"])
    base = common.median(runs["schemathesis run"])
    ratios = [a / b for a, b in zip(runs["harness check"], runs["schemathesis run"], strict=True)]
    passed = all(code == 0 for code in codes["harness check"])
    results.add("harness check --level stateful < 60 s (reference server, default settings)",
                f"{ours:.1f}s (exit codes {codes['harness check']})", ours / 60.0, ours < 60.0 and passed)
    results.add("harness check <= 1.5x plain schemathesis run (same example count)",
                f"{ours:.1f}s vs {base:.1f}s (schemathesis exit codes {codes['schemathesis run']}; "
                f"{args.max_examples} examples/operation)", common.median(ratios), common.median(ratios) <= 1.5)
    results.details = {"seconds": runs, "exit_codes": codes, "output_tails": tails,
                       "max_examples": args.max_examples, "seed": args.seed, "command": check_cmd}
    results.save(cache)


if __name__ == "__main__":
    main()
