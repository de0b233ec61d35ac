"""Wall and CPU time of full check cycles: N tokens x M models against the simulator.

    .venv/bin/python bench/cycle.py [--tokens 1000] [--models 1000] [--latency 0.05]
                                    [--concurrency N] [--repeat 3] [--profile FILE]

The simulated new-api gateway runs in a child process (so its CPU is not charged to the
checker) and adds `latency` seconds to every answer. The checker uses the default
settings of `sim_config` (the product default `concurrency` unless --concurrency is
given) and a fresh SQLite file. Prints: the baseline cycle, the median of --repeat
unchanged cycles, and one cycle in which one model was added, each with its wall time,
the checker process's CPU time and the network floor (tokens x latency / concurrency).
--profile writes a cProfile of one unchanged cycle to FILE (view with `python -m pstats`).
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from monitor.runtime.cycle import Checker
from monitor.runtime.heap import freeze_startup_objects
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.store.database import open_database


def token_values(tokens: int) -> dict[str, str]:
    return {f"t{i:05d}": f"sk-bench-{i:012d}" for i in range(tokens)}


def serve(conn: Connection, tokens: int, models: int, latency: float) -> None:
    """The child process: a gateway whose model list can be changed over `conn`."""
    base = [make_model(f"model-{i:05d}", ("openai",)) for i in range(models)]
    with GatewaySimulator(seed=1, latency=latency) as gateway:
        gateway.set_group("default", base)
        for value in token_values(tokens).values():
            gateway.add_token(value, group="default")
        conn.send(gateway.base_url)
        while True:
            command = conn.recv()
            if command == "stop":
                break
            gateway.set_group("default", [*base, make_model(str(command), ("openai",))])
            conn.send("ok")


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of another process so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_cycle(
    checker: Checker, gateway_pid: int, profile: cProfile.Profile | None = None
) -> tuple[float, float, float | None]:
    """(wall, checker CPU, gateway CPU) seconds of one cycle."""
    gateway = process_cpu(gateway_pid)
    wall, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    checker.check()
    if profile is not None:
        profile.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = process_cpu(gateway_pid)
    return wall, cpu, None if gateway is None or after is None else after - gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the product's")
    parser.add_argument("--repeat", type=int, default=3, help="unchanged cycles (median)")
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(
        target=serve, args=(child, args.tokens, args.models, args.latency), daemon=True
    )
    server.start()
    try:
        base_url = parent.recv()
        settings = {} if args.concurrency is None else {"concurrency": args.concurrency}
        config = sim_config(base_url, token_values(args.tokens), **settings)
        concurrency = config.monitor.concurrency
        floor = args.tokens * args.latency / min(concurrency, args.tokens)
        print(
            f"{args.tokens} tokens x {args.models} models, latency {args.latency * 1000:g} ms, "
            f"concurrency {concurrency}; network floor {floor:.2f} s"
        )
        print(f"{'cycle':<22} {'wall s':>8} {'cpu s':>8} {'floor s':>8} {'gateway cpu s':>14}")
        with tempfile.TemporaryDirectory() as tmp:
            db = open_database(f"sqlite:///{Path(tmp) / 'cycle.db'}")
            checker = Checker(config, db)
            freeze_startup_objects()  # as `model-monitor check` and `run` do

            def row(name: str, wall: float, cpu: float, gateway: float | None) -> None:
                busy = "-" if gateway is None else f"{gateway:.2f}"
                print(f"{name:<22} {wall:>8.2f} {cpu:>8.2f} {floor:>8.2f} {busy:>14}", flush=True)

            pid = server.pid or 0
            row("baseline", *timed_cycle(checker, pid))
            samples = [timed_cycle(checker, pid) for _ in range(args.repeat)]
            row(
                f"unchanged (median of {args.repeat})",
                *(statistics.median(s[i] for s in samples) for i in (0, 1)),
                None if samples[0][2] is None else statistics.median(s[2] for s in samples),
            )
            parent.send("model-added")
            parent.recv()
            row("one model added", *timed_cycle(checker, pid))
            if args.profile is not None:
                profile = cProfile.Profile()
                row("unchanged (profiled)", *timed_cycle(checker, pid, profile))
                profile.dump_stats(args.profile)
                print(f"profile written to {args.profile}")
            db.close()
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
