"""The error names a step fails with and a run is stopped with: what pipelines `Retry` and `Catch` on.

The workers report the step errors (workers/errors.py), the service sends the approval's rejection and
the stop errors, and reads them all back from the execution history (service/run_outcome.py).
statemachines/PIPELINES.md documents STEP_ERRORS for pipeline authors; a test keeps the two alike.
"""

from __future__ import annotations

STEP_FAILED = "Stepline.StepFailed"
STEP_TIMED_OUT = "Stepline.StepTimedOut"
CHECKOUT_FAILED = "Stepline.CheckoutFailed"
INVALID_TASK_INPUT = "Stepline.InvalidTaskInput"
WORKER_SHUTDOWN = "Stepline.WorkerShutdown"
WORKER_ERROR = "Stepline.WorkerError"
ARTIFACT_FAILED = "Stepline.ArtifactFailed"
REJECTED = "Stepline.Rejected"
CONCURRENCY_WAIT = "Stepline.ConcurrencyWait"  # a step's concurrency group is held: retried (step_defaults)

# what pipelines match in Retry and Catch ErrorEquals
STEP_ERRORS = {
    STEP_FAILED: "a command of the step exited with a non-zero status",
    STEP_TIMED_OUT: "the step ran longer than its timeout_seconds and was killed",
    CHECKOUT_FAILED: "the repository or the commit could not be fetched",
    INVALID_TASK_INPUT: "the Task's Parameters do not follow the build-step contract",
    WORKER_SHUTDOWN: "the worker was stopped while the step ran (retry it)",
    WORKER_ERROR: "the worker failed unexpectedly while handling the step (a bug: see its log)",
    ARTIFACT_FAILED: "the step passed but its artifacts could not be stored (the blob store failed: retry it)",
    REJECTED: "an approval step was rejected",
    CONCURRENCY_WAIT: "the step's concurrency group is held by another run's step (retried by default)",
}

# StopExecution's error when the service ends a run (cancelled by a person or a push, or superseded)
CANCELLED = "Stepline.Cancelled"
SUPERSEDED = "Stepline.Superseded"
