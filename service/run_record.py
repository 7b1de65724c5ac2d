"""The run record: what the run index (service/run_index.py) keeps for each run, one Redis hash field per key.

Key names are stored as they are here (each value JSON-encoded), so renaming one orphans the field in
every record already in Redis. Every key is optional to the type checker (`total=False`): a stored
record has every key of RUN_FIELDS (RunIndex.create fills their defaults), but the later keys below
are only there once their writer ran, records written by older versions lack the keys added since,
and `RunIndex.update(run_id, **fields)` takes any subset. Readers use `.get()` for the later keys.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from service.errors import IncompleteRunError

# every status a run can have, in the order the dashboard lists them (service/run_index.py STATUSES)
RunStatus = Literal[
    "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "SKIPPED", "INVALID", "SUPERSEDED",
    "ERRORED",  # its start failed in a way start_run did not expect (service/reconcile.py)
]  # fmt: skip


class RunRecord(TypedDict, total=False):
    """One run: written from the event by the webhook, manual runs and schedules, then by its jobs."""

    # from the event (service/runs.py new_run): the service decides these, never the pipeline
    run_id: str
    repository: str
    event: str  # "push", "pull_request", "manual" or "schedule"
    ref: str
    branch: str | None  # a pull request's head branch; None for a tag
    tag: str | None
    pull_request: int | None  # the number
    sha: str
    before: str
    message: str
    author: str
    trusted: bool  # decided from the event; read with `is True`
    fork: bool
    delivery_id: str
    clone_url: str
    execution_name: str  # derived from the delivery: a retried start never starts twice
    execution_input: dict[str, Any] | None
    created_at: float
    # what its start found (service/runs.py)
    pipeline: str
    steps: list[str]
    pipeline_path: str | None  # ".stepline/pipeline.asl.json", ".yaml" or "default"
    validation: list[dict[str, Any]]  # the diagnostics of an INVALID pipeline
    state_machine_arn: str | None
    execution_arn: str | None
    started_at: float | None
    # its status and ending
    status: RunStatus
    status_reason: str
    superseded_by: str | None
    finished_at: float | None

    # added after the first records were written: absent from older ones
    trust_reason: str  # why the run is trusted or not, e.g. "pull request from a fork"
    installation_id: int | None  # the GitHub App installation whose token posts its statuses
    inputs: dict[str, str]  # a manual or scheduled run's `$.inputs` (service/run_inputs.py)
    schedule: str  # the schedule that started it (service/scheduler.py)
    step_pools: dict[str, str]  # step -> the worker pool that serves it
    step_families: list[list[str | None]]  # [template, the step it follows] of steps named at run time
    pipeline_warnings: list[str]
    concurrency_group: str  # service/concurrency.py
    concurrency_mode: str
    waiting_for: str | None  # the run holding its concurrency group while it stays QUEUED
    reporting_errors: list[dict[str, Any]]  # the newest failures to post its statuses (service/publisher.py)
    rerun_of: str  # the run a dashboard re-run repeats (service/run_actions.py)
    reuse_from: str  # the run whose passed steps it reuses (service/reruns.py)
    rerun_steps: list[str]  # steps re-run even though they passed

    # never stored here: the status ledger keeps it, the reporter adds it on reading (service/reporter.py)
    redrive_count: int  # how often its execution was redriven: a redrive's reports outrank the last end


# the keys every record gets when it is created, and their defaults (RunIndex.create)
RUN_FIELDS: RunRecord = {
    "run_id": "", "repository": "", "event": "", "ref": "", "branch": None, "tag": None,
    "pull_request": None, "sha": "", "before": "", "message": "", "author": "", "trusted": False,
    "fork": False, "pipeline": "ci", "steps": [], "state_machine_arn": None, "execution_arn": None,
    "execution_input": None, "status": "QUEUED", "status_reason": "", "superseded_by": None,
    "validation": [], "delivery_id": "", "created_at": 0.0, "started_at": None, "finished_at": None,
    "clone_url": "", "execution_name": "", "pipeline_path": None,
}  # fmt: skip


def execution_input_of(run: RunRecord) -> dict[str, Any]:
    """The input its execution starts with: every writer of a run sets one (new_run, a re-run)."""
    found = run.get("execution_input")
    if found is None:
        raise IncompleteRunError(run.get("run_id", "?"), "execution_input")
    return found
