"""The dashboard's pages through Flask's test client: runs list, filters, pagination, run page, escaping, 404s."""

from __future__ import annotations

import json
import re
import time

import pytest

from service.app import create_app
from service.approvals import ApprovalStore
from tests.service.dashboard_seed import HOSTILE_BRANCH, HOSTILE_MESSAGE, seed_log, seed_run, with_users


@pytest.fixture
def client(service_config):
    return create_app(with_users(service_config, github_web_url="https://github.example")).test_client()


def test_runs_page_lists_runs_newest_first_with_their_facts(client, redis_client):
    old = seed_run(redis_client, message="Older change", created_at=time.time() - 60, status="SUCCEEDED")
    new = seed_run(
        redis_client, message="Newer change\n\nsecond paragraph", author="Grace", status="RUNNING", finished_at=None,
        pull_request=12, branch=None, event="pull_request",
    )  # fmt: skip
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index(new["run_id"]) < html.index(old["run_id"])
    assert "Newer change" in html and "second paragraph" not in html  # the title line only
    assert "Grace" in html and "PR #12" in html and "0123456" in html
    assert 'class="badge running"' in html and 'class="badge succeeded"' in html
    assert "42s" in html  # the finished run's duration
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_hostile_commit_messages_and_branch_names_are_escaped(client, redis_client):
    run = seed_run(redis_client, message=HOSTILE_MESSAGE, branch=HOSTILE_BRANCH, author="<i>mallory</i>")
    for url in ("/", "/?partial=rows", f"/runs/{run['run_id']}", f"/runs/{run['run_id']}/panel"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html and "<i>mallory" not in html, url
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html, url
    run_page = client.get(f"/runs/{run['run_id']}").get_data(as_text=True)
    assert "feat/&#34;quoted&#34;-&#39;single&#39;&lt;b&gt;" in run_page
    # the link to the branch on GitHub is URL-quoted too
    assert 'href="https://github.example/octo/app/tree/feat/%22quoted%22-%27single%27%3Cb%3E"' in run_page


def test_filters_by_repository_branch_pr_and_status(client, redis_client):
    seed_run(redis_client, repository="octo/app", branch="main", message="app main")
    seed_run(redis_client, repository="octo/app", branch="dev", message="app dev", status="FAILED")
    seed_run(redis_client, repository="octo/lib", branch="main", message="lib main")
    seed_run(redis_client, repository="octo/app", branch=None, pull_request=7, message="app pr")

    def titles(query: str) -> set[str]:
        html = client.get("/?partial=rows&" + query).get_data(as_text=True)
        return set(re.findall(r"</code> ([a-z ]+)</a>", html))

    assert titles("") == {"app main", "app dev", "lib main", "app pr"}
    assert titles("repository=octo/app") == {"app main", "app dev", "app pr"}
    assert titles("repository=octo/app&branch=dev") == {"app dev"}
    assert titles("repository=octo/app&pr=7") == {"app pr"}
    assert titles("status=failed") == {"app dev"}
    assert titles("branch=main") == {"app main", "lib main"}  # without a repository: across repositories
    assert titles("repository=octo/app&status=SUCCEEDED") == {"app main", "app pr"}
    assert titles("status=<script>&pr=x&page=-1") == {"app main", "app dev", "lib main", "app pr"}


def test_pagination_pages_through_older_runs(client, redis_client):
    base = time.time() - 1000
    for number in range(30):
        seed_run(redis_client, message=f"change {number:02d}", created_at=base + number)
    first = client.get("/").get_data(as_text=True)
    assert "change 29" in first and "change 05" in first and "change 04" not in first
    assert 'rel="next" href="/?page=2"' in first and 'rel="prev"' not in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert "change 04" in second and "change 00" in second and "change 05" not in second
    assert 'rel="next"' not in second and 'rel="prev"' in second


def test_partial_rows_is_only_the_table_body_and_marks_active_runs(client, redis_client):
    seed_run(redis_client, status="RUNNING", finished_at=None)
    rows = client.get("/?partial=rows").get_data(as_text=True)
    assert rows.lstrip().startswith("<tr") and "<html" not in rows
    assert 'data-active="true"' in rows


def test_run_page_shows_header_links_steps_and_audit(client, redis_client):
    run = seed_run(
        redis_client, pull_request=12, branch=None, status="FAILED", status_reason="step test failed"
    )
    seed_log(redis_client, run["run_id"], "build", ["compiling", "done"])
    seed_log(redis_client, run["run_id"], "test", ["FAIL: test_widget"], finish="failed")
    from service.run_index import RunIndex

    RunIndex(redis_client).add_audit(run["run_id"], {"action": "rerun", "by": "alice"})
    html = client.get(f"/runs/{run['run_id']}").get_data(as_text=True)
    assert 'href="https://github.example/octo/app/commit/0123456789abcdef0123456789abcdef01234567"' in html
    assert 'href="https://github.example/octo/app/pull/12"' in html
    assert "step test failed" in html
    assert re.search(r'data-step="build".*?succeeded', html, re.S)
    assert re.search(r'data-step="test".*?failed.*?\(exit 1\)', html, re.S)
    assert "rerun</strong> by alice" in html
    assert "Sign in</a> to re-run" in html  # not signed in: no action buttons
    assert 'id="action-rerun"' not in html


def test_unknown_run_is_a_404_page_never_a_500(client):
    for url in ("/runs/does-not-exist", "/runs/does-not-exist/panel", "/runs/" + "x" * 5000):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Not found" in response.get_data(as_text=True)
    assert client.get("/runs/nope/logs/build.txt").status_code == 404


def test_raw_log_is_plain_text_with_every_line(client, redis_client):
    run = seed_run(redis_client)
    seed_log(redis_client, run["run_id"], "build", [f"line {n} <b>" for n in range(3000)])
    response = client.get(f"/runs/{run['run_id']}/logs/build.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain" and response.headers["X-Content-Type-Options"] == "nosniff"
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 3000 and lines[-1] == "line 2999 <b>"


def test_step_functions_down_still_shows_the_run_page(service_config, redis_client):
    import dataclasses

    from tests.harness.ports import free_port

    down = dataclasses.replace(service_config, sfn_endpoint_url=f"http://127.0.0.1:{free_port()}")
    client = create_app(down).test_client()
    arn = "arn:aws:states:us-east-1:123456789012:execution:ci:run-1"
    run = seed_run(redis_client, status="RUNNING", finished_at=None, execution_arn=arn)
    assert client.get(f"/runs/{run['run_id']}").status_code == 200
    graph = client.get(f"/api/runs/{run['run_id']}/graph")
    assert graph.status_code == 200 and graph.get_json()["graph"] is None
    assert "Could not connect" in graph.get_json()["error"]  # said on the page, not a 500


def test_run_view_words_durations_and_links():
    from service.dashboard.run_view import format_duration, github_links, trigger_of

    assert [format_duration(s) for s in (None, 4.4, 65, 3700)] == ["-", "4s", "1m 05s", "1h 01m"]
    assert trigger_of({"tag": "v1.0", "event": "push"}) == "tag v1.0"
    assert trigger_of({"pull_request": 3, "rerun_of": "abc"}) == "PR #3 (re-run)"
    links = github_links({"repository": "octo/app", "tag": "v1.0/rc", "sha": "abc"}, "https://ghe.example/")
    assert links == {
        "repository": "https://ghe.example/octo/app",
        "commit": "https://ghe.example/octo/app/commit/abc",
        "ref": "https://ghe.example/octo/app/releases/tag/v1.0%2Frc",
    }
    assert github_links({"repository": "not-a-repo"}, "https://github.com") == {}


def test_run_page_shows_what_github_was_told_and_failed_posts(client, redis_client):
    from service.status_contexts import PHASE_STEP_DONE, StatusUpdate, order_key
    from service.status_ledger import StatusLedger

    run = seed_run(redis_client, status="FAILED")
    ledger = StatusLedger(redis_client)
    update = StatusUpdate(
        "octo/app", run["sha"], "stepline/ci/test", "failure", "failed in 3s", "http://x/runs/1#step-test",
        run["run_id"], order_key(run, PHASE_STEP_DONE, 1),
    )  # fmt: skip
    assert ledger.claim(update)
    ledger.record_error(update, "422 Validation Failed")
    html = client.get(f"/runs/{run['run_id']}").get_data(as_text=True)
    assert re.search(r"stepline/ci/test</td>\s*<td>failure</td>\s*<td>failed in 3s", html)
    assert "failed: 422 Validation Failed" in html
    assert 'id="step-test"' in html  # the anchor a step's status links to


def test_a_superseded_run_and_a_rerun_link_to_the_runs_they_name(client, redis_client):
    newer = seed_run(redis_client, status="RUNNING", finished_at=None)
    older = seed_run(
        redis_client,
        status="SUPERSEDED",
        status_reason="superseded by abc1234",
        superseded_by=newer["run_id"],
    )
    rerun = seed_run(redis_client, status="RUNNING", finished_at=None, rerun_of=older["run_id"])
    page = client.get(f"/runs/{older['run_id']}").get_data(as_text=True)
    assert f'id="superseded-by" href="/runs/{newer["run_id"]}"' in page
    page = client.get(f"/runs/{rerun['run_id']}").get_data(as_text=True)
    assert f'id="rerun-of" href="/runs/{older["run_id"]}"' in page


def test_a_run_that_waits_for_a_person_says_so_in_the_list_and_on_its_page(client, redis_client):
    waiting = seed_run(redis_client, status="RUNNING", finished_at=None)
    busy = seed_run(redis_client, status="RUNNING", finished_at=None)
    task_input = json.dumps({"step": "approve-deploy", "run": {"run_id": waiting["run_id"]}})
    ApprovalStore(redis_client).add("token-1", task_input)
    page = client.get("/").get_data(as_text=True)
    rows = {m[0]: m[1] for m in re.findall(r'data-run-id="(\w+)".*?</span> ([a-z ]+)</span>', page, re.S)}
    assert rows[waiting["run_id"]] == "awaiting approval" and rows[busy["run_id"]] == "running"
    assert "awaiting approval" in client.get(f"/runs/{waiting['run_id']}").get_data(as_text=True)


def test_map_iterations_are_listed_where_their_family_stands_in_the_pipeline(client, redis_client):
    from service.runs import step_families

    definition = {
        "StartAt": "lint",
        "States": {
            "lint": {
                "Type": "Task",
                "Resource": "${activity:build}",
                "Parameters": {"step": "lint"},
                "Next": "matrix",
            },
            "matrix": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "test",
                    "States": {
                        "test": {
                            "Type": "Task",
                            "Resource": "${activity:build}",
                            "Parameters": {"step.$": "States.Format('test-py{}', $.version)"},
                            "End": True,
                        }
                    },
                },
                "Next": "deploy",
            },
            "deploy": {
                "Type": "Task",
                "Resource": "${activity:deploy}",
                "Parameters": {"step": "deploy"},
                "End": True,
            },
        },
    }
    families = step_families(definition)
    assert families == [["test-py{}", "lint"]]
    run = seed_run(redis_client, steps=["lint", "deploy"], step_families=families)
    for step in ("lint", "test-py3.11", "test-py3.12", "deploy", "stray"):
        seed_log(redis_client, run["run_id"], step, ["ok"])
    body = client.get(f"/api/runs/{run['run_id']}").get_json()
    assert [s["step"] for s in body["steps"]] == ["lint", "test-py3.11", "test-py3.12", "deploy", "stray"]
    html = client.get(f"/runs/{run['run_id']}").get_data(as_text=True)
    shown = re.findall(r'data-step="([^"]+)"', html)
    assert list(dict.fromkeys(shown)) == ["lint", "test-py3.11", "test-py3.12", "deploy", "stray"]
