"""One local run: snapshot the working copy, start the private stack, run the pipeline, follow it, summarise.

What is the server's is used as the server uses it: the pipeline is found and validated by
service/pipeline_source.py (`load_pipeline`, with the build-step defaults and the contract and ASL
checks; `check_untrusted` for an untrusted run), deployed by statemachines/deploy.py, claimed by
statemachines/run_claims.py and run by the engine and `python -m workers` as processes. Only the
trigger differs: the execution input is built here from the working copy, not from a webhook.

Trust: a local run is the user's own code on the user's own machine, so it runs trusted (the
`build` activity, network in its sandbox), as a push or a same-repository pull request would on the
server; `--untrusted` runs it as a fork's pull request is run (the untrusted-pipeline check, the
`untrusted-<pool>` activities, no network). Secrets are never loaded: the worker gets no
WORKER_SECRETS_FILE, so steps see only what the server gives a run with no secrets configured.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from redis import RedisError

from statemachines.contract import UNTRUSTED
from statemachines.errors import DeployError
from stepline.errors import LocalRunError, NotARepository
from stepline.log_follower import LogFollower
from stepline.snapshot import Snapshot, take_snapshot
from stepline.stack import LocalStack
from stepline.summary import outcome_line, print_summary, step_rows

if TYPE_CHECKING:
    from stepline.pipeline_plan import PipelinePlan

PREFIX = "stepline"  # the server's default state machine and activity prefix
LOCAL_PR_NUMBER = 1
POLL_SECONDS = 0.1
DESCRIBE_EVERY = 3  # polls between DescribeExecution calls
EXIT_SUCCEEDED, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass(frozen=True)
class RunOptions:
    """What `stepline run` was asked for."""

    directory: Path
    cache: Path  # snapshot repositories and the worker's directory (its mirrors stay warm)
    path: str  # PATH for the stack's processes
    git_environment: Mapping[str, str] = field(default_factory=dict, repr=False)  # the user's, for git
    branch: str | None = None
    event: str = "push"
    base: str = "main"  # the pull request's base branch, for --event pull_request
    only: str | None = None
    untrusted: bool = False
    approve: bool = False
    slots: int = 4


def run_local(options: RunOptions, out: TextIO = sys.stdout) -> int:
    """Run the pipeline of the working copy; the exit status (0 only when the execution succeeded)."""
    run_id = uuid.uuid4().hex
    root = Path(tempfile.mkdtemp(prefix="stepline-run-"))  # 0700: the run's logs and blobs
    stack = LocalStack(root, options.path)
    snapshot: Snapshot | None = None
    try:
        if not options.directory.is_dir():  # before anything starts: the commonest mistake
            raise NotARepository(str(options.directory), "no such directory")
        stack.start_redis()
        stack.wait_redis()  # ~20 ms; the engine and the worker check it as they start
        stack.start_engine()
        # the worker boots longest (~1 s): started before the snapshot is taken and the pipeline read,
        # on the usual pool, and started again below in the rare run whose pipeline needs other pools
        stack.start_worker(_usual_pools(options), options.cache / "worker", options.slots)
        snapshot = take_snapshot(options.directory, options.cache, run_id, options.git_environment)
        return _run(options, run_id, stack, snapshot, out)
    except KeyboardInterrupt:
        out.write("\nstepline run: interrupted; stopping the run's processes\n")
        out.flush()
        return EXIT_INTERRUPTED
    except (BotoCoreError, ClientError, RedisError, DeployError) as exc:
        raise LocalRunError(f"the local run failed: {exc}\n{stack.describe_processes()}") from exc
    finally:
        # a second Ctrl-C must not cut the clean-up short and leave processes behind
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stack.stop()
            if snapshot is not None:
                snapshot.release(run_id)
            shutil.rmtree(root, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)


def _run(options: RunOptions, run_id: str, stack: LocalStack, snapshot: Snapshot, out: TextIO) -> int:
    # imported after the processes are started: the engine boots while these load (about 0.3 s)
    from stepline.pipeline_plan import plan_pipeline

    execution_input = build_input(options, run_id, snapshot)
    trusted = not options.untrusted
    plan = plan_pipeline(stack.redis_url, snapshot, execution_input, trusted, options.only)
    _say_what_runs(out, options, snapshot, execution_input, plan.path, plan.steps)
    for warning in plan.warnings:
        out.write(f"warning: {warning}\n")
    if plan.invalid:
        out.write(f"\n{plan.invalid}\npipeline INVALID (the server would not start this run)\n")
        return EXIT_FAILED
    if plan.worker_pools != _usual_pools(options):
        stack.stop_worker()
        stack.start_worker(plan.worker_pools, options.cache / "worker", options.slots)
    return _follow(options, run_id, stack, plan, execution_input, trusted, out)


def _follow(
    options: RunOptions,
    run_id: str,
    stack: LocalStack,
    plan: PipelinePlan,
    execution_input: dict[str, Any],
    trusted: bool,
    out: TextIO,
) -> int:
    """Deploy and start the execution, print its logs as they come, then the summary; the exit status."""
    import redis

    from statemachines.blob_store import BlobSettings, open_blob_store
    from statemachines.log_archive import LogArchive
    from statemachines.step_logs import StepLogReader
    from stepline.approval_desk import ApprovalDesk

    sfn = stack.sfn_client(read_timeout=20)  # loading its service model overlaps the engine's start
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=10)
    # a finished log moves from Redis to the worker's blob store: the reader follows it there
    archive = LogArchive(client, open_blob_store(BlobSettings(directory=stack.blob_dir)))
    follower = LogFollower(StepLogReader(client, archive), run_id, out, max(map(len, plan.steps), default=0))
    stack.wait_engine()
    started = time.monotonic()
    desk = None
    if plan.approvals:
        desk = ApprovalDesk(stack.sfn_client(read_timeout=70), PREFIX, options.approve, out).start()

    def summarise(described: dict[str, Any]) -> None:
        decided = desk.decided if desk is not None else {}
        rows = step_rows(plan.steps, follower.reader.list_logs(run_id), decided, plan.skipped)
        print_summary(out, rows, outcome_line(described), time.monotonic() - started)

    try:
        execution = _start_execution(sfn, client, plan, run_id, execution_input, trusted)
        described = _wait_for_end(sfn, stack, execution, follower)
    except KeyboardInterrupt:
        follower.poll()
        summarise({"status": "INTERRUPTED", "cause": "Ctrl-C: the run's processes were stopped"})
        raise
    finally:
        if desk is not None:
            desk.stop()
    summarise(described)
    client.close()
    return EXIT_SUCCEEDED if described["status"] == "SUCCEEDED" else EXIT_FAILED


def _start_execution(
    sfn: Any, client: Any, plan: PipelinePlan, run_id: str, execution_input: dict[str, Any], trusted: bool
) -> str:
    """Deploy the pipeline and start its execution as the server does (service/runs.py); its ARN."""
    from statemachines.deploy import ensure_pipeline
    from statemachines.run_claims import TICKET, claim_ticket

    arn = ensure_pipeline(sfn, plan.definition, plan.name, prefix=PREFIX, trusted=trusted)
    # the claim lets the worker vouch for the run, as for a run the service started (run_claims.py)
    ticket = claim_ticket(client, run_id, execution_input, trusted)
    body = json.dumps({**execution_input, TICKET: ticket})
    return str(sfn.start_execution(stateMachineArn=arn, name=run_id, input=body)["executionArn"])


def _wait_for_end(sfn: Any, stack: LocalStack, execution: str, follower: LogFollower) -> dict[str, Any]:
    """Print logs as they come until the execution ends; its DescribeExecution answer."""
    polls = 0
    while True:
        time.sleep(POLL_SECONDS)
        follower.poll()
        polls += 1
        if polls % DESCRIBE_EVERY:
            continue
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            follower.drain()
            return described
        stack.check_alive("worker")  # a worker that died would leave the run waiting for ever
        stack.check_alive("engine")


def _usual_pools(options: RunOptions) -> list[str]:
    return [f"{UNTRUSTED}-build"] if options.untrusted else ["build"]


def build_input(options: RunOptions, run_id: str, snapshot: Snapshot) -> dict[str, Any]:
    """The execution input, with the fields and shapes the server's runs have (service/runs.py `new_run`)."""
    if options.event not in ("push", "pull_request"):
        raise LocalRunError(f"--event must be push or pull_request, not {options.event!r}")
    branch = options.branch or snapshot.branch or None
    pull_request = None
    fork = options.untrusted
    if options.event == "pull_request" or fork:
        if branch is None:
            raise LocalRunError("a pull request needs a head branch: check one out or pass --branch")
        head_repository = f"fork/{snapshot.repository.split('/')[-1]}" if fork else snapshot.repository
        pull_request = {
            "number": LOCAL_PR_NUMBER,
            "base_ref": options.base,
            "head_ref": branch,
            "head_repository": head_repository,
            "draft": False,
        }
    return {
        "run_id": run_id,
        "delivery_id": f"local-{run_id}",
        "event": "pull_request" if pull_request else "push",
        "repository": snapshot.repository,
        "clone_url": snapshot.clone_url,
        "private": True,
        "ref": f"refs/heads/{branch}" if branch else "",
        "branch": branch,
        "tag": None,
        "sha": snapshot.sha,
        "before": snapshot.parent if snapshot.dirty else "",
        "pull_request": pull_request,
        "fork": fork,
        "trusted": not options.untrusted,
        "message": "local run of the working copy" + (" (uncommitted changes)" if snapshot.dirty else ""),
        "author": "stepline run",
    }


def _say_what_runs(
    out: TextIO,
    options: RunOptions,
    snapshot: Snapshot,
    execution_input: dict[str, Any],
    pipeline_path: str,
    steps: list[str],
) -> None:
    what = (
        f"the working copy with uncommitted changes (snapshot {snapshot.sha[:12]})"
        if snapshot.dirty
        else f"commit {snapshot.sha[:12]} (no uncommitted changes)"
    )
    trust = "untrusted, as a fork's pull request" if options.untrusted else "trusted"
    branch = execution_input["branch"] or "no branch"
    out.write(
        f"stepline run: {snapshot.repository} on {branch} ({execution_input['event']}, {trust}): {what}\n"
    )
    if steps:
        only = f", only {options.only}" if options.only else ""
        # a newcomer's first run has no pipeline of its own: say which file would be read
        shown = (
            f"{pipeline_path} (no .stepline/pipeline.asl.json)"
            if pipeline_path == "default"
            else pipeline_path
        )
        out.write(f"pipeline {shown}: {len(steps)} step(s){only}\n\n")
    out.flush()
