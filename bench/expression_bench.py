"""The time box for pipeline authors' expressions: what a worker process costs, and what it bounds.

    .venv/bin/python bench/expression_bench.py [--repeat N]

1. One JSONata evaluation in the engine's process (the peer: the pure core, as the engine ran it
   before) beside the same evaluation in an expression worker (statemachines/engine/expression_pool.py),
   with a small and a 100 KB input, and the ratio.
2. Catastrophic backtracking: `$match('a'*n + '!', /^(a+)+$/)` with Python's re (grows 2x per `a`,
   and no thread can stop it), with the `regex` package's timeout when it is installed (cfn-lint
   brings it), and what the worker costs when it is killed at the limit: the start of a new one.
3. A running engine (one process, its own redis-server): ListStateMachines latency idle, beside the
   same while a StartExecution runs a catastrophic regular expression for its 5 s.
Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine_bench import ROLE, client, free_port, process, wait_http  # bench/ is this script's path

from statemachines.engine.asl import offload
from statemachines.engine.asl.jsonata_query import evaluate_jsonata
from statemachines.engine.expression_pool import ExpressionPool

EXPRESSION = "$states.input.items[price > 10].name & '-' & $string($count($states.input.items))"


def per_call_us(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm: compile caches, a worker started
    began = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - began) / repeat * 1e6


def evaluation_costs(repeat: int) -> None:
    pool = ExpressionPool()
    for label, items in (("small input", 3), ("100 KB input", 1500)):
        states = {"input": {"items": [{"name": f"item-{i}", "price": i % 20} for i in range(items)]}}
        offload.install(None)
        here = per_call_us(lambda states=states: evaluate_jsonata(EXPRESSION, states), repeat)
        offload.install(pool.run)
        there = per_call_us(
            lambda states=states: (pool.begin_call(), evaluate_jsonata(EXPRESSION, states)), repeat
        )
        offload.install(None)
        print(f"  {label:13} in-process {here:8.0f} us   worker {there:8.0f} us   ratio {there / here:5.2f}")
    pool.close()


def backtracking(limit_a: int) -> None:
    pattern = re.compile(r"^(a+)+$")
    for count in range(limit_a - 3, limit_a + 1):
        began = time.perf_counter()
        pattern.search("a" * count + "!")
        print(f"  re     {count} a's: {time.perf_counter() - began:7.2f} s (holding the GIL throughout)")
    try:
        import regex  # type: ignore[import-untyped]
    except ImportError:
        print("  regex  not installed")
    else:
        began = time.perf_counter()
        try:
            regex.search(r"^(a+)+$", "a" * 36 + "!", timeout=1.0)
            print("  regex  36 a's: finished")
        except TimeoutError:
            print(f"  regex  36 a's: stopped by its timeout after {time.perf_counter() - began:.2f} s")
    pool = ExpressionPool(limit_ms=1000)
    offload.install(pool.run)
    expression = "$match('" + "a" * 36 + "!', /^(a+)+$/)"
    began = time.perf_counter()
    try:
        evaluate_jsonata(expression, {})
    except Exception as exc:  # the time box's error is what is measured
        print(f"  worker 36 a's: {type(exc).__name__} after {time.perf_counter() - began:.2f} s (limit 1 s)")
    began = time.perf_counter()
    pool.begin_call()
    evaluate_jsonata("1 + 1", {})
    print(f"  the next evaluation, starting a new worker: {time.perf_counter() - began:.2f} s")
    offload.install(None)
    pool.close()


def engine_latency(samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis_port, engine_port = free_port(), free_port()
        redis_args = ["redis-server", "--port", str(redis_port), "--dir", tmp, "--save", ""]
        engine_env = {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "ENGINE_PORT": str(engine_port)}
        with process(redis_args), process([sys.executable, "-m", "statemachines.engine"], engine_env):
            endpoint = f"http://127.0.0.1:{engine_port}"
            wait_http(endpoint + "/")
            sfn = client(endpoint)
            states = {"R": {"Type": "Pass", "QueryLanguage": "JSONata", "End": True,
                            "Output": "{% $match('" + "a" * 36 + "!', /^(a+)+$/) %}"}}  # fmt: skip
            definition = json.dumps({"StartAt": "R", "States": states})
            arn = sfn.create_state_machine(
                name=f"regex-{time.time_ns()}", definition=definition, roleArn=ROLE
            )
            idle = _latencies(sfn, samples, None)
            busy = _latencies(
                sfn, samples, lambda: sfn.start_execution(stateMachineArn=arn["stateMachineArn"])
            )
    for label, values in (("idle", idle), ("during a catastrophic regex", busy)):
        ordered = sorted(values)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        print(f"  ListStateMachines {label:28} p50 {statistics.median(values):6.2f} ms   p99 {p99:6.2f} ms")
    print(f"  ratio (p50, busy / idle): {statistics.median(busy) / statistics.median(idle):.2f}")


def _latencies(sfn: Any, samples: int, meanwhile: Callable[[], Any] | None) -> list[float]:
    """Milliseconds per ListStateMachines; with `meanwhile` running on a thread until it ends."""
    worker = threading.Thread(target=meanwhile) if meanwhile else None
    if worker is not None:
        worker.start()
    took: list[float] = []
    while len(took) < samples or (worker is not None and worker.is_alive()):
        began = time.perf_counter()
        sfn.list_state_machines(maxResults=1)
        took.append((time.perf_counter() - began) * 1000)
    if worker is not None:
        worker.join()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--backtracking", type=int, default=24, help="the most a's given to re")
    args = parser.parse_args()
    print("one JSONata evaluation")
    evaluation_costs(args.repeat)
    print("catastrophic backtracking")
    backtracking(args.backtracking)
    print("a running engine")
    engine_latency(args.repeat)


if __name__ == "__main__":
    main()
