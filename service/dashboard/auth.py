"""Signing in to the dashboard: configured users or the admin token, the session cookie, and CSRF checks.

Sessions live on the server (service/dashboard/sessions.py): signing out ends one wherever its cookie was
copied to, and failed sign-ins are throttled per address and per user (429, Retry-After).

`python -m service.dashboard.auth hash` prints a password hash for STEPLINE_USERS;
`python -m service.dashboard.auth revoke <user>` (or `--all`) ends every session of a user (of everyone).
"""

from __future__ import annotations

import getpass
import hmac
import logging
import secrets
import sys
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash, generate_password_hash

from service.config import ServiceConfig
from service.dashboard import sessions
from statemachines.errors import ConfigError

log = logging.getLogger(__name__)
auth = Blueprint("auth", __name__)

ADMIN = "admin"  # the name the admin token signs in as, in the audit trail
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_ID = "sid"


def init_app(app: Flask, config: ServiceConfig) -> None:
    """Session cookie settings and the signed-in user on `g` for every request."""
    app.secret_key = config.secret_key or secrets.token_hex(32)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # a Secure cookie is never sent over plain http, so only ask for it where the service is https
        SESSION_COOKIE_SECURE=config.public_url.startswith("https://"),
        SESSION_COOKIE_NAME="stepline_session",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=sessions.SESSION_SECONDS),
    )
    app.before_request(_load_user)
    app.context_processor(lambda: {"current_user": g.get("user"), "csrf_token": csrf_token})


def _config() -> ServiceConfig:
    return current_app.config["STEPLINE"]


def _redis() -> redis.Redis:
    return current_app.extensions["redis"]


def _load_user() -> Any:
    """Who is signed in (a live session, or the admin token); a 429 for an address that guessed too often."""
    g.user = _session_user()
    g.token_auth = False
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        address = request.remote_addr or "-"
        wait = sessions.throttled_for(_redis(), address, None)
        if wait:  # answered here: the blueprints' error pages would drop Retry-After
            log.warning("token: sign-in from %s throttled for %s s", address, wait)
            return (
                jsonify(error="too many failed sign-ins from this address"),
                429,
                {"Retry-After": str(wait)},
            )
        if check_token(header.removeprefix("Bearer ").strip()):
            g.user, g.token_auth = ADMIN, True
        else:
            sessions.count_failure(_redis(), address, None)
            abort(401)
    return None


def _session_user() -> str | None:
    """The signed-in user, while the server still holds the cookie's session (not signed out, not revoked)."""
    user, session_id = session.get("user"), session.get(SESSION_ID)
    if not user:
        return None
    try:
        live = isinstance(session_id, str) and sessions.session_user(_redis(), session_id) == user
    except redis.RedisError as exc:
        log.warning("session of %s not checked, Redis failed: %s", user, exc)
        return None
    if not live:  # ended elsewhere: forget it here too
        session.pop("user", None)
        session.pop(SESSION_ID, None)
        return None
    return str(user)


def check_token(token: str) -> bool:
    expected = _config().admin_token
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


def check_password(name: str, password: str) -> bool:
    """True when `name` is a configured user and `password` matches its hash (constant time per user)."""
    for user, hashed in _config().users:
        if hmac.compare_digest(user.encode(), name.encode()):
            return check_password_hash(hashed, password)
    return False


def csrf_token() -> str:
    """The session's CSRF token, made on first use; forms carry it in `csrf_token`, scripts in X-CSRF-Token."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def csrf_sent() -> bool:
    """True when the request carries the session's CSRF token (bearer-token calls carry no cookie)."""
    if g.get("token_auth"):
        return True
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get(CSRF_FIELD) or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def check_csrf() -> None:
    """Abort with 400 unless the request carries the session's CSRF token."""
    if not csrf_sent():
        abort(400, description="missing or invalid CSRF token: reload the page and try again")


