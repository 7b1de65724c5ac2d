"""Live step logs of a local run on the terminal: each line prefixed by its step, as the worker streams it.

Reads the same Redis logs the dashboard follows (statemachines/step_logs.py), for every attempt of
every step of the run, in the order lines arrive; a step's second attempt is prefixed `step#2`.
"""

from __future__ import annotations

from typing import TextIO

from statemachines.step_logs import StepLogReader

BATCH_LINES = 500


class LogFollower:
    """Prints what is new in a run's logs on each `poll()`; `drain()` reads every log to its end."""

    def __init__(self, reader: StepLogReader, run_id: str, out: TextIO, width: int = 0) -> None:
        self.reader = reader
        self.run_id = run_id
        self.out = out
        self.width = width
        self._cursors: dict[str, str] = {}
        self._done: set[str] = set()

    def poll(self) -> bool:
        """Print new lines of every log; True when something was printed."""
        printed = False
        for meta in self.reader.list_logs(self.run_id):
            log = meta["log_id"]
            if log in self._done:
                continue
            label = meta["step"] if meta["attempt"] <= 1 else f"{meta['step']}#{meta['attempt']}"
            self.width = max(self.width, len(label))
            while True:
                lines, cursor, finished = self.reader.read_log(log, self._cursors.get(log, "0"), BATCH_LINES)
                self._cursors[log] = cursor
                for line in lines:
                    self.out.write(f"{label:<{self.width}} | {line}\n")
                printed = printed or bool(lines)
                if finished:
                    self._done.add(log)
                if finished or len(lines) < BATCH_LINES:
                    break
        if printed:
            self.out.flush()
        return printed

    def drain(self) -> None:
        """Everything the run's logs hold, once it has ended (a log the worker never closed stops here)."""
        while self.poll():
            pass
