"""The time box for pipeline authors' expressions: what a worker process costs, and what it bounds.

    .venv/bin/python bench/expression_bench.py [--repeat N]

1. One JSONata evaluation in the engine's process (the peer: the pure core, as the engine ran it
   before) beside the same evaluation in an expression worker (statemachines/engine/expression_pool.py),
   with a small and a 100 KB input, and the ratio.
2. Catastrophic backtracking: `$match('a'*n + '!', /^(a+)+$/)` with Python's re (grows 2x per `a`,
   and no thread can stop it), with the `regex` package's timeout when it is installed (cfn-lint
   brings it), and what the worker costs when it is killed at the limit: the start of a new one.
Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from statemachines.engine import offload
from statemachines.engine.expression_pool import ExpressionPool
from statemachines.engine.jsonata_query import evaluate_jsonata

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
        there = per_call_us(lambda states=states: evaluate_jsonata(EXPRESSION, states), repeat)
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
    evaluate_jsonata("1 + 1", {})
    print(f"  the next evaluation, starting a new worker: {time.perf_counter() - began:.2f} s")
    offload.install(None)
    pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--backtracking", type=int, default=24, help="the most a's given to re")
    args = parser.parse_args()
    print("one JSONata evaluation")
    evaluation_costs(args.repeat)
    print("catastrophic backtracking")
    backtracking(args.backtracking)


if __name__ == "__main__":
    main()
