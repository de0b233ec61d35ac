"""Side by side with urlwatch: the same gateway, tokens and cycles, both as users run them.

    .venv/bin/pip install '.[bench]'             # urlwatch, from PyPI
    .venv/bin/python bench/vs_urlwatch.py [--gateway plain|sim] [--tokens 1000]
        [--models 1000] [--latency 0.05] [--concurrency default,32] [--urlwatch-jobs raw]

One gateway process (bench/plain_gateway.py, or the project's simulator) serves N tokens
x M models with --latency seconds added to every answer, the list in a new order each
time, as new-api sends it. Both tools poll every token's `GET /v1/models` in three
cycles: a baseline, an unchanged cycle, and a cycle after one model was added to the list.

model-monitor is the installed CLI, `model-monitor -q check`, a process per cycle, with
every token in an environment variable of its own (`token_env`) and a fresh SQLite file.
urlwatch is its own CLI entry point, a process per cycle, with its --urls, --config,
--cache and --hooks files in a temp dir (HOME too), one `url` job per token with the
`Authorization: Bearer` header and no reporter enabled. Each --concurrency setting runs
both from scratch: "default" leaves each at its own default (model-monitor 16 requests at
a time; urlwatch's `urlwatch.worker.MAX_WORKERS`, 10), a number sets both (urlwatch has no
setting for it: the launcher sets the module constant).

--urlwatch-jobs picks urlwatch's job lists: "raw" (the response text as it comes: what a
user gets from a plain `url` job), "sorted" (its built-in `format-json` then `sort`
filters, whose output does not depend on the order but no longer says which model a field
belongs to) or "both" (two separate urlwatch setups).

Wall and CPU are each whole process's, start-up included (the kernel's account, wait4 /
RUSAGE_CHILDREN). Storage: model-monitor's .db plus its -wal after a checkpoint, urlwatch's
cache.db plus any journal; growth is the size after a cycle minus before it, and "per
check" divides it by the tokens. changed: tokens recorded as new or changed in the cycle.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from cli_cycle import run, serve, token_values, write_config

# Runs urlwatch's own CLI entry point after setting its thread count, which urlwatch
# keeps as a module constant (no config key, no flag); "default" leaves it alone.
LAUNCHER = (
    "import sys, urlwatch.worker; workers = sys.argv.pop(1); "
    "urlwatch.worker.MAX_WORKERS = int(workers) if workers != 'default' "
    "else urlwatch.worker.MAX_WORKERS; from urlwatch.cli import main; main()"
)
FILTERS = {"raw": None, "sorted": ["format-json", "sort"]}
MODEL_MONITOR_DEFAULT_CONCURRENCY = 16
URLWATCH_DEFAULT_WORKERS = 10


@dataclass
class Sample:
    wall: float
    cpu: float
    size: int
    changed: int  # tokens recorded as new or changed in this cycle
    errors: int


def files_size(db: Path) -> int:
    """The database file plus its journal/WAL, if any (never the -shm index)."""
    return sum(
        p.stat().st_size
        for p in (db, *(db.with_name(db.name + s) for s in ("-wal", "-journal")))
        if p.exists()
    )


class ModelMonitor:
    """The installed CLI, one `check` process per cycle, tokens from the environment."""

    def __init__(
        self, cli: str, base_url: str, tokens: dict[str, str], folder: Path, concurrency: int | None
    ) -> None:
        folder.mkdir()
        config = folder / "config.toml"
        write_config(config, base_url, len(tokens), concurrency)
        self.db = folder / "bench.db"
        self.argv = [cli, "-q", "--config", str(config), "check"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MM_BENCH_")}
        self.env.update({f"MM_BENCH_{name.upper()}": value for name, value in tokens.items()})
        self.last_check = 0

    def size(self) -> int:
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as conn:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        conn.close()
        if busy:
            print("warning: model-monitor WAL checkpoint was blocked", file=sys.stderr)
        return files_size(self.db)

    def cycle(self) -> Sample:
        wall, cpu, _ = run(self.argv, self.env)
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            changed, errors, last = conn.execute(
                "SELECT coalesce(sum(outcome = 'ok' AND (baseline OR previous IS NULL"
                " OR snapshot_id != previous)), 0), coalesce(sum(outcome != 'ok'), 0),"
                " coalesce(max(id), 0) FROM (SELECT id, outcome, baseline, snapshot_id,"
                " lag(snapshot_id) OVER (PARTITION BY token ORDER BY id) AS previous"
                " FROM checks) WHERE id > ?",
                (self.last_check,),
            ).fetchone()
        conn.close()
        self.last_check = max(self.last_check, last)
        return Sample(wall, cpu, self.size(), changed, errors)


class Urlwatch:
    def __init__(
        self, base_url: str, tokens: dict[str, str], folder: Path, workers: str, kind: str
    ) -> None:
        folder.mkdir()
        self.cache = folder / "cache.db"
        self.urls = folder / "urls.yaml"
        jobs = []
        for name, value in tokens.items():
            # urlwatch keys its cache by URL: a fragment (never sent) keeps each job apart.
            job: dict[str, object] = {
                "name": name,
                "url": f"{base_url}/models#{name}",
                "headers": {"Authorization": f"Bearer {value}"},
            }
            if FILTERS[kind] is not None:
                job["filter"] = FILTERS[kind]
            jobs.append(json.dumps(job))  # JSON is YAML; one document per job
        self.urls.write_text("\n---\n".join(jobs) + "\n")
        self.config = folder / "urlwatch.yaml"
        # Every reporter but stdout is disabled by urlwatch's defaults; stdout is turned off.
        self.config.write_text(json.dumps({"report": {"stdout": {"enabled": False}}}) + "\n")
        home = folder / "home"
        home.mkdir()
        proxies = {"http_proxy", "https_proxy", "all_proxy"}
        self.env = {k: v for k, v in os.environ.items() if k.lower() not in proxies}
        self.env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_CACHE_HOME=str(home / ".cache"),
        )
        self.command = [
            sys.executable,
            "-c",
            LAUNCHER,
            workers,
            "--urls",
            str(self.urls),
            "--config",
            str(self.config),
            "--cache",
            str(self.cache),
            "--hooks",
            str(folder / "hooks.py"),  # never created
        ]

    def run(self) -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        done = subprocess.run(
            self.command, env=self.env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0 or done.stdout.strip():
            raise SystemExit(
                f"urlwatch exited {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu

    def rows(self) -> tuple[int, int]:
        """(entries, entries of failed tries) in urlwatch's cache."""
        if not self.cache.exists():
            return 0, 0
        with sqlite3.connect(f"file:{self.cache}?mode=ro", uri=True) as conn:
            total, failed = conn.execute(
                "SELECT count(*), coalesce(sum(tries > 0), 0) FROM CacheEntry"
            ).fetchone()
        conn.close()
        return int(total), int(failed)

    def cycle(self) -> Sample:
        rows, failed = self.rows()
        wall, cpu = self.run()
        rows_after, failed_after = self.rows()
        errors = failed_after - failed
        # urlwatch adds a row for every new or changed job (and for every failed try).
        return Sample(wall, cpu, files_size(self.cache), rows_after - rows - errors, errors)


