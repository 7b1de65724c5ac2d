"""The run index's secondary indexes against a real Redis: every filter combination, old runs, backfill."""

from __future__ import annotations

import itertools
import json
import random

from service import run_index_layout as layout
from service.app import create_app
from service.run_index import OPEN_STATUSES, RunIndex
from service.run_index_backfill import backfill

REPOS = ("octo/app", "octo/lib")
BRANCHES = ("main", "dev", None)
PRS = (None, 7, 8)
STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED")


def expected(runs: list[dict], repository=None, branch=None, pull_request=None, status=None) -> list[str]:
    """The filter by brute force: a branch means its push runs; with a PR, that PR's runs on the branch."""

    def keep(run: dict) -> bool:
        if repository is not None and run["repository"] != repository:
            return False
        if status is not None and run["status"] != status:
            return False
        if pull_request is not None:
            return run["pull_request"] == pull_request and (branch is None or run["branch"] == branch)
        return branch is None or (run["pull_request"] is None and run["branch"] == branch)

    return [run["run_id"] for run in sorted(runs, key=lambda r: -r["created_at"]) if keep(run)]


def random_runs(index: RunIndex, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    runs = []
    for n in range(count):
        pr = rng.choice(PRS)
        branch = rng.choice(BRANCHES[:2]) if pr is not None else rng.choice(BRANCHES)
        run = {"run_id": f"r{n:03}", "repository": rng.choice(REPOS), "branch": branch, "pull_request": pr}
        runs.append(index.create({**run, "sha": "a" * 40, "created_at": 1000.0 + n}))
    for run in rng.sample(runs, count // 2):  # statuses move after creation, as a run's life does
        run.update(index.update(run["run_id"], status=rng.choice(STATUSES[1:])) or {})
    return runs


def every_filter():
    for repository, branch, pr, status in itertools.product((None, *REPOS), BRANCHES, PRS, (None, *STATUSES)):
        yield {"repository": repository, "branch": branch, "pull_request": pr, "status": status}


def assert_every_filter_agrees(index: RunIndex, runs: list[dict]) -> None:
    for filters in every_filter():
        listed = [run["run_id"] for run in index.list_runs(limit=1000, **filters)]
        assert listed == expected(runs, **filters), filters


def test_every_combination_of_filters_matches_a_brute_force_filter(redis_client):
    index = RunIndex(redis_client)
    runs = random_runs(index, 120, seed=1)
    assert not index.indexed()
    assert backfill(index) == (120, True)  # a fresh index: its runs are in every set already
    assert index.indexed()
    assert_every_filter_agrees(index, runs)
    page = index.list_runs(limit=5, offset=5, repository="octo/app", status="RUNNING")
    assert [r["run_id"] for r in page] == expected(runs, repository="octo/app", status="RUNNING")[5:10]


def test_a_filtered_page_finds_a_run_older_than_the_newest_500(service_config, redis_client):
    index = RunIndex(redis_client)
    base = {"sha": "b" * 40, "status": "SUCCEEDED"}
    index.create({**base, "run_id": "ancient", "repository": "octo/lib", "branch": "rare", "created_at": 1.0})
    index.create({**base, "run_id": "ancient-pr", "repository": "octo/lib", "branch": "fix", "pull_request": 99,
                  "status": "FAILED", "created_at": 2.0})  # fmt: skip
    pipe = redis_client.pipeline()
    for n in range(600):
        index.create({**base, "run_id": f"new-{n}", "repository": "octo/app", "branch": "main",
                      "created_at": 10.0 + n}, pipeline=pipe)  # fmt: skip
    pipe.execute()
    backfill(index)
    client = create_app(service_config).test_client()

    def listed(query: str) -> list[str]:
        return [r["run_id"] for r in client.get(f"/api/runs?{query}").get_json()["runs"]]

    assert listed("branch=rare") == ["ancient"]
    assert listed("branch=rare&status=SUCCEEDED") == ["ancient"]
    assert listed("pr=99") == ["ancient-pr"]
    assert listed("pr=99&status=FAILED") == ["ancient-pr"] and listed("pr=99&status=SUCCEEDED") == []
    assert listed("status=FAILED") == ["ancient-pr"]
    assert listed("repository=octo/lib&status=SUCCEEDED") == ["ancient"]
    assert listed("branch=fix&pr=99") == ["ancient-pr"] and listed("branch=main&pr=99") == []
    last_page = client.get("/api/runs?repository=octo/app&page=24").get_json()
    assert len(last_page["runs"]) == 25 and last_page["next_page"] is None


def write_v1(redis_client, run: dict) -> None:
    """A run as Stepline wrote it before the secondary indexes: its hash and the v1 sets only."""
    run = {"pull_request": None, "status": "QUEUED", "sha": "c" * 40, **run}
    repo, score, run_id = run["repository"], {run["run_id"]: run["created_at"]}, run["run_id"]
    pipe = redis_client.pipeline()
    pipe.hset(f"stepline:run:{run_id}", mapping={k: json.dumps(v) for k, v in run.items()})
    keys = ["stepline:runs", f"stepline:runs:repo:{repo}", f"stepline:runs:sha:{repo}:{run['sha']}"]
    if run["pull_request"] is not None:
        keys.append(f"stepline:runs:pr:{repo}:{run['pull_request']}")
    elif run["branch"]:
        keys.append(f"stepline:runs:branch:{repo}:{run['branch']}")
    keys.append(f"stepline:runs:status:{run['status']}")
    if run["status"] in OPEN_STATUSES:
        keys.append(f"stepline:runs:open:{repo}")
    for key in keys:
        pipe.zadd(key, score)
    pipe.execute()


def test_runs_recorded_before_the_upgrade_are_found_before_and_after_the_backfill(redis_client):
    rng = random.Random(2)
    old = []
    for n in range(300):
        pr = rng.choice(PRS)
        run = {"run_id": f"v1-{n:03}", "repository": rng.choice(REPOS), "created_at": 1.0 + n,
               "branch": rng.choice(BRANCHES[:2]) if pr else rng.choice(BRANCHES), "pull_request": pr,
               "status": rng.choice(STATUSES)}  # fmt: skip
        write_v1(redis_client, run)
        old.append(run)
    index = RunIndex(redis_client)
    assert not index.indexed()
    assert_every_filter_agrees(index, old)  # before the backfill: scans, but finds everything

    new = [index.create({"run_id": "v2-new", "repository": "octo/app", "branch": "dev", "sha": "d" * 40})]
    calls = 0
    while True:
        calls += 1
        done, finished = backfill(index, batch=20, limit=100)
        assert done <= 140  # bounded: about `limit` per call (ZSCAN's COUNT is a hint)
        if calls == 2:  # a status that changes mid-backfill lands in the right sets
            index.update("v1-000", status="ABORTED")
            old[0]["status"] = "ABORTED"
        if finished:
            break
        assert calls < 20
    assert calls >= 3 and index.indexed()
    assert backfill(index) == (0, True)
    assert_every_filter_agrees(index, old + new)
    assert redis_client.get(layout.VERSION_KEY) == b"2"
