"""Retention of runs: the jobs process deletes runs that ended longer ago than STEPLINE_RUN_RETENTION_DAYS.

Why: the run index keeps every run, so a busy organisation's Redis would grow without bound. The
periodic sweep (service/reconcile.py) calls `trim_finished_runs`, which deletes at most `limit` runs
per sweep in transactions of `batch` runs: each transaction is a few thousand cheap commands, so a
backlog of 100k runs drains over a few sweeps and never holds Redis for more than milliseconds.

What goes with a run: its record, audit and every index entry (the run index deletes its own), and
whatever each store of `run_stores` keeps for it: each store names its own keys in `forget_runs`,
queued on the same transaction; this module only decides which runs go. A store outside Redis (blob
storage) can join the list: it is asked only about runs that are going, but should delete its files
only once the transaction committed (a conflict keeps the whole batch for the next sweep). Open runs are never trimmed, however old.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis

from service.approvals import ApprovalStore
from service.run_index import OPEN_STATUSES, STATUSES, RunIndex, RunStore
from service.status_ledger import StatusLedger
from statemachines.run_stages import RunStages
from statemachines.step_logs import StepLogStore

log = logging.getLogger(__name__)

DAY = 24 * 3600
TRIM_BATCH = 200  # runs per transaction
TRIM_PER_SWEEP = 5000  # runs per sweep; a larger backlog waits for the next sweeps
ENDED_STATUSES = tuple(status for status in STATUSES if status not in OPEN_STATUSES)


def run_stores(client: redis.Redis) -> list[RunStore]:
    """Every store that keeps something per run besides the run index (deleted with the run)."""
    return [StatusLedger(client), ApprovalStore(client), StepLogStore(client), RunStages(client)]


def trim_finished_runs(
    index: RunIndex,
    retention_days: int,
    now: float | None = None,
    batch: int = TRIM_BATCH,
    limit: int = TRIM_PER_SWEEP,
    stores: Sequence[RunStore] | None = None,
) -> int:
    """Delete up to `limit` runs that ended more than `retention_days` ago; returns how many went."""
    if retention_days <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - retention_days * DAY
    asked = run_stores(index.redis) if stores is None else stores
    trimmed = 0
    for status in ENDED_STATUSES:
        trimmed += _trim_status(index, status, cutoff, batch, limit - trimmed, asked)
    if trimmed:
        log.info("retention: %d run(s) that ended over %d day(s) ago trimmed", trimmed, retention_days)
    return trimmed


def _trim_status(
    index: RunIndex, status: str, cutoff: float, batch: int, budget: int, stores: Sequence[RunStore]
) -> int:
    """Trim one status set, oldest first.

    The sets are scored by creation, and a run ends after it was created: only runs created before the
    cutoff can qualify. Those that ended after it (long runs) are stepped over, not looked at again.
    """
    trimmed = skipped = 0
    while trimmed < budget:
        ids = index.ended_before(status, cutoff, skipped, min(batch, budget - trimmed))
        if not ids:
            break
        deleted, kept = index.delete_finished(ids, cutoff, stores)
        trimmed += len(deleted)
        skipped += kept
    return trimmed
