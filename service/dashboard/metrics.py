"""`GET /metrics` in Prometheus's text format: runs by status, queue depths, failed jobs, pending approvals.

Every number is read from Redis when scraped (no in-process counters: gunicorn runs several workers).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from rq import Queue
from rq.registry import FailedJobRegistry

from service.approvals import PENDING
from service.dashboard import auth
from service.output_retention import OUTPUT_HELP, blob_store, output_samples
from service.run_index import RunIndex
from statemachines import queues

metrics = Blueprint("metrics", __name__)
metrics.before_request(auth.guard_reading)  # a private dashboard: scrape with the admin token as bearer

HELP = {
    "stepline_runs": ("gauge", "Runs in the run index by status."),
    "stepline_queue_jobs": ("gauge", "Jobs waiting in each rq queue."),
    "stepline_queue_failed_jobs": (
        "gauge",
        "Jobs that failed for good in each rq queue (statuses: reporter failures).",
    ),
    "stepline_approvals_pending": ("gauge", "Approval steps waiting for a person."),
    **OUTPUT_HELP,
}


@metrics.get("/metrics")
def scrape():
    client = current_app.extensions["redis"]
    counts = RunIndex(client).count_by_status()
    pending = client.scard(PENDING)
    samples: dict[str, list[tuple[str, float]]] = {name: [] for name in HELP}
    samples["stepline_runs"] = [(f'status="{s}"', c) for s, c in counts.items()]
    for name in queues.QUEUE_NAMES:
        queue = Queue(name, connection=client)
        samples["stepline_queue_jobs"].append((f'queue="{name}"', queue.count))
        samples["stepline_queue_failed_jobs"].append(
            (f'queue="{name}"', FailedJobRegistry(queue=queue).count)
        )
    samples["stepline_approvals_pending"] = [("", pending)]
    config = current_app.config["STEPLINE"]
    outputs = blob_store(config.blob)
    samples |= output_samples(client, outputs, config.artifact_retention_days, config.cache_retention_days)
    return Response(_render(samples), mimetype="text/plain", headers={"Cache-Control": "no-store"})


def _render(samples: dict[str, list[tuple[str, float]]]) -> str:
    lines = []
    for name, values in samples.items():
        kind, text = HELP[name]
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [
            f"{name}{{{labels}}} {value:g}" if labels else f"{name} {value:g}" for labels, value in values
        ]
    return "\n".join(lines) + "\n"
