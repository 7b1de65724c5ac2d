"""Starting runs by hand and listing schedules: the "New run" form, `POST /api/runs`, the schedules page.

The form has two steps: repository and ref first; then the resolved commit, whether the run will be
trusted, and the input fields the commit's pipeline declares with their defaults (service/run_inputs.py).
`POST /api/runs` takes `{"repository", "ref", "branch"?, "inputs"?}` (`branch` only with a sha: the
branch it must be on to be trusted) and answers 201 with the run. Both need a signed-in user and the
CSRF token (or the admin token), as every action does. The routes join the dashboard's and the API's
blueprints (their sign-in guards, error pages and security headers); service/app.py imports this module.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for

from service.config import ServiceConfig
from service.dashboard import auth
from service.dashboard.api import api
from service.dashboard.extensions import actions
from service.dashboard.pages import dashboard
from service.errors import DashboardError, RunRequestError
from service.manual_runs import ManualRuns
from service.ref_resolver import parse_ref
from service.repository_schedules import schedules_of
from service.schedule_problems import schedule_problems
from service.scheduler import describe

log = logging.getLogger(__name__)

INPUT_FIELD = "input_"  # form field prefix of an input's value


def _manual_runs() -> ManualRuns:
    found = current_app.extensions.get("stepline_manual_runs")
    if found is None:
        found = current_app.extensions["stepline_manual_runs"] = ManualRuns(actions().ctx)
    return found


def _config() -> ServiceConfig:
    return current_app.config["STEPLINE"]


@api.post("/runs")
@auth.require_user
def create_run():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise RunRequestError("body", 'must be a JSON object: {"repository": "owner/name", "ref": "main"}')
    ref_request = parse_ref(body.get("repository"), body.get("ref"), body.get("branch"))  # type: ignore[arg-type]
    run = _manual_runs().start(ref_request, body.get("inputs"), g.user)
    return jsonify(
        run_id=run["run_id"], status=run["status"], repository=run["repository"], ref=run["ref"],
        sha=run["sha"], trusted=run["trusted"], trust_reason=run["trust_reason"], inputs=run["inputs"],
        url=url_for("dashboard.run_page", run_id=run["run_id"]),
    ), 201  # fmt: skip


@api.get("/schedules")
def list_schedules():
    ctx = actions().ctx
    schedules, problems = schedules_of(_config(), ctx.redis)
    problems |= schedule_problems(ctx.redis, schedules)  # by schedule: a vanished repository or branch
    return jsonify(schedules=describe(ctx.redis, ctx.index, schedules, time.time()), problems=problems)


@dashboard.get("/runs/new")
def new_run_page():
    if not g.get("user"):
        return redirect(url_for("auth.login", next=request.full_path))
    repository = request.args.get("repository", "").strip()
    ref = request.args.get("ref", "").strip()
    context: dict[str, Any] = {"repository": repository, "ref": ref, "prepared": None, "error": None}
    status = 200
    if repository or ref:
        try:
            context["prepared"] = _manual_runs().prepare(parse_ref(repository, ref))
        except DashboardError as exc:
            context["error"], status = str(exc), exc.status
    return render_template("new_run.html", **context), status


@dashboard.post("/runs/new")
@auth.require_user
def start_run_form():
    repository = request.form.get("repository", "").strip()
    ref = request.form.get("ref", "").strip()
    inputs = {
        key.removeprefix(INPUT_FIELD): value
        for key, value in request.form.items()
        if key.startswith(INPUT_FIELD)
    }
    try:
        branch = request.form.get("branch", "").strip() or None
        run = _manual_runs().start(parse_ref(repository, ref, branch), inputs, g.user)
    except DashboardError as exc:
        context = {"repository": repository, "ref": ref, "prepared": None, "error": str(exc)}
        return render_template("new_run.html", **context), exc.status
    flash(f"Started a run of {run['ref']} ({run['sha'][:7]}).")
    return redirect(url_for("dashboard.run_page", run_id=run["run_id"]))


@dashboard.get("/schedules")
def schedules_page():
    ctx = actions().ctx
    schedules, problems = schedules_of(_config(), ctx.redis)
    problems |= schedule_problems(ctx.redis, schedules)
    rows = describe(ctx.redis, ctx.index, schedules, time.time())
    return render_template("schedules.html", schedules=rows, problems=problems)
