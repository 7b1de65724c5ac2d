"""The jobs process's rq queues and the jobs enqueued on them by path: names the processes share.

rq keeps a queued job as the dotted path of its function (`service.reporter.report_step`) and imports
that path only when it runs the job, possibly in the next release. So each path here is a promise:
the function keeps its module and name, or its old module keeps a name forwarding to it until no job
of an older release can still be waiting (tests/service/test_job_paths.py enqueues each released
path as a string and runs it). The workers enqueue by path too: they never import service/.
"""

from __future__ import annotations

RUNS = "runs"  # starting runs
STATUSES = "statuses"  # reporting, reconciling and publishing commit statuses
DEFAULT = "default"
# an rq worker drains its queues left to right, and starting runs is what users wait on
QUEUE_NAMES = (RUNS, STATUSES, DEFAULT)

# on RUNS
START_RUN = "service.runs.start_run"
SKIP_RUN = "service.runs.skip_run"
CANCEL_RUNS = "service.cancellations.cancel_runs"
HANDLE_CHECK_REQUEST = "service.check_requests.handle_check_request"  # a check run's button
# on STATUSES
REPORT_STEP = "service.reporter.report_step"  # the workers' one job
REPORT_RUN_STARTED = "service.reporter.report_run_started"
REPORT_RUN_SKIPPED = "service.reporter.report_run_skipped"
REPORT_RUN_CANCELLED = "service.reporter.report_run_cancelled"
REPORT_RUN_INVALID = "service.reporter.report_run_invalid"
RECONCILE_RUN = "service.reconcile.reconcile_run"
SWEEP_OPEN_RUNS = "service.reconcile.sweep_open_runs"
RELEASE_RUN = "service.concurrency.release_run"
SUPERSEDE_FOR_STEP_GROUP = "service.step_concurrency.supersede_for_step_group"  # a worker's ask
PUBLISH_STATUS = "service.publisher.publish_status"
# on DEFAULT
REFRESH_REPOSITORY_SCHEDULES = (
    "service.repository_schedules.refresh_repository"  # a push to the default branch
)

JOB_PATHS = (
    START_RUN,
    SKIP_RUN,
    CANCEL_RUNS,
    HANDLE_CHECK_REQUEST,
    REPORT_STEP,
    REPORT_RUN_STARTED,
    REPORT_RUN_SKIPPED,
    REPORT_RUN_CANCELLED,
    REPORT_RUN_INVALID,
    RECONCILE_RUN,
    SWEEP_OPEN_RUNS,
    RELEASE_RUN,
    SUPERSEDE_FOR_STEP_GROUP,
    PUBLISH_STATUS,
    REFRESH_REPOSITORY_SCHEDULES,
)
