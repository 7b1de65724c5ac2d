"""Heartbeats: SendTaskHeartbeat while a task runs; a task dropped by Step Functions or a stopped run is cancelled."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from workers.process_group import STOPPED, Cancellation

log = logging.getLogger(__name__)

# what SendTaskHeartbeat answers when the task is gone: the execution stopped or the task timed out
GONE_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}
WATCH_SECONDS = 0.5  # how often `stopped` is asked: a cancelled run's step ends within a second


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Heartbeat:
    """A thread beating for one task every `interval` seconds; use as a context manager around the task."""

    def __init__(
        self,
        sfn: Any,
        token: str,
        interval: float,
        cancellation: Cancellation,
        run_id: str,
        step: str,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.sfn = sfn
        self.stopped = stopped  # the service's word that the run was cancelled (statemachines/run_stops.py)
        self.token = token
        self.interval = interval
        self.cancellation = cancellation
        self.run_id = run_id
        self.step = step
        self.beats = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{step}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join(timeout=self.interval + 15)

    def _loop(self) -> None:
        due = time.monotonic() + self.interval
        while not self._done.wait(min(WATCH_SECONDS, self.interval)):
            if self.stopped():
                log.info("%s: step %s: the run was stopped: stopping it", self.run_id, self.step)
                self.cancellation.cancel(STOPPED)
                return
            if time.monotonic() < due:
                continue
            due = time.monotonic() + self.interval
            try:
                self.sfn.send_task_heartbeat(taskToken=self.token)
                self.beats += 1
            except ClientError as exc:
                if error_code(exc) in GONE_ERRORS:
                    log.info(
                        "%s: step %s dropped by Step Functions (%s): stopping it",
                        self.run_id,
                        self.step,
                        error_code(exc),
                    )
                    self.cancellation.cancel(STOPPED)
                    return
                log.warning("%s: heartbeat of step %s failed: %s", self.run_id, self.step, exc)
            except BotoCoreError as exc:  # connection trouble: keep beating, the next one may pass
                log.warning("%s: heartbeat of step %s failed: %s", self.run_id, self.step, exc)
