"""Several engine processes behind one listening socket, started and kept alive by a small parent.

One Python process runs one thread at a time; every engine's state is in Redis and several
engines on one Redis are safe, so more processes on one port use more cores. The parent binds
the port (a second engine on it fails at once, as a single one does), forks the children, gives
them a stable index each (their in-flight lists are named by it) and starts a child again if one
dies. A child dies with its parent, so a SIGKILL of the parent leaves nothing listening.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from .config import EngineConfig

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
# a child that dies sooner than this after its start is started again only after this long
_RESTART_BACKOFF_S = 1.0
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def child_config(config: EngineConfig, index: int) -> EngineConfig:
    """Child `index`'s config: its own engine id, so each recovers only its own in-flight tasks."""
    return dataclasses.replace(config, engine_id=f"{config.engine_id}/{index}")


class Supervisor:
    """Forks `count` children that each call `serve(index)`, restarts them, stops them on SIGTERM."""

    def __init__(self, config: EngineConfig, count: int, serve: Callable[[int], None]) -> None:
        self.config = config
        self.count = count
        self.serve = serve
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (index, started at)
        self.stopping = False

    def run(self) -> int:
        """Until SIGTERM/SIGINT (0) or until the children cannot be kept running (1)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for index in range(self.count):
            self._start(index)
        log.info("engine %s: %s processes serving", self.config.engine_id, self.count)
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index, started = self.children.pop(pid)
            if self.stopping:
                continue
            log.error(
                "engine %s/%s: process %s ended (%s); starting it again",
                self.config.engine_id,
                index,
                pid,
                _describe_status(status),
            )
            if time.monotonic() - started < _RESTART_BACKOFF_S:
                time.sleep(_RESTART_BACKOFF_S)
            if not self.stopping:
                self._start(index)
        return 0 if self.stopping else 1

    def _start(self, index: int) -> None:
        parent = os.getpid()
        # a SIGTERM in the instant around the fork would otherwise run the parent's handler in the
        # child (which then serves on, ignoring it) or miss the child not yet in self.children
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:  # the child: serve, then leave without running the parent's cleanup
            code = 1
            try:
                _die_with_parent(parent)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
                self.serve(index)
                code = 0
            except BaseException:
                log.exception("engine %s/%s: failed", self.config.engine_id, index)
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = (index, time.monotonic())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def _stop(self, signum: int, _frame: Any) -> None:
        if not self.stopping:
            log.info("engine %s: signal %s, stopping its processes", self.config.engine_id, signum)
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when `parent` dies (as when the parent is SIGKILLed)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM still stops the children
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
