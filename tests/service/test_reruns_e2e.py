"""Re-run failed steps, end to end, on each shipped example's failure pattern.

The real engine, jobs process and build worker (`python -m workers`, real sandbox), a real git repository
carrying the shipped pipeline, the fake GitHub. A step of the example is gated on a TCP server of this
test: it fails in the first run (after its siblings have passed) and passes in the re-run. The re-run is
the dashboard's "re-run failed steps" (`POST /api/runs/<id>/redrive`): the failed step runs again, the
steps that passed are answered from their recorded results (reused), never checked out nor run.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.run_index import RunIndex
from statemachines.step_logs import StepLogReader
from tests.harness.processes import python_module, start_engine
from tests.service.dashboard_seed import ADMIN_TOKEN, with_users
from tests.service.github_events import deliver, push_payload

pytestmark = pytest.mark.slow

PIPELINES = Path(__file__).resolve().parents[2] / "statemachines" / "pipelines"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Gate:
    """A TCP server a gated step asks: `fail` (once `before_failing()` returns) until `passing` is set."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.before_failing: Callable[[], Any] = lambda: None
        self.passing = False
        threading.Thread(target=self._serve, daemon=True).start()

    def command(self) -> str:
        # bash's /dev/tcp: a trusted step shares the machine's network (PIPELINES.md, "The sandbox")
        return f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{self.port}; read -r v <&3; echo gate: $$v; test $$v = pass'"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            if not self.passing:
                self.before_failing()
            connection.sendall(b"pass\n" if self.passing else b"fail\n")


@pytest.fixture
def gate() -> Iterator[Gate]:
    found = Gate()
    yield found
    found.server.close()


@pytest.fixture
def stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path):
    """Engine, jobs process and one build worker over the test Redis; the web test client and helpers."""
    engine = start_engine(processes, redis_url, ENGINE_POLL_SECONDS="5", LOG_LEVEL="INFO")
    jobs_env = {
        "REDIS_URL": redis_url, "SFN_ENDPOINT_URL": engine, "GITHUB_TOKEN": "test-token",
        "GITHUB_API_URL": fake_github.url, "GITHUB_WEBHOOK_SECRET": "unused-here",
        "STEPLINE_PUBLIC_URL": "http://stepline.test", "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
        "STEPLINE_RECONCILE_INTERVAL_SECONDS": "1", "STEPLINE_APPROVAL_POLLER": "false", "LOG_LEVEL": "INFO",
    }  # fmt: skip
    worker_env = {
        "REDIS_URL": redis_url, "SFN_ENDPOINT_URL": engine, "WORKER_DIR": str(tmp_path / "worker"),
        "HEARTBEAT_SECONDS": "1", "WORKER_POLL_READ_TIMEOUT_SECONDS": "15", "WORKER_SLOTS": "4",
        "WORKER_POOLS": "build", "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true", "LOG_LEVEL": "INFO",
    }  # fmt: skip
    jobs = processes("jobs", python_module("service.jobs"), jobs_env)
    worker = processes("worker", python_module("workers"), worker_env)
    config = with_users(
        dataclasses.replace(service_config, sfn_endpoint_url=engine, allow_local_repositories=True)
    )
    fake_github.add_repo("octo/app")
    return Stack(
        create_app(config).test_client(), RunIndex(redis_client), StepLogReader(redis_client), jobs, worker
    )


@dataclasses.dataclass
class Stack:
    client: Any
    index: RunIndex
    logs: StepLogReader
    jobs: Any
    worker: Any

    def wait(self, condition: Callable[[], Any], timeout: float = 90.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            self.jobs.check_alive()
            self.worker.check_alive()
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.log()[-4000:]}" for p in (self.jobs, self.worker))
                raise TimeoutError(f"condition not met:\n{logs}")
            time.sleep(0.2)
        return value

    def ended(self, run_id: str) -> dict[str, Any]:
        return self.wait(lambda: _ended(self.index.get(run_id)))

    def steps(self, run_id: str) -> dict[str, dict[str, Any]]:
        """step -> the meta of its latest log in the run (what the run page's steps table shows)."""
        latest: dict[str, dict[str, Any]] = {}
        for meta in self.logs.list_logs(run_id):
            if meta["attempt"] >= latest.get(meta["step"], {}).get("attempt", 0):
                latest[meta["step"]] = meta
        return latest

    def attempts(self, run_id: str) -> dict[str, int]:
        return {step: meta["attempt"] for step, meta in self.steps(run_id).items()}

    def started_by_worker(self, run_id: str) -> set[str]:
        """Steps the worker checked out and ran in the run (its log line per attempt)."""
        lines = [line for line in self.worker.log().splitlines() if f"{run_id}: step " in line]
        return {line.split(": step ", 1)[1].split(" attempt ", 1)[0] for line in lines if " attempt " in line}


def _ended(run: dict[str, Any] | None) -> dict[str, Any] | None:
    return run if run and run["status"] not in ("QUEUED", "RUNNING") else None


def push_pipeline(
    make_repo: Any, client: Any, example: str, makefile: dict[str, str], branch: str
) -> tuple[str, str]:
    """A repository carrying the shipped example and a Makefile with these targets, pushed; (run id, sha)."""
    recipes = "".join(f"{target}:\n\t{recipe}\n" for target, recipe in makefile.items())
    repo = make_repo("app")
    pipeline = (PIPELINES / example).read_text()
    sha = repo.commit({"Makefile": recipes, ".stepline/pipeline.asl.json": pipeline}, "add the pipeline")
    repo.checkout(branch)
    repo.push(branch)
    response = deliver(client, "push", push_payload(repo, branch))
    assert response.status_code == 202, response.json
    return response.json["run_id"], sha


