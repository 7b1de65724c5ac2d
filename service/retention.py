"""Retention of runs: the jobs process deletes runs that ended longer ago than STEPLINE_RUN_RETENTION_DAYS.

Why: the run index keeps every run, so a busy organisation's Redis would grow without bound. The
periodic sweep (service/reconcile.py) calls `trim_finished_runs`, which deletes at most `limit` runs
per sweep in transactions of `batch` runs: each transaction is a few thousand cheap commands, so a
backlog of 100k runs drains over a few sweeps and never holds Redis for more than milliseconds.

What goes with a run: its record, its audit list, its entries in every sorted set (all runs, repository,
branch, pull request, commit, status, open) and its execution ARN lookup (run_index.py), plus the keys
other modules keep per run (status ledger claims and errors, redrive count, approvals). Step logs and
status ledger contexts expire on their own (statemachines/step_logs.py, service/status_ledger.py).
Open runs are never trimmed, however old.
"""

from __future__ import annotations

import logging
import time

from service.approvals import PREFIX as APPROVALS_PREFIX
from service.reporter import REDRIVES_KEY
from service.run_index import OPEN_STATUSES, STATUSES, RunIndex, _status_key
from service.status_ledger import ERRORS as STATUS_ERRORS
from service.status_ledger import PREFIX as STATUS_PREFIX

log = logging.getLogger(__name__)

DAY = 24 * 3600
TRIM_BATCH = 200  # runs per transaction
TRIM_PER_SWEEP = 5000  # runs per sweep; a larger backlog waits for the next sweeps
ENDED_STATUSES = tuple(status for status in STATUSES if status not in OPEN_STATUSES)


def run_keys(run_id: str) -> list[str]:
    """Keys other modules keep per run, deleted with it (they would otherwise outlive it, some forever)."""
    return [
        f"{STATUS_PREFIX}run:{run_id}",
        f"{STATUS_ERRORS}:{run_id}",
        REDRIVES_KEY + run_id,
        f"{APPROVALS_PREFIX}run:{run_id}",
    ]


def trim_finished_runs(
    index: RunIndex,
    retention_days: int,
    now: float | None = None,
    batch: int = TRIM_BATCH,
    limit: int = TRIM_PER_SWEEP,
) -> int:
    """Delete up to `limit` runs that ended more than `retention_days` ago; returns how many went."""
    if retention_days <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - retention_days * DAY
    trimmed = 0
    for status in ENDED_STATUSES:
        trimmed += _trim_status(index, status, cutoff, batch, limit - trimmed)
    if trimmed:
        log.info("retention: %d run(s) that ended over %d day(s) ago trimmed", trimmed, retention_days)
    return trimmed


def _trim_status(index: RunIndex, status: str, cutoff: float, batch: int, budget: int) -> int:
    """Trim one status set, oldest first.

    The sets are scored by creation, and a run ends after it was created: only runs created before the
    cutoff can qualify. Those that ended after it (long runs) are stepped over, not looked at again.
    """
    trimmed = skipped = 0
    while trimmed < budget:
        ids = index.redis.zrangebyscore(
            _status_key(status), "-inf", f"({cutoff}", start=skipped, num=min(batch, budget - trimmed)
        )
        if not ids:
            break
        deleted, kept = index.delete_finished(ids, cutoff, also=run_keys)
        trimmed += deleted
        skipped += kept
    return trimmed