def require_user(view: Callable[..., Any]) -> Callable[..., Any]:
    """An action: needs a signed-in user (401 otherwise) and, for cookie sessions, the CSRF token."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not g.get("user"):
            abort(401, description="sign in to do this")
        check_csrf()
        return view(*args, **kwargs)

    return wrapped


def guard_reading() -> Any:
    """A blueprint's before_request: when reading needs a sign-in, pages redirect to it and the rest get 401."""
    if not _config().read_requires_login or g.get("user"):
        return None
    if request.blueprint == "dashboard":
        return redirect(url_for("auth.login", next=request.full_path))
    abort(401, description="sign in to read this")


@auth.route("/login", methods=["GET", "POST"])
def login():
    config = _config()
    error, status = None, 200
    if request.method == "POST" and not csrf_sent():
        # a form from before a sign-in or sign-out elsewhere: show a fresh one rather than a bare 400
        log.warning("login: expired sign-in form from %s", request.remote_addr)
        error, status = "The sign-in form had expired: sign in again.", 400
    elif request.method == "POST":
        name = request.form.get("username", "").strip()
        secret = request.form.get("password", "")
        address = request.remote_addr or "-"
        wait = sessions.throttled_for(_redis(), address, name or ADMIN)
        if wait:  # checked before the password: a guess now tells nothing, right or wrong
            log.warning("login: sign-in for %r from %s throttled for %s s", name[:64], address, wait)
            error = f"Too many failed sign-ins: try again in {wait} seconds."
            page = render_template(
                "login.html", error=error, configured=bool(config.users or config.admin_token)
            )
            return page, 429, {"Retry-After": str(wait)}
        user = ADMIN if not name and check_token(secret) else name if check_password(name, secret) else None
        if user:
            sessions.clear_failures(_redis(), user)
            session.clear()  # a new session id and CSRF token after signing in: no session fixation
            session.permanent = True
            session["user"] = user
            session[SESSION_ID] = sessions.start_session(_redis(), user)
            log.info("login: %s signed in from %s", user, address)
            return redirect(_safe_next(request.args.get("next")))
        sessions.count_failure(_redis(), address, name or ADMIN)
        log.warning("login: failed sign-in for %r from %s", name[:64], address)
        error, status = "Wrong name, password or token.", 401
    configured = bool(config.users or config.admin_token)
    return render_template("login.html", error=error, configured=configured), status


@auth.post("/logout")
def logout():
    check_csrf()
    # the token outlives the sign-out: a sign-in form rendered before it (another tab, this page) still works
    token = session.get(CSRF_FIELD)
    if isinstance(session.get(SESSION_ID), str):
        sessions.end_session(_redis(), session[SESSION_ID])  # a copy of the cookie opens nothing now
    session.clear()
    if token:
        session[CSRF_FIELD] = token
    return redirect(url_for("dashboard.runs_page"))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would turn the login page into a phishing tool."""
    if not target:
        return url_for("dashboard.runs_page")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.runs_page")
    return target


USAGE = """usage: python -m service.dashboard.auth hash            prints a password hash for STEPLINE_USERS
       python -m service.dashboard.auth revoke USER     ends every session of USER
       python -m service.dashboard.auth revoke --all    ends every session"""


def main(argv: list[str]) -> int:
    if argv == ["hash"]:  # exactly: `hash --help` must not wait for a password
        password = getpass.getpass("password: ")
        if not password:
            print("an empty password: nothing to hash", file=sys.stderr)
            return 2
        print(generate_password_hash(password, method="pbkdf2:sha256"))
        return 0
    if argv[:1] == ["revoke"] and len(argv) == 2:
        try:
            config = ServiceConfig.from_env()
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        client = redis.Redis.from_url(config.redis_url)
        ended = sessions.revoke_sessions(client, None if argv[1] == "--all" else argv[1])
        print(f"ended {ended} session(s)")
        return 0
    print(USAGE)
    return 0 if argv[-1:] in (["-h"], ["--help"]) else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