def rerun_failed_steps(stack: Stack, run_id: str) -> str:
    response = stack.client.post(f"/api/runs/{run_id}/redrive", headers=ADMIN)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["rerun_of"] == run_id
    return str(response.json["run_id"])


def fail_after(stack: Stack, gate: Gate, run_id: str, passed_first: set[str]) -> None:
    """The gated step fails in `run_id` only once `passed_first` have passed there (siblings finish first)."""

    def passed() -> bool:
        return passed_first <= {s for s, m in stack.steps(run_id).items() if m["status"] == "succeeded"}

    gate.before_failing = lambda: stack.wait(passed)


def check_rerun(
    stack: Stack, fake_github: Any, sha: str, old: str, new: str, failed: set[str], reused: set[str]
) -> None:
    """In `new`: the failed steps ran again (attempt 1 of the new run, by the worker); `reused` did not run."""
    steps = stack.steps(new)
    assert {s for s, m in steps.items() if m["status"] == "reused"} == reused
    assert {s for s, m in steps.items() if m["status"] == "succeeded"} == failed
    assert stack.started_by_worker(new) == failed  # nothing reused was checked out or run
    assert reused <= stack.started_by_worker(old)
    for step in reused:
        lines, _, _ = stack.logs.read(new, step)
        assert any(f"passed in run {old}" in line for line in lines), lines
    contexts = {"stepline/ci", *(f"stepline/ci/{step}" for step in reused)}

    def posted() -> dict[str, Any] | None:
        latest = fake_github.latest_statuses("octo/app", sha)
        ended = contexts <= set(latest) and all(latest[c]["state"] != "pending" for c in contexts)
        return latest if ended and latest["stepline/ci"]["target_url"].endswith(new) else None

    latest = stack.wait(posted, 30)
    for step in reused:
        status = latest[f"stepline/ci/{step}"]
        assert status["state"] == "success" and status["description"].startswith(f"reused from run {old[:7]}")
    assert latest["stepline/ci"]["state"] == "success"


def test_parallel_a_failure_caught_into_cleanup_reruns_only_the_failed_branch(
    stack, gate, make_repo, fake_github
):
    makefile = {"lint": "echo linted", "build": "echo built", "test": gate.command(), "clean": "echo cleaned"}
    old, sha = push_pipeline(make_repo, stack.client, "parallel.asl.json", makefile, "feature/parallel")
    fail_after(stack, gate, old, {"lint", "build"})
    assert stack.ended(old)["status"] == "FAILED"
    assert {s: m["status"] for s, m in stack.steps(old).items()} == {
        "lint": "succeeded", "build": "succeeded", "unit-tests": "failed", "cleanup": "succeeded"
    }  # fmt: skip

    gate.passing = True
    new = rerun_failed_steps(stack, old)
    rerun = stack.ended(new)
    assert rerun["status"] == "SUCCEEDED", rerun
    assert (rerun["rerun_of"], rerun["trusted"], rerun["sha"]) == (old, True, sha)
    check_rerun(stack, fake_github, sha, old, new, failed={"unit-tests"}, reused={"lint", "build"})
    assert "cleanup" not in stack.steps(new)  # the re-run passed: nothing to clean up


def test_release_a_failed_test_caught_into_cleanup_reruns_it_not_the_build(
    stack, gate, make_repo, fake_github
):
    makefile = {"build": "echo built", "integration-test": gate.command(), "clean": "echo cleaned"}
    old, sha = push_pipeline(make_repo, stack.client, "release.asl.json", makefile, "feature/release")
    fail_after(stack, gate, old, {"build"})
    assert stack.ended(old)["status"] == "FAILED"
    assert stack.steps(old)["integration-tests"]["status"] == "failed"
    assert stack.steps(old)["cleanup"]["status"] == "succeeded"

    gate.passing = True
    new = rerun_failed_steps(stack, old)
    assert stack.ended(new)["status"] == "SUCCEEDED"
    check_rerun(stack, fake_github, sha, old, new, failed={"integration-tests"}, reused={"build"})


def test_matrix_a_failed_map_iteration_reruns_alone(stack, gate, make_repo, fake_github):
    gated = f'if [ "$$PYTHON_VERSION" = 3.12 ]; then {gate.command()}; else echo tested $$PYTHON_VERSION; fi'
    old, sha = push_pipeline(make_repo, stack.client, "matrix.asl.json", {"test": gated}, "feature/matrix")
    fail_after(stack, gate, old, {"test-py3.11", "test-py3.13"})
    assert stack.ended(old)["status"] == "FAILED"

    gate.passing = True
    new = rerun_failed_steps(stack, old)
    assert stack.ended(new)["status"] == "SUCCEEDED"
    check_rerun(
        stack, fake_github, sha, old, new, failed={"test-py3.12"}, reused={"test-py3.11", "test-py3.13"}
    )

    # a re-run of the re-run reuses through it, with the result (and log) of the run that ran the step
    again = stack.client.post(f"/api/runs/{new}/steps/test-py3.11/rerun", headers=ADMIN).json["run_id"]
    assert stack.ended(again)["status"] == "SUCCEEDED"
    assert {s: m["status"] for s, m in stack.steps(again).items()} == {
        "test-py3.11": "succeeded", "test-py3.12": "reused", "test-py3.13": "reused"
    }  # fmt: skip
    lines, _, _ = stack.logs.read(again, "test-py3.13")
    assert any(f"passed in run {old}" in line and f"(log {old}:test-py3.13:1)" in line for line in lines), (
        lines
    )
    assert json.dumps(fake_github.latest_statuses("octo/app", sha)["stepline/ci/test-py3.12"]).count(new[:7])
