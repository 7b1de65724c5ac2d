"""Signing in, the session cookie, CSRF on every POST, bearer tokens for scripts, and private dashboards."""

from __future__ import annotations

import re

import pytest

from service.app import create_app
from service.config import ServiceConfig
from service.run_index import RunIndex
from statemachines.errors import ConfigError
from tests.service.dashboard_seed import ADMIN_TOKEN, PASSWORD, csrf_of, seed_run, sign_in, with_users


@pytest.fixture
def client(service_config):
    return create_app(with_users(service_config)).test_client()


def queued_run(redis_client) -> str:
    """A run that has not started yet: cancelling it needs no Step Functions call."""
    return seed_run(redis_client, status="QUEUED", started_at=None, finished_at=None, execution_arn=None)[
        "run_id"
    ]


def test_a_user_not_signed_in_cannot_act(client, redis_client):
    run_id = queued_run(redis_client)
    token = csrf_of(client)
    assert client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}).status_code == 401
    assert client.post(f"/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": token}).status_code == 401
    assert client.post("/approvals/abc/approve", data={"csrf_token": token}).status_code == 401
    assert RunIndex(redis_client).get(run_id)["status"] == "QUEUED"


def test_sign_in_then_act_with_the_csrf_token(client, redis_client):
    run_id = queued_run(redis_client)
    token = sign_in(client)
    response = client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token})
    assert response.status_code == 302 and response.location.endswith(f"/runs/{run_id}")
    run = RunIndex(redis_client).get(run_id)
    assert run["status"] == "ABORTED" and run["status_reason"] == "cancelled by alice"
    audit = RunIndex(redis_client).audit(run_id)
    assert {"action": "cancel", "by": "alice"}.items() <= audit[-1].items()
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Cancelled the run." in page and "cancel</strong> by alice" in page


def test_every_post_needs_the_csrf_token(client, redis_client):
    run_id = queued_run(redis_client)
    sign_in(client)
    assert client.post(f"/runs/{run_id}/cancel").status_code == 400
    assert client.post(f"/runs/{run_id}/cancel", data={"csrf_token": "forged"}).status_code == 400
    assert client.post(f"/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": "forged"}).status_code == 400
    assert client.post("/logout").status_code == 400
    assert RunIndex(redis_client).get(run_id)["status"] == "QUEUED"


def test_login_form_checks_csrf_passwords_and_sets_a_safe_cookie(client):
    assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 400
    token = csrf_of(client)
    wrong = client.post("/login", data={"username": "alice", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong name" in wrong.get_data(as_text=True)
    right = client.post(
        "/login?next=/runs/x", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert right.status_code == 302 and right.location == "/runs/x"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # http test URL
    assert "alice" in client.get("/").get_data(as_text=True)


def test_login_never_redirects_to_another_site(client):
    token = csrf_of(client)
    for target in ("//evil.example/", "https://evil.example/", "javascript:alert(1)"):
        data = {"username": "alice", "password": PASSWORD, "csrf_token": token}
        response = client.post(f"/login?next={target}", data=data)
        assert response.location == "/", target
        token = csrf_of(client)


def test_admin_token_signs_in_on_the_form_and_as_a_bearer_token(client, redis_client):
    run_id = queued_run(redis_client)
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = client.post(f"/api/runs/{run_id}/cancel", headers=bearer)  # no cookie: no CSRF token needed
    assert response.status_code == 200 and response.get_json()["status"] == "ABORTED"
    assert RunIndex(redis_client).audit(run_id)[-1]["by"] == "admin"
    assert (
        client.post(f"/api/runs/{run_id}/cancel", headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    token = csrf_of(client)
    signed = client.post("/login", data={"username": "", "password": ADMIN_TOKEN, "csrf_token": token})
    assert signed.status_code == 302


def test_cancelling_a_finished_run_is_refused(client, redis_client):
    run = seed_run(redis_client, status="SUCCEEDED")
    response = client.post(
        f"/api/runs/{run['run_id']}/cancel", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 409 and "already succeeded" in response.get_json()["error"]


def test_https_public_url_makes_the_cookie_secure(service_config):
    secure = create_app(with_users(service_config, public_url="https://ci.example")).test_client()
    token = csrf_of(secure)
    response = secure.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]


def test_private_dashboard_needs_a_sign_in_to_read(service_config, redis_client):
    client = create_app(with_users(service_config, read_requires_login=True)).test_client()
    run = seed_run(redis_client)
    page = client.get(f"/runs/{run['run_id']}")
    assert page.status_code == 302 and "/login?next=" in page.location
    assert client.get("/api/runs").status_code == 401
    assert client.get("/badge/octo/app.svg").status_code == 401
    assert client.get("/login").status_code == 200
    sign_in(client)
    assert client.get(f"/runs/{run['run_id']}").status_code == 200
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200


def test_users_setting_is_checked_at_start_up(redis_url):
    from werkzeug.security import generate_password_hash

    hashed = generate_password_hash("pw", method="pbkdf2:sha256:1000")
    env = {
        "REDIS_URL": redis_url,
        "GITHUB_WEBHOOK_SECRET": "s",
        "STEPLINE_USERS": f"alice:{hashed}, bob:plain",
    }
    with pytest.raises(ConfigError) as problem:
        ServiceConfig.from_env(env, check_services=False)
    assert "'bob' needs a password hash" in str(problem.value)
    env["STEPLINE_USERS"] = f"alice:{hashed}"
    config = ServiceConfig.from_env(env, check_services=False)
    assert config.users == (("alice", hashed),) and len(config.secret_key) == 64


def test_signing_out_then_in_again_just_works(client):
    sign_in(client)
    form_token = csrf_of(client)  # the sign-in form of another tab, rendered while signed in
    assert client.post("/logout", data={"csrf_token": form_token}).status_code == 302
    assert "alice" not in client.get("/").get_data(as_text=True)
    again = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": form_token})
    assert again.status_code == 302, again.data
    assert "alice" in client.get("/").get_data(as_text=True)


def test_an_expired_sign_in_form_is_shown_again_fresh_and_pages_are_never_cached(client):
    assert client.get("/login").headers["Cache-Control"] == "no-store"  # Back fetches a fresh form
    assert client.get("/").headers["Cache-Control"] == "no-store"
    expired = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "old"})
    page = expired.get_data(as_text=True)
    assert expired.status_code == 400 and "The sign-in form had expired" in page
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert fresh is not None
    data = {"username": "alice", "password": PASSWORD, "csrf_token": fresh.group(1)}
    assert client.post("/login", data=data).status_code == 302
