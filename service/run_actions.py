"""What a person may do to a run, from the dashboard or a GitHub check run's button: re-run, re-run failed steps or one step, cancel, approve or reject; all audited."""

from __future__ import annotations

import copy
import logging
import time
import uuid
from typing import Any, Unpack, cast

from rq import Queue

from service import approvals
from service.cancellations import stop_run
from service.errors import ActionNotAllowedError, RunNotFoundError
from service.job_context import JobContext
from service.reporter import nudge_reconcile
from service.run_index import OPEN_STATUSES
from service.run_record import RunRecord
from statemachines import queues
from statemachines.outcomes import FAILED, PASSED
from statemachines.step_reuse import results_of

log = logging.getLogger(__name__)

# what a re-run copies from the run it repeats (pipeline, steps and statuses come from starting it)
RERUN_FIELDS = (
    *("repository", "event", "ref", "branch", "tag", "sha", "before", "pull_request", "message"),
    *("author", "trusted", "trust_reason", "fork", "delivery_id", "clone_url", "installation_id"),
)  # trust is copied, never decided again: an untrusted run's re-run is untrusted


class Actions:
    """The actions, over the jobs' context (run index, Step Functions client, reporter queue)."""

    def __init__(self, ctx: JobContext, store: approvals.ApprovalStore) -> None:
        self.ctx = ctx
        self.store = store

    def _run(self, run_id: str) -> RunRecord:
        run = self.ctx.index.get(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def _audit(self, run_id: str, user: str, action: str, /, **detail: Any) -> None:
        self.ctx.index.add_audit(run_id, {"action": action, "by": user, **detail})
        log.info("%s: %s by %s %s", run_id, action, user, detail or "")

    def rerun(self, run_id: str, user: str) -> RunRecord:
        """A new run of the same commit with the same execution input (a new run id), started by the run job."""
        return self._repeat(run_id, user, "re-run", "rerun")

    def redrive(self, run_id: str, user: str) -> RunRecord:
        """Re-run failed steps: a new run in which the steps that passed here are reused, not run (service/reruns.py).

        Not RedriveExecution: AWS redrives from the state that failed, which after a Catch is the Fail
        state, so nothing would run again.
        """
        return self._repeat(run_id, user, "re-run failed steps", "rerun failed", reuse_from=run_id)

    def rerun_step(self, run_id: str, user: str, step: str) -> RunRecord:
        """Re-run one step (and what depends on it); every other step that passed is reused."""
        old = self._run(run_id)
        if step not in (old.get("steps") or []) and step not in self._recorded_steps(run_id):
            raise ActionNotAllowedError(run_id, f"re-run step {step[:80]}", "the run has no such step")
        return self._repeat(
            run_id, user, f"re-run step {step}", "rerun step", reuse_from=run_id, rerun_steps=[step]
        )

    def _recorded_steps(self, run_id: str) -> set[str]:
        return set(results_of(self.ctx.redis, run_id))

    def _repeat(
        self, run_id: str, user: str, what: str, action: str, /, **fields: Unpack[RunRecord]
    ) -> RunRecord:
        old = self._run(run_id)
        if old["status"] in OPEN_STATUSES:
            raise ActionNotAllowedError(run_id, what, "it is still running")
        old_input = old.get("execution_input")
        if not old_input:
            raise ActionNotAllowedError(run_id, what, "it never had an execution input")
        new_id = uuid.uuid4().hex
        execution_input = {**copy.deepcopy(old_input), "run_id": new_id}
        # RERUN_FIELDS are RunRecord keys: a comprehension over them is what the checker cannot follow
        copied = cast(RunRecord, {key: old.get(key) for key in RERUN_FIELDS})
        new: RunRecord = {
            **copied,
            "run_id": new_id,
            "execution_input": execution_input,
            "execution_name": f"rerun-{new_id}",
            "status": "QUEUED",
            "status_reason": f"{what} of {run_id} by {user}",
            "rerun_of": run_id,
            **fields,
        }
        self.ctx.index.create(new)
        Queue(queues.RUNS, connection=self.ctx.redis).enqueue(queues.START_RUN, new_id)
        self._audit(run_id, user, action, new_run_id=new_id, **fields)
        self._audit(new_id, user, f"created as {what}", of_run_id=run_id)
        return new

    def cancel(self, run_id: str, user: str) -> RunRecord:
        """StopExecution; the run is marked cancelled and the reporter closes its open statuses."""
        run = self._run(run_id)
        if run["status"] not in OPEN_STATUSES:
            raise ActionNotAllowedError(run_id, "cancel", f"the run is already {run['status'].lower()}")
        if not stop_run(self.ctx, run, "ABORTED", f"cancelled by {user}"):
            raise ActionNotAllowedError(run_id, "cancel", "the run ended meanwhile")
        self._audit(run_id, user, "cancel")
        return self._run(run_id)

    def decide(self, approval_id: str, approved: bool, user: str, comment: str = "") -> dict[str, Any]:
        """Approve (SendTaskSuccess) or reject (SendTaskFailure Stepline.Rejected) a pending approval step."""
        record = approvals.decide(self.store, self.ctx.sfn, approval_id, approved, user, comment[:500])
        action = "approve" if approved else "reject"
        self._audit(record["run_id"], user, action, step=record["step"], comment=comment[:500])
        # the step's status and check run say it at once, not when the run ends
        self.ctx.statuses.enqueue(
            queues.REPORT_STEP, record["run_id"], record["step"],
            "success" if approved else "failure", f"{'approved' if approved else 'rejected'} by {user}"[:140], int(time.time() * 1000),
            PASSED if approved else FAILED,
        )  # fmt: skip
        # no worker reports an approval step: without this a rejection (or an approval that ends
        # the run) shows as running, and its statuses stay pending, until the next sweep
        nudge_reconcile(self.ctx, record["run_id"])
        return {**record, "decision": action, "decided_at": time.time()}


# the actions a run's page and the JSON API offer by name (`POST …/runs/<id>/<action>`)
RUN_ACTIONS = {"rerun": Actions.rerun, "redrive": Actions.redrive, "cancel": Actions.cancel}
NEW_RUN_ACTIONS = {"rerun", "redrive"}  # "redrive" is "re-run failed steps": a new run reusing what passed
