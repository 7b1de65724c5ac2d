"""The dashboard's pages: the runs list, a run (graph, steps, live logs, history, audit) and the action forms."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.exceptions import HTTPException

from service.config import ServiceConfig
from service.dashboard import auth
from service.dashboard.extensions import actions, details
from service.dashboard.run_details import RunFilters
from service.dashboard.run_view import format_duration
from service.errors import DashboardError
from service.run_actions import NEW_RUN_ACTIONS, RUN_ACTIONS
from service.run_index import STATUSES

log = logging.getLogger(__name__)
dashboard = Blueprint("dashboard", __name__)
dashboard.before_request(auth.guard_reading)

# The page is ours alone: no inline script, no other origin; a stored <script> in a commit message cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # pages carry the session's CSRF token: Back after signing in or out fetches a fresh page, never a stale
    # form (a stale sign-in form fails its CSRF check), and a signed-out browser keeps no private page
    "Cache-Control": "no-store",
}
RAW_LOG_BATCH = 5000


def init_app(app: Flask) -> None:
    """The pages' template filters and security headers (create_app registers the blueprints)."""
    app.jinja_env.filters["when"] = _when
    app.jinja_env.filters["duration"] = format_duration
    app.after_request(_security_headers)


def _config() -> ServiceConfig:
    return current_app.config["STEPLINE"]


def _security_headers(response: Response) -> Response:
    if request.blueprint in {"dashboard", "auth"}:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
    return response


def _when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch)))


@dashboard.get("/")
def runs_page():
    filters = RunFilters.from_args(request.args)
    runs, has_next = details().runs(filters, _config().github_web_url)
    context: dict[str, Any] = {"runs": runs, "filters": filters, "has_next": has_next, "statuses": STATUSES}
    if request.args.get("partial") == "rows":  # what the page's script polls: only the table body changes
        return render_template("_run_rows.html", **context)
    return render_template("runs.html", **context)


@dashboard.get("/runs/<run_id>")
def run_page(run_id: str):
    overview = details().overview(run_id, _config().github_web_url)
    return render_template("run.html", **overview)


@dashboard.get("/runs/<run_id>/panel")
def run_panel(run_id: str):
    """The header, steps, approvals and audit as HTML: the run page's script swaps it in while the run is live."""
    overview = details().overview(run_id, _config().github_web_url)
    return render_template("_run_panel.html", **overview)


@dashboard.get("/runs/<run_id>/logs/<path:step>.txt")
def raw_log(run_id: str, step: str):
    """The whole (capped) log of one attempt as plain text, for reading past what the page keeps."""
    details().run(run_id)
    attempt = request.args.get("attempt", type=int)
    reader = details().logs

    def lines():
        cursor = "0"
        while True:
            batch, cursor, finished = reader.read(run_id, step, attempt, cursor, RAW_LOG_BATCH)
            if not batch:
                return
            yield "".join(line + "\n" for line in batch)
            if finished:
                return

    headers = {"Content-Disposition": "inline", "X-Content-Type-Options": "nosniff"}
    return Response(stream_with_context(lines()), mimetype="text/plain", headers=headers)


@dashboard.post("/runs/<run_id>/<action>")
@auth.require_user
def run_action(run_id: str, action: str):
    if action not in RUN_ACTIONS:
        return render_template("error.html", message="No such action."), 404
    done = RUN_ACTIONS[action](actions(), run_id, g.user)
    if action in NEW_RUN_ACTIONS:  # both start a new run; "redrive" reuses the steps that passed
        flash(
            {
                "rerun": "Started a new run with the same input.",
                "redrive": "Re-running the failed steps in a new run; the steps that passed are reused.",
            }[action]
        )
        return redirect(url_for("dashboard.run_page", run_id=done["run_id"]))
    flash("Cancelled the run.")
    return redirect(url_for("dashboard.run_page", run_id=run_id))


@dashboard.post("/approvals/<approval_id>/<decision>")
@auth.require_user
def approval_action(approval_id: str, decision: str):
    if decision not in {"approve", "reject"}:
        return render_template("error.html", message="No such decision."), 404
    record = actions().decide(approval_id, decision == "approve", g.user, request.form.get("comment", ""))
    flash("Approved." if decision == "approve" else "Rejected.")
    return redirect(url_for("dashboard.run_page", run_id=record["run_id"]))


@dashboard.errorhandler(DashboardError)
def dashboard_error(exc: DashboardError):
    return render_template("error.html", message=str(exc), status=exc.status), exc.status


@dashboard.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    status = exc.code or 500
    return render_template("error.html", message=exc.description, status=status), status
