"""Approval steps of a local run: answered here, since no one watches a dashboard for it.

On the server a person approves on the dashboard (service/approvals.py); a local run answers the
`approval` activity itself: approved with `--approve`, else rejected with `Stepline.Rejected` (what a
person's rejection sends), so a deploy behind an approval never runs by accident from a working copy.
"""

from __future__ import annotations

import getpass
import json
import logging
import threading
import time
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from statemachines.contract import APPROVAL_POOL, activity_name

log = logging.getLogger(__name__)

REJECTED = "Stepline.Rejected"  # the error a rejected approval fails with (statemachines/contract.py)


class ApprovalDesk:
    """A thread that answers every approval task of the run until `stop()`; `decided` maps step to outcome."""

    def __init__(self, sfn: Any, prefix: str, approve: bool, out: TextIO) -> None:
        self.sfn = sfn
        self.arn = sfn.create_activity(name=activity_name(APPROVAL_POOL, prefix))["activityArn"]
        self.approve = approve
        self.out = out
        self.decided: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="approvals", daemon=True)

    def start(self) -> ApprovalDesk:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # the thread is a daemon: a long poll in flight ends with the process

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                task = self.sfn.get_activity_task(activityArn=self.arn, workerName="stepline-run")
            except (BotoCoreError, ClientError) as exc:
                log.debug("approval poll failed: %s", exc)
                self._stop.wait(0.5)
                continue
            if task.get("taskToken"):
                self._answer(task["taskToken"], task.get("input") or "{}")

    def _answer(self, token: str, text: str) -> None:
        step = str(json.loads(text).get("step") or "approval")
        user = getpass.getuser()
        # told before answering: a rejection ends the run at once, and its summary reads `decided`
        self._say(step, f"approved by {user} (--approve)" if self.approve else "rejected (no --approve)")
        try:
            if self.approve:
                output = {"step": step, "status": "approved", "by": user, "at": time.time()}
                self.sfn.send_task_success(taskToken=token, output=json.dumps(output))
            else:
                cause = "a local run approves only with --approve"
                self.sfn.send_task_failure(taskToken=token, error=REJECTED, cause=cause)
        except (BotoCoreError, ClientError) as exc:
            self._say(step, f"not answered: {exc}")

    def _say(self, step: str, outcome: str) -> None:
        self.decided[step] = outcome
        self.out.write(f"{step} | [stepline] {outcome}\n")
        self.out.flush()
