"""The JSON API behind the pages, and the badges: runs, a run, logs with cursors and the cut marker."""

from __future__ import annotations

import pytest

from service.app import create_app
from statemachines.step_logs import StepLogWriter
from tests.service.dashboard_seed import ADMIN_TOKEN, HOSTILE_MESSAGE, seed_log, seed_run, with_users


@pytest.fixture
def client(service_config):
    return create_app(with_users(service_config)).test_client()


def test_runs_api_lists_summaries_with_paging_and_activity(client, redis_client):
    seed_run(redis_client, status="RUNNING", finished_at=None, message=HOSTILE_MESSAGE)
    seed_run(redis_client, repository="octo/lib")
    body = client.get("/api/runs?repository=octo/app").get_json()
    assert [run["repository"] for run in body["runs"]] == ["octo/app"]
    run = body["runs"][0]
    assert run["message"] == HOSTILE_MESSAGE  # JSON carries the text; pages escape it
    assert run["short_sha"] == "0123456" and run["trigger"] == "push to main"
    assert run["look"]["class"] == "running" and run["active"] is True
    assert body["active"] is True and body["next_page"] is None
    assert (
        run["links"]["commit"]
        == "https://github.com/octo/app/commit/0123456789abcdef0123456789abcdef01234567"
    )


def test_run_api_gives_the_run_steps_audit_and_404s_unknown_runs(client, redis_client):
    run = seed_run(redis_client)
    seed_log(redis_client, run["run_id"], "build", ["ok"])
    body = client.get(f"/api/runs/{run['run_id']}").get_json()
    assert body["run"]["run_id"] == run["run_id"]
    assert [(s["step"], s["status"]) for s in body["steps"]] == [
        ("build", "succeeded"),
        ("test", "skipped"),
    ]
    assert body["approvals"] == [] and body["audit"] == []
    missing = client.get("/api/runs/nope")
    assert missing.status_code == 404 and missing.get_json()["error"] == "no run 'nope'"
    assert client.get("/api/runs/nope/graph").status_code == 404
    assert client.get("/api/runs/nope/logs/build").status_code == 404


def test_graph_api_without_an_execution_says_so(client, redis_client):
    run = seed_run(redis_client, status="QUEUED", execution_arn=None)
    assert client.get(f"/api/runs/{run['run_id']}/graph").get_json() == {
        "graph": None, "history": [], "history_cut": False, "error": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    "after", ["zzz", "-1", "1-2-3", "1-", "99999999999999999999", "1-99999999999999999999"]
)
def test_log_api_refuses_a_malformed_cursor(client, redis_client, after):
    run = seed_run(redis_client)
    seed_log(redis_client, run["run_id"], "build", ["ok"])
    response = client.get(f"/api/runs/{run['run_id']}/logs/build?after={after}")
    assert response.status_code == 400
    assert response.get_json() == {"error": f"after: {after!r} is not a log cursor"}


def test_log_api_pages_with_a_cursor_and_follows_new_lines(client, redis_client):
    run = seed_run(redis_client, status="RUNNING", finished_at=None)
    writer = seed_log(redis_client, run["run_id"], "build", [f"line {n}" for n in range(1500)], finish=None)
    url = f"/api/runs/{run['run_id']}/logs/build"
    first = client.get(url + "?limit=100").get_json()  # whole batches: at least `limit` lines when there are
    assert first["lines"][:100] == [f"line {n}" for n in range(100)] and not first["finished"]
    rest = client.get(f"{url}?after={first['next']}&limit=2000").get_json()
    assert first["lines"] + rest["lines"] == [f"line {n}" for n in range(1500)]
    idle = client.get(f"{url}?after={rest['next']}").get_json()
    assert idle["lines"] == [] and idle["finished"] is False
    writer.write_line("\x1b[32mnew\x1b[0m")
    writer.finish("succeeded", 0)
    last = client.get(f"{url}?after={idle['next']}").get_json()
    assert last["lines"] == ["\x1b[32mnew\x1b[0m"] and last["finished"] is True
    assert last["meta"]["status"] == "succeeded" and last["meta"]["exit_code"] == 0
    assert client.get(f"/api/runs/{run['run_id']}/logs").get_json()["logs"][0]["step"] == "build"


def test_capped_log_starts_with_the_cut_marker(client, redis_client):
    run = seed_run(redis_client)
    writer = StepLogWriter.start(redis_client, run["run_id"], "build", max_bytes=4096, batch_bytes=1024)
    for number in range(2000):
        writer.write_line(f"noisy line {number:05d}")
    writer.finish("succeeded", 0)
    body = client.get(f"/api/runs/{run['run_id']}/logs/build?limit=2000").get_json()
    assert body["lines"][0].startswith("[stepline]") and "were cut" in body["lines"][0]
    assert body["lines"][-1] == "noisy line 01999" and len(body["lines"]) < 400
    page = client.get(f"/runs/{run['run_id']}").get_data(as_text=True)
    assert "(cut)" in page


def test_badge_shows_the_latest_run_of_the_branch(client, redis_client):
    import time

    seed_run(redis_client, branch="main", status="FAILED", created_at=time.time() - 10)
    seed_run(redis_client, branch="main", status="SUCCEEDED")
    seed_run(redis_client, branch="dev", status="FAILED")
    response = client.get("/badge/octo/app.svg?branch=main")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert "max-age=60" in response.headers["Cache-Control"] and response.headers["ETag"]
    assert "passing" in response.get_data(as_text=True) and "#4c1" in response.get_data(as_text=True)
    assert "failing" in client.get("/badge/octo/app.svg?branch=dev").get_data(as_text=True)
    again = client.get("/badge/octo/app.svg?branch=main", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    unknown = client.get("/badge/octo/nothing.svg")
    assert unknown.status_code == 200 and "no runs" in unknown.get_data(as_text=True)
    hostile = client.get('/badge/octo/app.svg?label=<script>"').get_data(as_text=True)
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile


def test_metrics_count_runs_queues_and_pending_approvals(client, redis_client):
    from rq import Queue

    from service.approvals import ApprovalStore

    seed_run(redis_client, status="FAILED")
    seed_run(redis_client, status="FAILED")
    seed_run(redis_client, status="RUNNING", finished_at=None)
    Queue("statuses", connection=redis_client).enqueue("service.reporter.report_run_started", "x")
    ApprovalStore(redis_client).add("token-1", '{"step": "approve", "run": {"run_id": "r1"}}')
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'stepline_runs{status="FAILED"} 2' in text and 'stepline_runs{status="RUNNING"} 1' in text
    assert 'stepline_queue_jobs{queue="statuses"} 1' in text
    assert 'stepline_queue_failed_jobs{queue="statuses"} 0' in text
    assert "stepline_approvals_pending 1" in text and "# TYPE stepline_runs gauge" in text


@pytest.mark.parametrize("body", ["[1]", '"yes"', "null", "{"])
def test_approval_api_takes_any_json_body_without_a_server_error(client, body):
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    response = client.post("/api/approvals/nope/approve", data=body, headers=headers)
    assert response.status_code == 409
    assert response.get_json() == {"error": "approval 'nope' is not pending"}
