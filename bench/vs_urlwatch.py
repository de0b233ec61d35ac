"""Side by side with urlwatch: the same gateway, tokens and cycles; wall time and database growth.

    .venv/bin/pip install -e '.[bench]'          # urlwatch, from PyPI
    .venv/bin/python bench/vs_urlwatch.py [--tokens 200] [--models 1000] [--latency 50]
                                          [--concurrency N] [--urlwatch-workers N]
                                          [--urlwatch-jobs both]

One simulated new-api gateway (the child process of bench/cycle.py, on loopback) serves
N tokens x M models and adds --latency milliseconds to every answer. Both tools poll every
token's `GET /v1/models` in three cycles: a baseline, an unchanged cycle, and a cycle
after one model was added to the list every token sees.

model-monitor runs in this process through the same `Checker` path as bench/cycle.py
(the settings of `sim_config`, the product's default concurrency) on a fresh SQLite file.
urlwatch runs as a subprocess per cycle, its CLI entry point with its own --urls, --config,
--cache and --hooks files in a temp dir (and HOME pointing there too), one `url` job per
token with the `Authorization: Bearer` header and no reporter enabled. urlwatch has no
setting for its thread count: it is the module constant `urlwatch.worker.MAX_WORKERS`
(10), which the launcher sets to --urlwatch-workers (default: model-monitor's concurrency).

The gateway returns the `data` array in a random order on every request, as new-api does.
--urlwatch-jobs picks the urlwatch job lists: "raw" (the response text as it comes),
"sorted" (urlwatch's built-in `format-json` then `sort` filters: the sorted lines of the
pretty-printed JSON do not depend on the order, but no longer say which model a field
belongs to) or "both" (default; two separate urlwatch setups, each with its own cache).

Database size: model-monitor's is the .db file plus its -wal after
`PRAGMA wal_checkpoint(TRUNCATE)` (the -shm index is not counted); urlwatch's is cache.db
plus any -journal/-wal file, measured after its process exited. Growth is the size after a
cycle minus the size before it (before the baseline: model-monitor's empty schema, while
urlwatch's cache.db does not exist yet). urlwatch's wall and CPU times include its process
start-up, which is also printed on its own (a run with an empty job list).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from cycle import serve, token_values  # the same simulated gateway, in a child process

import monitor
from monitor.heap import freeze_startup_objects
from monitor.pipeline import Checker
from monitor.sim.config import sim_config
from monitor.store.database import Database, open_database

# Runs urlwatch's own CLI entry point after setting its thread count, which urlwatch
# keeps as a module constant (no config key, no flag).
LAUNCHER = (
    "import sys, urlwatch.worker; urlwatch.worker.MAX_WORKERS = int(sys.argv.pop(1)); "
    "from urlwatch.cli import main; main()"
)
FILTERS = {"raw": None, "sorted": ["format-json", "sort"]}


@dataclass
class Sample:
    wall: float
    cpu: float
    size: int
    changed: int  # tokens/jobs recorded as new or changed in this cycle
    errors: int


def files_size(db: Path) -> int:
    """The database file plus its journal/WAL, if any (never the -shm index)."""
    return sum(
        p.stat().st_size
        for p in (db, *(db.with_name(db.name + s) for s in ("-wal", "-journal")))
        if p.exists()
    )


class ModelMonitor:
    def __init__(
        self, base_url: str, tokens: dict[str, str], path: Path, concurrency: int | None
    ) -> None:
        settings = {} if concurrency is None else {"concurrency": concurrency}
        self.config = sim_config(base_url, tokens, **settings)
        self.path = path
        self.db: Database = open_database(f"sqlite:///{path}")
        self.checker = Checker(self.config, self.db)
        freeze_startup_objects()  # as `model-monitor check` and `run` do

    def size(self) -> int:
        with self.db.engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            print("warning: model-monitor WAL checkpoint was blocked", file=sys.stderr)
        return files_size(self.path)

    def counts(self) -> str:
        with self.db.engine.connect() as conn:
            n = conn.exec_driver_sql(
                "SELECT (SELECT count(*) FROM checks), (SELECT count(*) FROM snapshots), "
                "(SELECT count(*) FROM events)"
            ).one()
        return f"{n[0]} checks rows, {n[1]} snapshots rows, {n[2]} events rows"

    def cycle(self) -> Sample:
        wall, cpu = time.perf_counter(), time.process_time()
        reports = self.checker.check()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        tokens = [t for report in reports for t in report.tokens]
        return Sample(
            wall,
            cpu,
            self.size(),
            sum(1 for t in tokens if t.baseline or t.changes),
            sum(1 for t in tokens if t.error is not None),
        )

    def close(self) -> None:
        self.db.close()


class Urlwatch:
    def __init__(
        self, base_url: str, tokens: dict[str, str], folder: Path, workers: int, kind: str
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
            str(workers),
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
    return f"{a / b:.1f}" if b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=200, help="tokens (default 200)")
    parser.add_argument("--models", type=int, default=1000, help="models per list (default 1000)")
    parser.add_argument(
        "--latency", type=float, default=50.0, help="milliseconds added to every answer (50)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="model-monitor's concurrency (default: the product's), and urlwatch's threads",
    )
    parser.add_argument(
        "--urlwatch-workers",
        type=int,
        default=None,
        help="urlwatch's thread count (default: model-monitor's concurrency)",
    )
    parser.add_argument(
        "--urlwatch-jobs",
        choices=("raw", "sorted", "both"),
        default="both",
        help="urlwatch job lists to run (default both)",
    )
    args = parser.parse_args()
    try:
        version("urlwatch")
    except PackageNotFoundError:
        parser.error("urlwatch is not installed: .venv/bin/pip install -e '.[bench]'")

    tokens = token_values(args.tokens)
    kinds = ("raw", "sorted") if args.urlwatch_jobs == "both" else (args.urlwatch_jobs,)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(
        target=serve, args=(child, args.tokens, args.models, args.latency / 1000), daemon=True
    )
    server.start()
    try:
        base_url = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            mm = ModelMonitor(base_url, tokens, Path(tmp) / "monitor.db", args.concurrency)
            concurrency = mm.config.monitor.concurrency
            workers = args.urlwatch_workers or concurrency
            watchers = {
                f"urlwatch {kind}": Urlwatch(base_url, tokens, Path(tmp) / kind, workers, kind)
                for kind in kinds
            }
            idle = Urlwatch(base_url, {}, Path(tmp) / "empty", workers, "raw")
            startup = statistics.median(idle.run()[0] for _ in range(3))
            floor = args.tokens * args.latency / 1000 / min(concurrency, args.tokens)

            print(
                f"model-monitor {version('model-monitor')} from {Path(monitor.__file__).parent} "
                f"(in-process Checker, concurrency {concurrency}) vs urlwatch "
                f"{version('urlwatch')} (subprocess, max_workers {workers}); "
                f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
            )
            print(
                f"{args.tokens} tokens x {args.models} models, latency {args.latency:g} ms, "
                f"gateway {base_url}; network floor {floor:.2f} s per cycle at {concurrency}"
            )
            print(
                f"urlwatch start-up and exit with an empty job list: {startup:.2f} s "
                "(median of 3; included in urlwatch's wall times below)"
            )
            print("urlwatch raw: the response text as received; urlwatch sorted: filters")
            print("  format-json + sort (order-independent text). changed: tokens recorded as")
            print("  new or changed in the cycle; cpu: the checker process (model-monitor) or")
            print("  the urlwatch process; x: urlwatch / model-monitor.")
            print()
            header = (
                f"{'cycle':<16} {'tool':<16} {'wall s':>7} {'cpu s':>7} {'changed':>7} "
                f"{'errors':>6} {'db bytes':>12} {'growth bytes':>13} {'wall x':>7} "
                f"{'growth x':>8}"
            )
            print(header)
            print("-" * len(header))
            sizes = {"model-monitor": mm.size(), **dict.fromkeys(watchers, 0)}
            cycles = (("baseline", None), ("unchanged", None), ("one model added", "model-added"))
            for name, change in cycles:
                if change is not None:
                    parent.send(change)
                    parent.recv()
                ref = mm.cycle()
                results = {"model-monitor": ref}
                for tool, watcher in watchers.items():
                    results[tool] = watcher.cycle()
                for tool, s in results.items():
                    growth = s.size - sizes[tool]
                    sizes[tool] = s.size
                    if tool == "model-monitor":
                        ref_growth, xs = growth, ("", "")
                    else:
                        xs = (ratio(s.wall, ref.wall), ratio(growth, ref_growth))
                    print(
                        f"{name if tool == 'model-monitor' else '':<16} {tool:<16} "
                        f"{s.wall:>7.2f} {s.cpu:>7.2f} {s.changed:>7} {s.errors:>6} "
                        f"{s.size:>12,} {growth:>13,} {xs[0]:>7} {xs[1]:>8}",
                        flush=True,
                    )
            print()
            print(f"model-monitor database: {mm.counts()}")
            for tool, watcher in watchers.items():
                print(f"{tool} cache: {watcher.rows()[0]} CacheEntry rows")
            mm.close()
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
