"""Time to parse + normalize + diff a models list of N models (default 1,000, 5,000, 50,000).

    .venv/bin/python bench/diff_speed.py [N ...]

Prints, per size: the median of several runs of each stage, in milliseconds. The input
is a new-api style response body (~128 bytes per model), decoded with orjson as the
fetcher does; the "after" list has 1% of models removed, 1% added and 1% with changed
endpoint types. "parse" and "hash" are the steady state (the models were seen before:
interned records, cached encodings); "parse new" and "hash new" start from empty tables,
as for a list never seen before.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import orjson

from monitor.config import Secret
from monitor.core.diff import diff_models
from monitor.core.records import Encodings, ModelRecord, canonical_json, content_hash
from monitor.events.guard import GuardState, observe
from monitor.sim import make_model
from monitor.sources.interning import RecordTable
from monitor.sources.openai_compat import NewApiFlavor

T = TypeVar("T")


def body(n: int, variant: int) -> bytes:
    models = []
    for i in range(n):
        if variant and i % 100 == 0:
            continue  # removed
        types = ["openai", "openai-response"] if variant and i % 100 == 1 else ["openai"]
        models.append(make_model(f"model-{i:06d}", types))
    if variant:
        models += [make_model(f"new-{i:06d}", ["openai"]) for i in range(n // 100)]
    return json.dumps({"data": models, "object": "list", "success": True}).encode()


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), result


def measure(n: int) -> str:
    table, encodings = RecordTable(), Encodings()
    flavor = NewApiFlavor(table)
    request = flavor.first_request("http://127.0.0.1/v1", Secret("sk-bench"))

    def parse(raw: bytes) -> dict[str, ModelRecord]:
        return {m.id: m for m in flavor.parse(orjson.loads(raw), request).models}

    def parse_new(raw: bytes) -> dict[str, ModelRecord]:
        table.clear()
        return parse(raw)

    def hash_new(models: dict[str, ModelRecord]) -> str:
        return content_hash(canonical_json(models, Encodings()))

    repeat = 5 if n > 10_000 else 21
    raw_before, raw_after = body(n, 0), body(n, 1)
    before = parse(raw_before)
    t_parse_new, _ = timed(lambda: parse_new(raw_after), repeat)
    fresh = parse_new(raw_after)
    t_hash_new, _ = timed(lambda: hash_new(fresh), repeat)
    t_parse, after = timed(lambda: parse(raw_after), repeat)
    t_hash, _ = timed(lambda: content_hash(canonical_json(after, encodings)), repeat)
    t_diff, changes = timed(lambda: diff_models(before, after), repeat)
    view = GuardState(before, {})
    t_guard, _ = timed(lambda: observe(view, after, 1), repeat)
    total = t_parse + t_hash + t_diff
    return (
        f"{n:>8} {len(raw_after):>10} {t_parse:>8.2f} {t_hash:>8.2f} {t_diff:>8.2f} "
        f"{t_guard:>8.2f} {total:>8.2f} {t_parse_new:>10.2f} {t_hash_new:>9.2f}"
        f"  ({len(changes)} changes)"
    )


def main(sizes: list[int]) -> None:
    print(
        f"{'models':>8} {'bytes':>10} {'parse':>8} {'hash':>8} {'diff':>8} "
        f"{'guard':>8} {'total':>8} {'parse new':>10} {'hash new':>9}  (ms, median)"
    )
    for n in sizes:
        print(measure(n))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 5_000, 50_000])
