"""What a status update means, as data: the outcome every reporter of a context names beside its words.

A commit status has a state and a line of words; a check run needs more (queued or in progress, and a
conclusion: skipped, cancelled, timed out …). The code that decides a context's verdict names its outcome
here, the status ledger keeps it with the update, and the Checks reporter maps it (service/check_runs.py),
so rewording a description never changes a conclusion. Workers name it when they report a step (they never
import service/), hence this home.
"""

from __future__ import annotations

QUEUED = "queued"  # waits for a worker, a pool or its concurrency group
RUNNING = "running"
AWAITING_APPROVAL = "awaiting_approval"  # an approval gate waits for a person
PASSED = "passed"
FAILED = "failed"  # the build failed, or could not run (checkout, worker, invalid input)
TIMED_OUT = "timed_out"
CANCELLED = "cancelled"  # stopped: superseded, cancelled, or the run no longer waited for it
SKIPPED = "skipped"  # not on the run's path, not run after a failure or an invalid pipeline, [skip ci]

OUTCOMES = (QUEUED, RUNNING, AWAITING_APPROVAL, PASSED, FAILED, TIMED_OUT, CANCELLED, SKIPPED)
