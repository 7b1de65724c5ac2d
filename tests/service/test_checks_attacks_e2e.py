"""A hostile pull request's step through the real stack as a GitHub App: a million `::error` lines with
Markdown and @mentions. Its check run completes with GitHub's limits kept and nothing of the log rendered
as Markdown; the dashboard's log API stays quick to answer."""

from __future__ import annotations

import json
import re

import pytest

from tests.service.github_events import deliver, pull_request_payload, repository
from tests.service.run_stack import Stack
from tests.service.test_checks_e2e import all_completed, installed, of_run, task
from tests.service.test_checks_e2e import stack as stack

FENCED = re.compile(r"^~~~~~text\n.*?^~~~~~$", re.MULTILINE | re.DOTALL)
HOSTILE = (
    "for i in $(seq 1 1000000); do"
    ' echo "::error file=src/a$i.py,line=$i,title=@octo/team::![x](https://evil.example/$i.png) @alice";'
    " done; echo '::warning::@bob [click](https://evil.example)'; false"
)


@pytest.mark.slow
def test_a_million_error_lines_end_in_a_bounded_safe_check_run(stack: Stack, make_repo, fake_github):
    repo = make_repo("app")
    repo.commit({"README.md": "app\n"}, "init", branch="main")
    repo.push("main")
    pipeline = {"StartAt": "Spam", "States": {"Spam": task("spam", [HOSTILE], End=True)}}
    sha = repo.commit({".stepline/pipeline.asl.json": json.dumps(pipeline)}, "ci", branch="feature/x")
    repo.push("feature/x")
    base = repository("octo/app", repo.url)
    run_id = deliver(stack.client, "pull_request", installed(pull_request_payload("opened", 3, sha, base, base, "feature/x"))).json["run_id"]  # fmt: skip

    assert stack.wait(lambda: (stack.index.get(run_id) or {}).get("status") == "FAILED", timeout=300)
    stack.wait(
        lambda: all_completed(fake_github, sha) and len(of_run(fake_github, sha, run_id)) == 2, timeout=300
    )
    spam = of_run(fake_github, sha, run_id)["spam"]
    annotations = fake_github.checks.annotations(spam["id"])
    assert spam["conclusion"] == "failure" and len(annotations) == 500
    summary = spam["output"]["summary"]
    assert len(summary) <= 65_535 and "more annotations are in the log" in summary
    rendered = FENCED.sub("", summary)
    assert "@alice" not in rendered and "@bob" not in rendered and "](" not in rendered
    page = stack.client.get(f"/api/runs/{run_id}/logs/spam")
    # the log keeps its last 4 MB, opened by a line saying so; every other line is marked on the dashboard
    assert page.status_code == 200 and page.json["lines"][0].startswith("[stepline]")
    assert len(page.json["annotations"]) == len(page.json["lines"]) - 1
