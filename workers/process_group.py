"""Child processes that lead their own process group, waited on against a deadline and a cancellation."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

STOPPED = "stopped"  # Step Functions dropped the task (heartbeat answered TaskTimedOut)
SHUTDOWN = "shutdown"  # the worker is stopping
TICK_SECONDS = 0.05


class Cancellation:
    """Why a task must stop now; set by its heartbeat (STOPPED) or by the worker's shutdown (SHUTDOWN)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def said(self) -> str:
        """Why, as a line of the step's log can end: "the step was stopped"."""
        return "the worker is shutting down" if self.reason == SHUTDOWN else "the step was stopped"

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


class ProcessGroup:
    """One child in a new session (so its own process group); kill() ends it and all it started."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: Mapping[str, str],
        stdout: int | IO[Any] = subprocess.PIPE,
        stderr: int | IO[Any] = subprocess.STDOUT,
        stdin: int | IO[Any] = subprocess.DEVNULL,
    ) -> None:
        self.args = args
        self.process = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
        self.pgid = self.process.pid  # a session leader's pid is its process group id

    def kill(self) -> None:
        """SIGKILL the whole group at once: a step's children must not outlive it."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(
        self,
        deadline: float | None,
        cancellation: Cancellation | None,
        on_tick: Callable[[], None] | None = None,
    ) -> tuple[str, int | None]:
        """Wait for the leader: ("exited", code), ("timed_out", None) or (cancellation reason, None).

        Whatever the outcome, the group is killed before returning, so stray background children die too.
        """
        try:
            while True:
                try:
                    code = self.process.wait(timeout=TICK_SECONDS)
                    return "exited", code
                except subprocess.TimeoutExpired:
                    pass
                if on_tick is not None:
                    on_tick()
                if cancellation is not None and cancellation.is_set:
                    return cancellation.reason or STOPPED, None
                if deadline is not None and time.monotonic() >= deadline:
                    return "timed_out", None
        finally:
            self.kill()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # unkillable (D state): leave it to the OS
                pass


def kill_orphans(pgid: int, marker: str) -> int:
    """SIGKILL what is left of a dead worker's step: processes of group `pgid` whose environment holds `marker`.

    The marker (STEPLINE_LOG_ID=…) guards against a reused group id: only the step's own processes match.
    """
    killed = 0
    needle = marker.encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            group = int(stat.rsplit(")", 1)[1].split()[2])
            if group != pgid or needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            os.kill(int(proc.name), signal.SIGKILL)
            killed += 1
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
    return killed
