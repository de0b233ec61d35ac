"""Database bytes per check: how much the history grows for unchanged and changed checks.

    .venv/bin/python bench/db_growth.py [--tokens 20] [--models 1000] [--cycles 50]
    MODEL_MONITOR_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/db_growth.py

Runs real check cycles against the simulated gateway into a fresh database, then prints
the growth per check: for SQLite the file size after a WAL checkpoint, for PostgreSQL
the total relation size of the tables (in a throwaway schema).
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.store.database import Database, open_database


def sqlite_size(db: Database) -> int:
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(db.url.database or "")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def postgres_size(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            ).scalar_one()
        )


def measure(
    db: Database, size: Callable[[Database], int], tokens: int, models: int, cycles: int
) -> None:
    values = {f"t{i}": f"sk-bench-{secrets.token_hex(8)}" for i in range(tokens)}
    base = [make_model(f"model-{i:05d}", ("openai",)) for i in range(models)]
    with GatewaySimulator(seed=1) as gateway:
        gateway.set_group("default", base)
        for value in values.values():
            gateway.add_token(value, group="default")
        checker = Checker(sim_config(gateway.base_url, values, concurrency=8), db)
        checker.check()  # baselines
        checker.check()
        start = size(db)
        for _ in range(cycles):
            checker.check()
        unchanged = (size(db) - start) / (cycles * tokens)
        start = size(db)
        for cycle in range(cycles):
            gateway.set_group("default", [*base, make_model(f"new-{cycle}", ("openai",))])
            checker.check()
        changed = (size(db) - start) / (cycles * tokens)
    print(f"  unchanged check: {unchanged:8.0f} bytes/check")
    print(
        f"  changed check:   {changed:8.0f} bytes/check  (a new {models}-model list each cycle, "
        f"one event, shared by {tokens} tokens)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=50)
    args = parser.parse_args()
    print(f"{args.tokens} tokens x {args.models} models, {args.cycles} cycles each")
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        print("SQLite:")
        measure(db, sqlite_size, args.tokens, args.models, args.cycles)
        db.close()
    url = os.environ.get("MODEL_MONITOR_BENCH_POSTGRES_URL")
    if url:
        schema = f"mm_bench_{secrets.token_hex(4)}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            db = open_database(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
            print("PostgreSQL:")
            measure(db, postgres_size, args.tokens, args.models, args.cycles)
            db.close()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


if __name__ == "__main__":
    main()