def ratio(a: float, b: float) -> str:
    if b <= 0:
        return "-" if a <= 0 else "inf"
    return f"{a / b:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateway", choices=("plain", "sim"), default="plain")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds (0.05)")
    parser.add_argument(
        "--concurrency",
        default="default,32",
        help="comma-separated settings, each run from scratch: 'default' or a number",
    )
    parser.add_argument("--urlwatch-jobs", choices=("raw", "sorted", "both"), default="raw")
    args = parser.parse_args()
    try:
        urlwatch_version = version("urlwatch")
    except PackageNotFoundError:
        parser.error("urlwatch is not installed: .venv/bin/pip install '.[bench]'")
    cli = shutil.which("model-monitor", path=str(Path(sys.executable).parent))
    if cli is None:
        sys.exit("model-monitor is not installed next to this Python; pip install . first")

    tokens = token_values(args.tokens)
    kinds = ("raw", "sorted") if args.urlwatch_jobs == "both" else (args.urlwatch_jobs,)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    gateway = ctx.Process(
        target=serve,
        args=(child, args.gateway, args.tokens, args.models, args.latency),
        daemon=True,
    )
    gateway.start()
    load = os.getloadavg()
    added = 0
    try:
        base_url = parent.recv()
        print(
            f"model-monitor {version('llm-model-monitor')} ({cli}) vs urlwatch {urlwatch_version};"
            f" Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version};"
            f" load average before: {load[0]:.2f}"
        )
        print(
            f"{args.gateway} gateway, {args.tokens} tokens x {args.models} models, latency"
            f" {args.latency * 1000:g} ms; wall x and cpu x: urlwatch / model-monitor"
        )
        for setting in args.concurrency.split(","):
            mm_concurrency = None if setting == "default" else int(setting)
            workers = {
                "model-monitor": mm_concurrency or MODEL_MONITOR_DEFAULT_CONCURRENCY,
                **dict.fromkeys(
                    (f"urlwatch {k}" for k in kinds),
                    URLWATCH_DEFAULT_WORKERS if setting == "default" else int(setting),
                ),
            }
            with tempfile.TemporaryDirectory() as tmp:
                tools: dict[str, ModelMonitor | Urlwatch] = {
                    "model-monitor": ModelMonitor(
                        cli, base_url, tokens, Path(tmp) / "mm", mm_concurrency
                    )
                }
                for kind in kinds:
                    tools[f"urlwatch {kind}"] = Urlwatch(
                        base_url, tokens, Path(tmp) / kind, setting, kind
                    )
                print()
                print(
                    f"concurrency {setting}: "
                    + ", ".join(
                        f"{tool} {n} (floor {math.ceil(args.tokens / n) * args.latency:.2f} s)"
                        for tool, n in workers.items()
                    )
                )
                header = (
                    f"{'cycle':<16} {'tool':<16} {'wall s':>7} {'cpu s':>7} {'changed':>7}"
                    f" {'errors':>6} {'db bytes':>12} {'growth':>12} {'per check':>9}"
                    f" {'wall x':>7} {'cpu x':>6} {'growth x':>8}"
                )
                print(header)
                print("-" * len(header))
                sizes = dict.fromkeys(tools, 0)
                for name in ("baseline", "unchanged", "one model added"):
                    if name == "one model added":
                        added += 1
                        parent.send(f"added-{added}")
                        parent.recv()
                    results = {tool: runner.cycle() for tool, runner in tools.items()}
                    ref = results["model-monitor"]
                    ref_growth = ref.size - sizes["model-monitor"]
                    for tool, s in results.items():
                        growth = s.size - sizes[tool]
                        sizes[tool] = s.size
                        xs = ("", "", "")
                        if tool != "model-monitor":
                            xs = (
                                ratio(s.wall, ref.wall),
                                ratio(s.cpu, ref.cpu),
                                ratio(growth, ref_growth),
                            )
                        print(
                            f"{name if tool == 'model-monitor' else '':<16} {tool:<16}"
                            f" {s.wall:>7.2f} {s.cpu:>7.2f} {s.changed:>7} {s.errors:>6}"
                            f" {s.size:>12,} {growth:>12,} {growth / args.tokens:>9,.0f}"
                            f" {xs[0]:>7} {xs[1]:>6} {xs[2]:>8}",
                            flush=True,
                        )
    finally:
        parent.send("stop")
        gateway.join(10)


if __name__ == "__main__":
    main()
