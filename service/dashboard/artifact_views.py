"""A run's artifacts on the dashboard and the JSON API: the list (with sizes) and downloads.

Reading follows the same rule as logs (STEPLINE_READ_REQUIRES_LOGIN, auth.guard_reading), and only
files the run's index lists are served: a path is looked up, never joined into a blob key.
"""

from __future__ import annotations

import logging
import posixpath
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context, url_for
from werkzeug.http import dump_options_header

from service.dashboard import auth
from service.dashboard.extensions import details
from service.errors import DashboardError
from statemachines.artifacts import ArtifactStore
from statemachines.blob_store import open_blob_store
from statemachines.errors import BlobError, BlobMissing

log = logging.getLogger(__name__)
artifacts = Blueprint("artifacts", __name__)
artifacts.before_request(auth.guard_reading)
EXTENSION = "stepline_artifacts"
CHUNK = 1 << 20
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@artifacts.record_once
def _init(state: Any) -> None:
    app = state.app
    store = ArtifactStore(app.extensions["redis"], open_blob_store(app.config["STEPLINE"].blob))
    app.extensions[EXTENSION] = store
    app.context_processor(lambda: {"run_artifacts": run_artifacts})


def _store() -> ArtifactStore:
    store: ArtifactStore = current_app.extensions[EXTENSION]
    return store


def run_artifacts(run_id: str) -> list[dict[str, Any]]:
    """Rows for the run page: step, path, size, download link, and whether an untrusted run made it."""
    rows = []
    for step, entry in _store().listing(run_id).items():
        for item in entry.get("files") or []:
            link = url_for("artifacts.download", run_id=run_id, step=step, path=item["path"])
            untrusted = entry.get("trusted") is not True
            rows.append(
                {
                    "step": step,
                    "path": item["path"],
                    "size": item["size"],
                    "url": link,
                    "untrusted": untrusted,
                }
            )
    return rows


@artifacts.get("/api/runs/<run_id>/artifacts")
def list_artifacts(run_id: str):
    details().run(run_id)
    return jsonify(artifacts=run_artifacts(run_id))


@artifacts.get("/api/runs/<run_id>/artifacts/download")
def download(run_id: str):
    """One listed file as an attachment: `?step=<step>&path=<path in the work tree>`."""
    details().run(run_id)
    step, path = request.args.get("step", ""), request.args.get("path", "")
    found = _store().file(run_id, step, path)
    if found is None:
        return jsonify(error=f"run {run_id} has no artifact {path!r} of step {step!r}"), 404
    try:
        blob = _store().open(found["key"])
    except BlobMissing:
        return jsonify(error=f"artifact {path!r} is no longer stored (retention)"), 410
    except BlobError as exc:
        log.warning("%s: artifact %s of step %s unreadable: %s", run_id, path, step, exc.reason)
        return jsonify(error="the blob store is unavailable; try again later"), 503

    def chunks():
        with blob:
            while data := blob.read(CHUNK):
                yield data

    headers = {
        "Content-Disposition": attachment(posixpath.basename(path)),
        "Content-Length": str(found["size"]),
        "X-Content-Type-Options": "nosniff",
    }
    return Response(stream_with_context(chunks()), mimetype="application/octet-stream", headers=headers)


def attachment(name: str) -> str:
    """A Content-Disposition a WSGI server can send whatever the step named its file: control characters
    (a header split) replaced, non-ASCII names in RFC 6266's filename* with an ASCII fallback."""
    name = CONTROL.sub("_", name) or "artifact"
    simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii") or "artifact"
    names = {"filename": simple}
    if simple != name:
        names["filename*"] = "UTF-8''" + quote(name, safe="!#$&+^`|~")
    return dump_options_header("attachment", names)


@artifacts.errorhandler(DashboardError)
def artifact_error(exc: DashboardError):
    return jsonify(error=str(exc)), exc.status
