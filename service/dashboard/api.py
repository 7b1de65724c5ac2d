"""The JSON API behind the dashboard, for scripts too: runs, a run, its graph and history, logs, and actions.

Reading follows STEPLINE_READ_REQUIRES_LOGIN; actions need a signed-in user (session cookie plus the
X-CSRF-Token header) or `Authorization: Bearer <STEPLINE_ADMIN_TOKEN>`.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from service.dashboard import auth
from service.dashboard.extensions import actions, details
from service.dashboard.run_details import RunFilters
from service.errors import DashboardError, LogCursorError
from service.run_actions import NEW_RUN_ACTIONS, RUN_ACTIONS
from statemachines.step_logs import is_cursor
from statemachines.workflow_commands import parse_lines

log = logging.getLogger(__name__)
api = Blueprint("api", __name__, url_prefix="/api")
api.before_request(auth.guard_reading)

MAX_LOG_LINES = 2000


def _web_url() -> str:
    return current_app.config["STEPLINE"].github_web_url


@api.get("/runs")
def list_runs():
    filters = RunFilters.from_args(request.args)
    runs, has_next = details().runs(filters, _web_url())
    return jsonify(
        runs=runs,
        page=filters.page,
        next_page=filters.page + 1 if has_next else None,
        active=any(run["active"] for run in runs),
    )


@api.get("/runs/<run_id>")
def get_run(run_id: str):
    overview = details().overview(run_id, _web_url())
    record = overview.pop("record")
    return jsonify(
        **overview, execution_input=record.get("execution_input"), validation=record.get("validation")
    )


@api.get("/runs/<run_id>/graph")
def get_graph(run_id: str):
    """The graph model (nodes with status and visits, edges with Choice rules) and the history table."""
    return jsonify(details().graph(run_id))


@api.get("/runs/<run_id>/logs")
def list_logs(run_id: str):
    details().run(run_id)
    return jsonify(logs=details().logs.list_logs(run_id))


@api.get("/runs/<run_id>/logs/<path:step>")
def read_log(run_id: str, step: str):
    """Lines after `after` (an opaque cursor, "0" at first), at most `limit`; `finished` once the step ended;
    `annotations`: the workflow commands among them (statemachines/workflow_commands.py)."""
    details().run(run_id)
    attempt = request.args.get("attempt", type=int)
    after = request.args.get("after", "0")[:64]
    if not is_cursor(after):
        raise LogCursorError(after)
    limit = max(1, min(request.args.get("limit", 500, type=int), MAX_LOG_LINES))
    reader = details().logs
    lines, cursor, finished = reader.read(run_id, step, attempt, after, limit)
    meta = reader.meta(run_id, step, attempt)
    # workflow commands (::error file=…::…) the log view highlights, by their index in `lines`
    annotations = [found.to_dict() for found in parse_lines(lines)]
    return jsonify(lines=lines, next=cursor, finished=finished, meta=meta, annotations=annotations)


@api.post("/runs/<run_id>/<action>")
@auth.require_user
def run_action(run_id: str, action: str):
    if action not in RUN_ACTIONS:
        return jsonify(error=f"no action {action!r}"), 404
    run = RUN_ACTIONS[action](actions(), run_id, g.user)
    status = 201 if action in NEW_RUN_ACTIONS else 200
    return jsonify(run_id=run["run_id"], status=run["status"], rerun_of=run.get("rerun_of")), status


@api.post("/runs/<run_id>/steps/<path:step>/rerun")
@auth.require_user
def rerun_step(run_id: str, step: str):
    """A new run where this step (and what depends on it) runs again and every other passed step is reused."""
    run = actions().rerun_step(run_id, g.user, step)
    return jsonify(run_id=run["run_id"], status=run["status"], rerun_of=run_id), 201


@api.post("/approvals/<approval_id>/<decision>")
@auth.require_user
def decide(approval_id: str, decision: str):
    if decision not in {"approve", "reject"}:
        return jsonify(error=f"no decision {decision!r}"), 404
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}  # any JSON may arrive: only an object names a comment
    comment = str(body.get("comment") or request.form.get("comment") or "")
    return jsonify(actions().decide(approval_id, decision == "approve", g.user, comment))


@api.errorhandler(DashboardError)
def api_error(exc: DashboardError):
    return jsonify(error=str(exc)), exc.status


@api.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify(error=exc.description), exc.code or 500
