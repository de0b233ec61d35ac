"""Check cycles as users run them: the installed CLI, tokens from `token_env`, a real gateway.

    .venv/bin/python bench/cli_cycle.py [--gateway plain|sim] [--tokens 1000] [--models 1000]
        [--latency 0.05] [--extra-env 0,10,10000] [--repeat 3] [--concurrency N] [--probe]

`model-monitor -q check` runs as a subprocess with every token in its own environment
variable (as `token_env` reads them), against either the plain standard-library gateway
of bench/plain_gateway.py or the project's simulator, each in a child process of its own.
For each count of unrelated environment variables it prints the baseline cycle, the
median of --repeat unchanged cycles and a cycle with one model added: wall time, the CPU
time of the whole `check` process (start-up included), and the network floor
(ceil(tokens / concurrency) x latency), and the process's peak memory. Then the start-up
of `--version` and `config check`. With --probe the source has `probe = true`: each cycle
also sends its cap of probes (docs/probes.md), one call per token at 1,000 tokens.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from plain_gateway import PlainGateway


def token_values(tokens: int) -> dict[str, str]:
    # As bench/cycle.py names them; not imported from there, which would load the project
    # into this process and into the peak memory its children inherit at fork.
    return {f"t{i:05d}": f"sk-bench-{i:012d}" for i in range(tokens)}


def serve(conn: Connection, kind: str, tokens: int, models: int, latency: float) -> None:
    """The gateway's process: answers until told to stop; "add" grows the list by one."""
    if kind == "plain":
        server = PlainGateway(models, latency)
        import threading

        threading.Thread(target=server.serve_forever, daemon=True).start()
        conn.send(f"http://127.0.0.1:{server.server_port}/v1")
        while (command := conn.recv()) != "stop":
            server.add_model(f"added-{command}")
            conn.send("ok")
        server.shutdown()
        return
    from cycle import serve as serve_simulator  # bench/cycle.py's gateway process

    serve_simulator(conn, tokens, models, latency)


def write_config(
    path: Path, base_url: str, tokens: int, concurrency: int | None, probe: bool = False
) -> None:
    lines = ["[monitor]", f'database = "sqlite:///{path.parent / "bench.db"}"']
    if concurrency:
        lines.append(f"concurrency = {concurrency}")
    lines += ["", "[[sources]]", 'name = "gw"', f'base_url = "{base_url}"', 'flavor = "new-api"']
    if probe:  # every check sends its cap of probes (20 by default): the sweep
        lines += ["probe = true", 'probe_delay = "0s"']
    for name in token_values(tokens):
        lines += ["", "[[tokens]]", f'name = "{name}"', 'source = "gw"']
        lines.append(f'token_env = "MM_BENCH_{name.upper()}"')
    path.write_text("\n".join(lines) + "\n")


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one command, from the kernel's account of it."""
    wall = time.perf_counter()
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - wall
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv[-2:])} exited {child.returncode}:\n{errors[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateway", choices=("plain", "sim"), default="plain")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--extra-env", default="10,10000", help="unrelated variables, per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the product's")
    parser.add_argument(
        "--probe", action="store_true", help="probe = true (plain gateway: chat completions)"
    )
    args = parser.parse_args()

    cli = shutil.which("model-monitor", path=str(Path(sys.executable).parent))
    if cli is None:
        sys.exit("model-monitor is not installed next to this Python; pip install . first")
    concurrency = args.concurrency or 16
    floor = math.ceil(args.tokens / concurrency) * args.latency
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    gateway = ctx.Process(
        target=serve,
        args=(child, args.gateway, args.tokens, args.models, args.latency),
        daemon=True,
    )
    gateway.start()
    load = os.getloadavg()
    try:
        base_url = parent.recv()
        print(
            f"{args.gateway} gateway, {args.tokens} tokens x {args.models} models, latency "
            f"{args.latency * 1000:g} ms, concurrency {concurrency}; network floor {floor:.2f} s;"
            f" load average before: {load[0]:.2f}"
        )
        print(
            f"{'extra env':>9}  {'cycle':<24} {'wall s':>7} {'cpu s':>7} {'peak MB':>8}"
            f" {'wall/floor':>10}"
        )
        added = 0
        for extra in (int(n) for n in args.extra_env.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                config = Path(tmp) / "config.toml"
                write_config(config, base_url, args.tokens, args.concurrency, args.probe)
                env = {k: v for k, v in os.environ.items() if not k.startswith("MM_BENCH_")}
                env.update({f"UNRELATED_{i:05d}": "x" * 40 for i in range(extra)})
                env.update(
                    {f"MM_BENCH_{n.upper()}": v for n, v in token_values(args.tokens).items()}
                )
                argv = [cli, "-q", "--config", str(config), "check"]

                def row(
                    name: str, wall: float, cpu: float, peak: float, extra: int = extra
                ) -> None:
                    ratio = "-" if name.startswith("start-up") else f"{wall / floor:.2f}x"
                    print(
                        f"{extra:>9}  {name:<24} {wall:>7.2f} {cpu:>7.2f} {peak:>8.0f} {ratio:>10}",
                        flush=True,
                    )

                row("baseline", *run(argv, env))
                samples = [run(argv, env) for _ in range(args.repeat)]
                row(
                    f"unchanged (median of {args.repeat})",
                    *(statistics.median(s[i] for s in samples) for i in range(3)),
                )
                added += 1
                parent.send(added)
                parent.recv()
                row("one model added", *run(argv, env))
                if extra == 10:
                    for name, command in (
                        ("--version", [cli, "--version"]),
                        ("config check", [cli, "--config", str(config), "config", "check"]),
                    ):
                        times = [run(command, env) for _ in range(5)]
                        row(
                            f"start-up: {name}",
                            *(statistics.median(t[i] for t in times) for i in range(3)),
                        )
    finally:
        parent.send("stop")
        gateway.join(10)


if __name__ == "__main__":
    main()
