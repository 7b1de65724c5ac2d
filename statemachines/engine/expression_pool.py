"""Killable worker processes that evaluate what pipeline authors wrote (see offload.py).

One pool per engine process. A calling thread takes an idle worker (starting one, up to `size`),
sends the request and waits for the reply with the GIL released; at the time limit the worker gets
SIGKILL and the call EvaluationTimeout. The next call starts a fresh worker (~0.1 s).

One core call (a start, an event, a redrive, a TestState) may spend CALL_BUDGET_MS evaluating in
all (`begin_call` starts the count, per thread): past it every evaluation of that call times out at
once. Else a state that catches its own timeout and runs again would hold a worker for hours in a
single call, five seconds at a time, until the 25,000 history events ran out. The budget is one
expression's limit and a second more (deviation: AWS documents none), so a StartExecution answers
within the 10 s Stepline's own Step Functions client waits (service/sfn.py) and is not retried.
An execution may spend as much per EXECUTION_WINDOW_S, whatever its calls: a loop with a Wait in
it makes each lap a call of its own, fired by the timer thread that every Wait and timeout of this
engine process waits for.

Why a process (measured in bench/expression_bench.py):
- Python's `re` holds the GIL and checks no clock: `$match('a'*26 + '!', /^(a+)+$/)` took 15.7 s in
  a thread that nothing can interrupt, and the engine answered nobody meanwhile.
- The `regex` package's timeouts bound regular expressions only; a regular-expression engine without
  backtracking (RE2) also drops lookarounds and backreferences that JSONata's JavaScript regexes have.
  Neither bounds `$..*..*..*` in JSONPath (hours on a 1.5 KB input), `$pad('', 1e9)`, or a string
  doubled thirty times: a process bounds them all, its memory too, and never competes for the GIL.
- The price is a round trip per evaluation, paid only by JSONata and by JSONPath beyond plain steps:
  ~0.2 ms more for a small one, 1.2-1.4 times as long over a 100 KB input.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from statemachines.nesting import TooDeep
from statemachines.nesting import loads as bounded_loads

from .asl.jsonata_query import EVALUATION_TIMEOUT_MS
from .asl.offload import EvaluationFailed, EvaluationTimeout
from .expression_worker import HEADER

log = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parents[2]
DEFAULT_SIZE = 4
# every worker busy with a slow expression: a caller waits this long for one to come free
ACQUIRE_TIMEOUT_S = 60.0
CALL_BUDGET_MS = EVALUATION_TIMEOUT_MS + 1000
EXECUTION_WINDOW_S = 60.0
_TRACKED_EXECUTIONS = 10_000  # budgets remembered at once; the oldest windows go first


class _Worker:
    """One `python -m statemachines.engine.expression_worker` with its pipes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-s", "-E", "-m", "statemachines.engine.expression_worker", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PROJECT,
            env={},  # nothing of the engine's settings: no Redis URL, no access keys
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.writer, self.reader = self.process.stdin.fileno(), self.process.stdout.fileno()
        self.poll = select.poll()  # not select(): an engine holds far more than 1,024 descriptors
        self.poll.register(self.reader, select.POLLIN)

    def exchange(self, request: bytes, deadline: float, limit_ms: int) -> bytes:
        view = memoryview(HEADER.pack(len(request)) + request)
        try:
            while view:
                view = view[os.write(self.writer, view) :]
        except OSError as exc:  # BrokenPipeError: the worker died while idle
            raise EvaluationFailed(f"the expression worker is gone ({exc})") from None
        size = HEADER.unpack(self._read(HEADER.size, deadline, limit_ms))[0]
        return self._read(size, deadline, limit_ms)

    def _read(self, size: int, deadline: float, limit_ms: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not self.poll.poll(left * 1000):
                raise EvaluationTimeout(limit_ms)
            chunk = os.read(self.reader, size - len(data))
            if not chunk:
                raise EvaluationFailed(f"the expression worker ended ({self._ended()})")
            data += chunk
        return bytes(data)

    def _ended(self) -> str:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "no exit status"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class ExpressionPool:
    """Up to `size` workers, shared by every thread of one engine process."""

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        limit_ms: int = EVALUATION_TIMEOUT_MS,
        call_budget_ms: int = CALL_BUDGET_MS,
    ) -> None:
        self.size = size
        self.limit_ms = limit_ms
        self.call_budget_ms = call_budget_ms
        self._calls = threading.local()  # .spent_ms, .execution: this thread's current core call
        self._executions: dict[str, tuple[float, float]] = {}  # arn -> (window start, ms spent in it)
        self._executions_lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._running = 0  # workers started and not yet killed
        self._changed = threading.Condition()
        self._closed = False

    def begin_call(self, execution_arn: str | None = None) -> None:
        """A core call begins on this thread: its evaluations may take CALL_BUDGET_MS in all."""
        self._calls.spent_ms = 0.0
        self._calls.execution = execution_arn

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """The worker's reply to `request`; EvaluationTimeout at the limit, EvaluationFailed otherwise."""
        spent = getattr(self._calls, "spent_ms", 0.0)
        execution = getattr(self._calls, "execution", None)
        left = min(self.call_budget_ms - spent, self.call_budget_ms - self._spent_by(execution))
        limit_ms = min(self.limit_ms, int(left))
        if limit_ms <= 0:  # this call (or execution) has evaluated long enough: no worker for it now
            raise EvaluationFailed(
                f"the call or its execution evaluated expressions for {self.call_budget_ms} ms already "
                f"(at most that much per call, and per execution in {EXECUTION_WINDOW_S:.0f} s)"
            )
        data = json.dumps(request).encode()
        worker = self._acquire()
        began = time.monotonic()
        try:
            raw = worker.exchange(data, began + limit_ms / 1000, limit_ms)
        except EvaluationTimeout:
            log.warning("-: an expression ran past %s ms; its worker process was killed", limit_ms)
            self._discard(worker)
            raise
        except BaseException:  # a dead worker, or the engine stopping: this one is done
            self._discard(worker)
            raise
        finally:
            took = (time.monotonic() - began) * 1000
            self._calls.spent_ms = spent + took
            self._charge(execution, took)
        self._release(worker)
        try:
            reply = bounded_loads(raw)
        except (TooDeep, ValueError) as exc:
            raise EvaluationFailed(f"the expression worker answered nonsense ({exc})") from None
        if "failed" in reply:
            raise EvaluationFailed(str(reply["failed"]))
        return dict(reply)

    def _spent_by(self, execution: str | None) -> float:
        """Milliseconds `execution` spent evaluating in its current window."""
        if execution is None:
            return 0.0
        with self._executions_lock:
            began, spent = self._executions.get(execution, (0.0, 0.0))
        return spent if time.monotonic() - began < EXECUTION_WINDOW_S else 0.0

    def _charge(self, execution: str | None, took_ms: float) -> None:
        if execution is None:
            return
        now = time.monotonic()
        with self._executions_lock:
            began, spent = self._executions.get(execution, (now, 0.0))
            if now - began >= EXECUTION_WINDOW_S:
                began, spent = now, 0.0
            self._executions[execution] = (began, spent + took_ms)
            if len(self._executions) > _TRACKED_EXECUTIONS:  # dicts keep insertion order: oldest first
                for arn in list(self._executions)[: len(self._executions) // 10]:
                    del self._executions[arn]

    def _acquire(self) -> _Worker:
        deadline = time.monotonic() + ACQUIRE_TIMEOUT_S
        with self._changed:
            while not self._idle and self._running >= self.size:
                if self._closed or not self._changed.wait(deadline - time.monotonic()):
                    raise EvaluationFailed("every expression worker stayed busy; retry later")
            if self._idle:
                return self._idle.pop()
            self._running += 1
        try:
            return _Worker()
        except BaseException:
            with self._changed:
                self._running -= 1
                self._changed.notify()
            raise

    def _release(self, worker: _Worker) -> None:
        with self._changed:
            if not self._closed:
                self._idle.append(worker)
                self._changed.notify()
                return
        self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._changed:
            self._running -= 1
            self._changed.notify()

    def close(self) -> None:
        """Stop every idle worker now; busy ones stop when their call ends."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        for worker in idle:
            self._discard(worker)
