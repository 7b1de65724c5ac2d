"""Status badges for READMEs: `/badge/<owner>/<repo>.svg?branch=main` shows the latest run's status."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from service.dashboard import auth
from service.run_index import RunIndex

badges = Blueprint("badges", __name__)
badges.before_request(auth.guard_reading)  # private dashboards keep their statuses private too

# run status -> (words, colour); colours as shields.io uses them, so the badge sits well beside others
BADGE_LOOK = {
    "QUEUED": ("queued", "#9f9f9f"),
    "RUNNING": ("running", "#dfb317"),
    "SUCCEEDED": ("passing", "#4c1"),
    "FAILED": ("failing", "#e05d44"),
    "TIMED_OUT": ("timed out", "#e05d44"),
    "ABORTED": ("cancelled", "#9f9f9f"),
    "SKIPPED": ("skipped", "#9f9f9f"),
    "INVALID": ("invalid", "#e05d44"),
    "SUPERSEDED": ("superseded", "#9f9f9f"),
    "ERRORED": ("error", "#e05d44"),
}
CHAR_WIDTH = 6.5  # Verdana 11px averages about this; exact widths would need the font


@badges.get("/badge/<owner>/<repo>.svg")
def badge(owner: str, repo: str):
    branch = request.args.get("branch", "").strip()[:250] or None
    label = request.args.get("label", "build").strip()[:40] or "build"
    index = RunIndex(current_app.extensions["redis"])
    runs = index.list_runs(limit=1, repository=f"{owner}/{repo}", branch=branch)
    words, colour = (
        BADGE_LOOK.get(runs[0]["status"], ("unknown", "#9f9f9f")) if runs else ("no runs", "#9f9f9f")
    )
    svg = render_template("badge.svg", **_geometry(label, words), colour=colour)
    response = Response(svg, mimetype="image/svg+xml")
    # GitHub's image proxy and browsers may keep it a minute; a build's result shows soon enough
    response.headers["Cache-Control"] = "public, max-age=60, s-maxage=60"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.add_etag()
    return response.make_conditional(request)


def _geometry(label: str, words: str) -> dict[str, object]:
    left = int(len(label) * CHAR_WIDTH + 10)
    right = int(len(words) * CHAR_WIDTH + 10)
    return {
        "label": label,
        "words": words,
        "left": left,
        "right": right,
        "width": left + right,
        "label_x": left / 2,
        "words_x": left + right / 2,
    }
