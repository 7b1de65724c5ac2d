"""Build-step defaults: what a build Task may leave out, filled in before any pipeline is deployed.

A build step is two lines, `step` and `commands`. Before a pipeline reaches Step Functions (the
service's per-run deploy, statemachines/deploy.py, and `python -m statemachines deploy`,
statemachines/aws_deploy.py) `fill_step_defaults` adds to every Task on `${activity:<pool>}` what it
lacks of:

- `"run.$": "$$.Execution.Input"` in its `Parameters` (approval steps too: the service needs the run);
- for build steps (every pool but `approval`): `HeartbeatSeconds`, a larger `TimeoutSeconds` and a
  `Retry` on `States.HeartbeatTimeout` (a lost worker) and `Stepline.WorkerShutdown`;
- for a step that names a `concurrency` group: a `Retry` on `Stepline.ConcurrencyWait` with a back-off
  (the step waits for its group between attempts, holding no worker; statemachines/step_concurrency.py).

The result is plain ASL, so it runs the same on our engine and on AWS. A field the author wrote is
never changed. PIPELINES.md, "A build step", shows the filled-in form.
"""

from __future__ import annotations

import copy
from typing import Any

from statemachines.contract import APPROVAL_POOL, pool_of, walk_states
from statemachines.step_errors import CONCURRENCY_WAIT, WORKER_SHUTDOWN

RUN_INPUT = "$$.Execution.Input"
HEARTBEAT_SECONDS = 60
# a step's own limit (its `timeout_seconds`, else the worker's default) plus room to wait for a worker:
# on AWS, TimeoutSeconds counts the time a task waits in the queue
STEP_SECONDS = 3600
QUEUE_ROOM_SECONDS = 1800
LOST_WORKER_ERRORS = ("States.HeartbeatTimeout", WORKER_SHUTDOWN)
LOST_WORKER_RETRY = {"MaxAttempts": 2, "IntervalSeconds": 1}
# a waiting step asks again after 1, 1.5, 2.25 ... s, at most every 15 s, for as long as AWS allows
CONCURRENCY_WAIT_RETRY = {
    "ErrorEquals": [CONCURRENCY_WAIT], "IntervalSeconds": 1, "BackoffRate": 1.5, "MaxDelaySeconds": 15,
    "MaxAttempts": 99_999_999,
}  # fmt: skip


def fill_step_defaults(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of a definition whose Tasks on `${activity:<pool>}` carry every build-step default they lack."""
    filled = copy.deepcopy(definition)
    for _, _, state in walk_states(filled):
        pool = pool_of(state)
        if state.get("Type") != "Task" or pool is None:
            continue
        params = state.get("Parameters")
        if isinstance(params, dict) and "run.$" not in params and "run" not in params:
            params["run.$"] = RUN_INPUT
        if pool != APPROVAL_POOL:
            _fill_lost_worker_fields(state, params if isinstance(params, dict) else {})
            if isinstance(params, dict) and "concurrency" in params:
                _fill_concurrency_retry(state)
    return filled


def _fill_concurrency_retry(state: dict[str, Any]) -> None:
    retriers = state.get("Retry")
    if not isinstance(retriers, list):
        return  # a mistake the validator names
    if not any(isinstance(r, dict) and CONCURRENCY_WAIT in (r.get("ErrorEquals") or []) for r in retriers):
        # first: the first retrier that names an error is the one used, and States.ALL must stay last
        state["Retry"] = [dict(CONCURRENCY_WAIT_RETRY), *retriers]


def _fill_lost_worker_fields(state: dict[str, Any], params: dict[str, Any]) -> None:
    timeout, heartbeat = _seconds(state.get("TimeoutSeconds")), _seconds(state.get("HeartbeatSeconds"))
    if "HeartbeatSeconds" not in state and "HeartbeatSecondsPath" not in state:
        heartbeat = _seconds(params.get("heartbeat_seconds")) or HEARTBEAT_SECONDS
        if timeout and heartbeat >= timeout:
            heartbeat = timeout // 2  # 0 for a 1 s timeout: left out, and check_pipeline says why
        if heartbeat:
            state["HeartbeatSeconds"] = heartbeat
    if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
        timeout = (_seconds(params.get("timeout_seconds")) or STEP_SECONDS) + QUEUE_ROOM_SECONDS
        state["TimeoutSeconds"] = max(timeout, 2 * (heartbeat or 0))
    retriers = state.get("Retry")
    if retriers is None or isinstance(retriers, list):
        named = {name for r in retriers or [] if isinstance(r, dict) for name in r.get("ErrorEquals") or []}
        if not named & {"States.HeartbeatTimeout", "States.ALL"}:
            # first: a States.ALL retrier must stay last; an error another retrier names is not repeated
            errors = [name for name in LOST_WORKER_ERRORS if name not in named]
            state["Retry"] = [{"ErrorEquals": errors, **LOST_WORKER_RETRY}, *(retriers or [])]


def _seconds(value: Any) -> int | None:
    """A positive whole number of seconds, else None (a JSONata expression, a mistake the validator names)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
