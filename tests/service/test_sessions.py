"""Sessions against the real web process: signing out ends a session wherever its cookie was copied, sessions
can be revoked from the command line, and failed sign-ins are throttled per address and per user."""

from __future__ import annotations

import dataclasses
import re
import subprocess

import pytest
import requests
from werkzeug.security import generate_password_hash

from service.app import create_app
from tests.harness.processes import PROJECT, python_module, start_web
from tests.service.dashboard_seed import ADMIN_TOKEN, PASSWORD, csrf_of, with_users

SIGNED_IN_AS = re.compile(r'<span class="user">([^<]+)</span>')


@pytest.fixture
def settings(redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "GITHUB_WEBHOOK_SECRET": "test-webhook-secret",
        "STEPLINE_USERS": "alice:" + generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
        "STEPLINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": "s" * 64,
    }


@pytest.fixture
def web(processes, redis_url: str, settings: dict[str, str]) -> str:
    return start_web(processes, redis_url, **settings)


def form_token(browser: requests.Session, url: str) -> str:
    page = browser.get(url + "/login", timeout=10).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def sign_in(url: str, name: str = "alice", password: str = PASSWORD) -> requests.Response:
    browser = requests.Session()
    data = {"username": name, "password": password, "csrf_token": form_token(browser, url)}
    answer = browser.post(url + "/login", data=data, allow_redirects=False, timeout=10)
    answer.browser = browser  # type: ignore[attr-defined]
    return answer


def who(url: str, cookies: dict[str, str]) -> str | None:
    """Who the dashboard says is signed in with these cookies."""
    found = SIGNED_IN_AS.search(requests.get(url + "/", cookies=cookies, timeout=10).text)
    return found.group(1) if found else None


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(web: str) -> None:
    answer = sign_in(web)
    assert answer.status_code == 302
    browser = answer.browser  # type: ignore[attr-defined]
    copied = dict(browser.cookies)
    assert who(web, copied) == "alice"
    browser.post(web + "/logout", data={"csrf_token": form_token(browser, web)}, timeout=10)
    assert who(web, copied) is None


def test_revoking_a_users_sessions_ends_them_all(web: str, settings: dict[str, str]) -> None:
    first, second = dict(sign_in(web).browser.cookies), dict(sign_in(web).browser.cookies)  # type: ignore[attr-defined]
    admin = dict(sign_in(web, "", ADMIN_TOKEN).browser.cookies)  # type: ignore[attr-defined]
    assert who(web, first) == who(web, second) == "alice" and who(web, admin) == "admin"
    revoked = subprocess.run(
        python_module("service.dashboard.auth", "revoke", "alice"),
        cwd=PROJECT,
        env={"PATH": "/usr/bin:/bin", **settings},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revoked.returncode == 0 and "ended 2 session(s)" in revoked.stdout, revoked.stderr
    assert who(web, first) is None and who(web, second) is None
    assert who(web, admin) == "admin"  # another user's session stays


def test_failed_sign_ins_are_throttled_per_user_then_per_address(web: str) -> None:
    statuses = [sign_in(web, "alice", f"wrong-{n}").status_code for n in range(8)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
    throttled = sign_in(web, "alice", PASSWORD)  # the right password too, while throttled
    assert throttled.status_code == 429 and 0 < int(throttled.headers["Retry-After"]) <= 900
    others = [sign_in(web, f"user-{n}", "wrong").status_code for n in range(40)]
    # the address's 20 failures: alice's 5 counted ones, then 15 more (a throttled try counts no more)
    assert others == [401] * 15 + [429] * 25
    bad_token = requests.get(web + "/api/runs", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad_token.status_code == 429 and int(bad_token.headers["Retry-After"]) > 0


def test_behind_a_proxy_failures_count_per_forwarded_address(service_config) -> None:
    client = create_app(dataclasses.replace(with_users(service_config), proxy_hops=1)).test_client()

    def fail_from(address: str) -> int:
        data = {"username": f"u-{address}", "password": "wrong", "csrf_token": csrf_of(client)}
        return client.post("/login", data=data, headers={"X-Forwarded-For": address}).status_code

    assert [fail_from("203.0.113.7") for _ in range(21)][-1] == 429
    assert fail_from("198.51.100.9") == 401  # another client behind the same proxy is not throttled
