"""Running a step: its commands one after another, each in its own process group, output streamed to its log."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, NoReturn

from statemachines.step_logs import MAX_LINE_BYTES, StepLogWriter
from workers.errors import StepFailed, StepTimedOut, TaskStopped, WorkerShutdown
from workers.process_group import SHUTDOWN, Cancellation, ProcessGroup

log = logging.getLogger(__name__)

SHELL = ["bash", "-eo", "pipefail", "-c"]  # as PIPELINES.md promises pipeline authors
TAIL_LINES = 30
MAX_CAUSE_CHARS = 30_000  # SendTaskFailure takes a cause of at most 32768 characters
MIN_SECRET_CHARS = 4  # masking shorter values would garble ordinary output
READ_LIMIT = MAX_LINE_BYTES - 256  # leaves room for the cut note within the log's line limit


class StepRunner:
    """Runs one step's commands in `cwd` with exactly `env`; raises a StepError unless all succeed."""

    def __init__(
        self,
        writer: StepLogWriter,
        cancellation: Cancellation,
        masked: Sequence[str] = (),
        on_start: Callable[[int], None] | None = None,
        wrap: Callable[[list[str], Mapping[str, str]], tuple[list[str], Mapping[str, str]]] = lambda a, e: (
            a,
            e,
        ),
    ) -> None:
        self.writer = writer
        self.wrap = wrap  # puts a command line into the task's sandbox
        self.cancellation = cancellation
        self.on_start = on_start  # told each command's process group id
        self.masked = sorted((s for s in masked if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)

    def run(
        self, commands: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_seconds: float
    ) -> float:
        """Run every command; return the duration in seconds. The timeout covers the whole step."""
        started = time.monotonic()
        deadline = started + timeout_seconds
        for command in commands:
            self.writer.write_line(f"$ {_headline(command)}")
            outcome, code = self._run_one(command, cwd, env, deadline)
            elapsed = time.monotonic() - started
            if outcome == "exited" and code == 0:
                continue
            if outcome == "exited" and code is not None:
                self._fail(command, code, elapsed)
            if outcome == "timed_out":
                self._time_out(command, timeout_seconds)
            self.writer.write_line(f"[stepline] stopped after {elapsed:.1f}s ({outcome})")
            raise WorkerShutdown("the worker shut down") if outcome == SHUTDOWN else TaskStopped()
        return time.monotonic() - started

    def _run_one(
        self, command: str, cwd: Path, env: Mapping[str, str], deadline: float
    ) -> tuple[str, int | None]:
        line, start_env = self.wrap([*SHELL, command], env)
        group = ProcessGroup(line, cwd, start_env)
        assert group.process.stdout is not None
        if self.on_start is not None:
            self.on_start(group.pgid)
        reader = threading.Thread(target=self._pump, args=(group.process.stdout,), daemon=True)
        reader.start()
        outcome = group.wait(deadline, self.cancellation, on_tick=self.writer.flush_if_due)
        # the group is dead now, so the pipe closes unless a child escaped into its own session
        reader.join(timeout=5)
        if reader.is_alive():
            # closing now would block on the reader's buffer lock: leave the pipe to the reader thread
            log.warning("%s: output of %r still open after the step ended", self.writer.run_id, command[:80])
        else:
            group.process.stdout.close()
        self.writer.flush()
        return outcome

    def _pump(self, pipe: IO[bytes]) -> None:
        """Copy lines to the log; memory stays bounded however long a line or the output is."""
        try:
            while chunk := pipe.readline(READ_LIMIT):
                if chunk.endswith(b"\n"):
                    self._write(chunk.rstrip(b"\r\n"))
                    continue
                dropped = 0
                while len(chunk) + dropped >= READ_LIMIT and (rest := pipe.readline(READ_LIMIT)):
                    dropped += len(rest)  # the rest of an over-long line
                    if rest.endswith(b"\n"):
                        break
                self._write(chunk, f" [{dropped} more bytes of this line cut]" if dropped else "")
        except (OSError, ValueError):  # the pipe was closed under us: the step is over
            return

    def _write(self, data: bytes, suffix: str = "") -> None:
        text = data.decode("utf-8", "replace")
        for secret in self.masked:
            text = text.replace(secret, "***")
        self.writer.write_line(text + suffix)

    def _fail(self, command: str, code: int, elapsed: float) -> NoReturn:
        # a negative status is a signal: -9 is usually the kernel's OOM killer
        how = f"status {code}" if code >= 0 else f"signal {-code}{_signal_name(-code)}"
        self.writer.write_line(f"[stepline] exited with {how} after {elapsed:.1f}s")
        reason = f"failed in {elapsed:.0f}s: `{_headline(command, 60)}` exited with {how}"
        raise StepFailed(command, code, reason, self._cause(f"command exited with {how}", command))

    def _time_out(self, command: str, timeout: float) -> NoReturn:
        self.writer.write_line(f"[stepline] killed: the step ran longer than {timeout:g}s")
        reason = f"timed out after {timeout:g}s"
        raise StepTimedOut(timeout, reason, self._cause(f"step timed out after {timeout:g}s", command))

    def _cause(self, what: str, command: str) -> str:
        """What SendTaskFailure says: the command, what happened and the last lines, within 32 KiB."""
        head = f"{what}\ncommand: {command[:2000]}\nlog: {self.writer.log_id}\nlast lines:\n"
        lines = [line[:1000] for line in list(self.writer.tail)[-TAIL_LINES:]]
        while lines and len(head) + sum(len(line) + 1 for line in lines) > MAX_CAUSE_CHARS:
            lines.pop(0)
        return head + "\n".join(lines)


def _signal_name(number: int) -> str:
    try:
        return f" ({signal.Signals(number).name})"
    except ValueError:
        return ""


def _headline(command: str, limit: int = 200) -> str:
    first = command.strip().splitlines()[0] if command.strip() else ""
    more = len(command.strip().splitlines()) > 1 or len(first) > limit
    return first[:limit] + (" …" if more else "")
