"""A hostile step's log in its check run's summary: nothing it prints renders as Markdown outside a code block
(no @mention, team ping, image, link or HTML), through the reporter's jobs, real Redis and the fake GitHub."""

from __future__ import annotations

import re

from statemachines.step_logs import StepLogWriter
from tests.service.reporting_support import REPO

FENCED = re.compile(r"^~~~~~text\n.*?^~~~~~$", re.MULTILINE | re.DOTALL)


def test_a_hostile_log_renders_as_text_only(checks, fake_github, redis_client):
    run = checks.new_run(steps=("build",), installation_id=42)
    hostile = [
        "::error title=@octo-org/security::ping @alice ![x](https://evil.example/p.png?t=1) <img src=x>",
        "::warning::[click](https://evil.example) **bold** `code` &lt;b&gt; | a | b |",
        "~~~~~~",
        "@bob after a would-be closing fence ![y](https://evil.example/q.png)",
    ]
    writer = StepLogWriter.start(redis_client, run["run_id"], "build", worker="w")
    for line in hostile:
        writer.write_line(line)
    writer.finish("failed", 1)
    checks.enqueue("report_step", run["run_id"], "build", "failure", "", 5_000)
    checks.drain()

    summary = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/build"]["output"]["summary"]
    assert "ping @alice" in summary and "@bob after" in summary  # shown, as text
    rendered = FENCED.sub("", summary)  # what GitHub renders as Markdown: outside the code blocks
    for markup in ("@alice", "@octo-org", "@bob", "![", "](", "<img", "**bold**", "`code`", "&lt;"):
        assert markup not in rendered, markup
    fences = re.findall(r"^ {0,3}~{5,}", summary, re.MULTILINE)
    assert len(fences) % 2 == 0 and all(f == "~~~~~" for f in fences)  # no log line opens or closes one


def test_a_tail_of_tildes_is_cut_to_the_summary_limit_after_the_fence_breaking(
    checks, fake_github, redis_client
):
    # each five tildes gain a space in the code block: the tail is measured as sent
    run = checks.new_run(steps=("build",), installation_id=42)
    writer = StepLogWriter.start(redis_client, run["run_id"], "build", worker="w")
    for _ in range(30):
        writer.write_line("~" * 16_000)
    writer.finish("failed", 1)
    checks.enqueue("report_step", run["run_id"], "build", "failure", "", 5_000)
    checks.drain()

    summary = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/build"]["output"]["summary"]
    assert 50_000 < len(summary) <= 65_535
