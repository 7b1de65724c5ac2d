"""One activity task from its input to its report: validate, check out, run, heartbeat, report."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from statemachines.contract import STEP_NAME, UNTRUSTED, StepTask, parse_step_task
from statemachines.errors import ContractError
from statemachines.outcomes import CANCELLED, PASSED, RUNNING
from statemachines.run_claims import TICKET, Verdict, check_run, without_ticket
from statemachines.run_stages import (
    CHECKOUT_DONE,
    FIRST_COMMAND_STARTED,
    LAST_COMMAND_ENDED,
    TASK_ANSWERED,
    TASK_HANDED_OUT,
    RunStages,
    now_ms,
)
from statemachines.run_stops import stopped_since
from statemachines.step_logs import StepLogWriter
from statemachines.step_reuse import REUSED, fingerprint, record_result, reusable
from workers.build_outputs import BuildOutputs
from workers.checkout import Mirrors
from workers.config import WorkerConfig
from workers.errors import (
    CheckoutFailed,
    InvalidTaskInput,
    StepError,
    StepFailed,
    StepTimedOut,
    TaskStopped,
    WorkerFault,
    WorkerShutdown,
)
from workers.heartbeat import Heartbeat
from workers.process_group import SHUTDOWN, Cancellation
from workers.reporting import Reporter
from workers.sandbox import Sandbox
from workers.step_environment import build_environment
from workers.step_groups import StepGroups
from workers.step_runner import StepRunner
from workers.workspace import Workspace

log = logging.getLogger(__name__)

LOG_STATUS = {"failure": "failed", "error": "errored"}  # a log's final status by the GitHub state


@dataclass(frozen=True)
class Received:
    """An activity task as GetActivityTask handed it over."""

    pool: str  # the WORKER_POOLS entry it was polled on: `build`, or `untrusted-build` for untrusted runs
    token: str
    input: str
    worker_name: str

    @property
    def trusted(self) -> bool:
        """Whether the run is trusted: told by the activity the service chose, never by the task input."""
        return not self.pool.startswith(f"{UNTRUSTED}-")

    @property
    def base_pool(self) -> str:
        return self.pool.removeprefix(f"{UNTRUSTED}-")


class TaskHandler:
    """Handles tasks for every slot; `cancel_all()` stops them when the worker shuts down."""

    def __init__(
        self,
        config: WorkerConfig,
        sfn: Any,
        client: redis.Redis,
        mirrors: Mirrors,
        reporter: Reporter,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.config = config
        self.sandbox = sandbox or config.make_sandbox()
        self.sfn = sfn
        self.redis = client
        self.mirrors = mirrors
        self.reporter = reporter
        self.stages = RunStages(client, config.step_log_retention_seconds)
        self.workspace = Workspace(config.work_dir)
        self.outputs = BuildOutputs(config, client)  # finished logs, artifacts and caches in the blob store
        self.groups = StepGroups(client, reporter, config.heartbeat_seconds)  # a step's concurrency group
        self._running: dict[str, Cancellation] = {}
        self._cancel_reason: str | None = None  # set once: every later task is cancelled at once too
        self._lock = threading.Lock()

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def cancel_all(self, reason: str) -> None:
        with self._lock:
            self._cancel_reason = reason
            for cancellation in self._running.values():
                cancellation.cancel(reason)

    def refuse(self, received: Received) -> None:
        """A task that arrived while shutting down: hand it back at once rather than at heartbeat timeout."""
        run_id, _ = _identify(received.input)
        cause = f"worker {received.worker_name} was shutting down when it received the task"
        self.reporter.fail(run_id, received.token, WorkerShutdown.error_name, cause)

    def handle(self, received: Received) -> None:
        """Run the task and report it; never raises (a bug is reported as Stepline.WorkerError)."""
        received_ms = now_ms()
        try:
            task = parse_step_task(received.input)
        except ContractError as exc:
            self._report_invalid(received, exc)
            return
        verdict = self._verdict(received, task)
        if verdict.refusal:
            # no log and no status: those belong to the run the task pretends to be
            log.warning("%s: refused a task polled on %s: %s", task.run_id, received.pool, verdict.refusal)
            error = InvalidTaskInput(f"refused: {verdict.refusal}", verdict.refusal)
            self.reporter.fail(task.run_id, received.token, error.error_name, error.cause)
            return
        self._stamp(task, verdict, TASK_HANDED_OUT, received_ms)
        if verdict.verified and self._reuse(received, task):
            return
        lease = self.groups.enter(received.input, received.token, task, received.trusted, verdict)
        if lease is None:  # it waits for its concurrency group (answered: it holds no slot meanwhile)
            return
        cancellation = Cancellation()
        with self._lock:
            self._running[received.token] = cancellation
            if self._cancel_reason is not None:  # shutdown began while this task was handed over
                cancellation.cancel(self._cancel_reason)
        try:
            self._handle(received, task, cancellation, verdict)
        except Exception as exc:
            log.exception("%s: step %s: the worker failed", task.run_id, task.step)
            fault = WorkerFault(f"worker error: {type(exc).__name__}", f"worker error: {exc!r}")
            self.reporter.fail(task.run_id, received.token, fault.error_name, fault.cause)
            self.reporter.status(task.run_id, task.step, fault.status_state, fault.reason, fault.outcome)
        finally:
            lease.release()
            with self._lock:
                self._running.pop(received.token, None)

    def _stamp(self, task: StepTask, verdict: Verdict, stage: str, at_ms: int | None = None) -> None:
        """A stage of the run's timeline, for runs the service vouches for only (statemachines/run_stages.py)."""
        if verdict.verified:
            self.stages.stamp(task.run_id, stage, at_ms)

    def _verdict(self, received: Received, task: StepTask) -> Verdict:
        try:
            return check_run(self.redis, task.run, received.trusted)
        except redis.RedisError as exc:  # nothing vouched for: no repository's own secrets
            log.warning("%s: cannot check the run's claim (%s)", task.run_id, exc)
            return Verdict(False)

    def _reuse(self, received: Received, task: StepTask) -> bool:
        """A re-run's step that passed before: answer with its recorded result, run nothing (step_reuse)."""
        run_id, step = task.run_id, task.step
        try:
            entry = reusable(
                self.redis, task.run, step, fingerprint(received.input, received.base_pool), received.trusted
            )
        except (redis.RedisError, ValueError, KeyError, TypeError) as exc:  # run it rather than guess
            log.warning("%s: step %s: cannot read the reuse plan (%s); running it", run_id, step, exc)
            return False
        if entry is None:
            return False
        original, from_run = dict(entry["result"]), str(entry["from_run"])
        result = original | {REUSED: True, "reused_from": from_run}
        line = f"[stepline] {received.worker_name}: reused: step {step} passed in run {from_run}"
        line += f" (log {original.get('log')}); not run again"
        try:  # the run page lists the step as reused (its log's status), with the original log named
            writer = StepLogWriter.start(
                self.redis, run_id, step, worker=received.worker_name,
                max_bytes=self.config.step_log_max_bytes, retention_seconds=self.config.step_log_retention_seconds,
            )  # fmt: skip
            writer.write_line(line)
            writer.finish(REUSED, original.get("exit_code", 0))
            self.outputs.archive_log(writer, received.trusted)
        except redis.RedisError as exc:
            log.warning("%s: step %s: reuse not logged: %s", run_id, step, exc)
        self.outputs.carry_artifacts(from_run, run_id, step, received.trusted)
        log.info("%s: step %s reused from run %s", run_id, step, from_run)
        if self.reporter.succeed(run_id, received.token, result):
            self._record(received, task, result)
            took = float(original.get("duration_seconds") or 0)
            self.reporter.status(
                run_id, step, "success", f"reused from run {from_run[:7]} (passed in {took:.0f}s)", PASSED
            )
        else:
            self.reporter.status(
                run_id, step, "error", "reused, but the run no longer waited for it", CANCELLED
            )
        return True

    def _record(self, received: Received, task: StepTask, result: dict[str, Any]) -> None:
        """Remember a passed step's result, for a later "re-run failed steps" of this run to reuse."""
        try:
            print_ = fingerprint(received.input, received.base_pool)
            record_result(self.redis, task.run_id, task.step, print_, result)
        except redis.RedisError as exc:  # the step passed; only a later re-run loses: it runs the step again
            log.warning("%s: step %s: result not recorded: %s", task.run_id, task.step, exc)

    def _handle(
        self, received: Received, task: StepTask, cancellation: Cancellation, verdict: Verdict
    ) -> None:
        run_id, step = task.run_id, task.step
        writer = StepLogWriter.start(
            self.redis,
            run_id,
            step,
            worker=received.worker_name,
            max_bytes=self.config.step_log_max_bytes,
            retention_seconds=self.config.step_log_retention_seconds,
        )
        log.info("%s: step %s attempt %s started on %s", run_id, step, writer.attempt, received.worker_name)
        self.reporter.status(run_id, step, "pending", f"running on {received.worker_name}"[:140], RUNNING)
        interval = self.config.heartbeat_seconds
        if task.heartbeat_seconds:
            interval = min(interval, task.heartbeat_seconds / 3)
        started = time.time()

        def stopped() -> bool:
            try:
                return stopped_since(self.redis, run_id, started)
            except redis.RedisError:  # the heartbeat still tells, later
                return False

        with Heartbeat(self.sfn, received.token, interval, cancellation, run_id, step, stopped):
            self._run_and_report(received, task, writer, cancellation, verdict)
        self.outputs.archive_log(writer, received.trusted)
        if verdict.verified:  # the run's own lost attempts, never another run's named without its claim
            self.outputs.archive_lost(writer, received.trusted)

    def _run_and_report(
        self,
        received: Received,
        task: StepTask,
        writer: StepLogWriter,
        cancellation: Cancellation,
        verdict: Verdict,
    ) -> None:
        run_id, step = task.run_id, task.step
        started = time.monotonic()
        try:
            exit_code = self._run(task, writer, cancellation, received, verdict)
        except StepError as exc:
            log.info("%s: step %s ended: %s (%s)", run_id, step, exc.error_name, exc.reason)
            writer.finish(LOG_STATUS.get(exc.status_state, "failed"), getattr(exc, "exit_code", None))
            self.reporter.fail(run_id, received.token, exc.error_name, exc.cause)
            self._stamp(task, verdict, TASK_ANSWERED)
            self.reporter.status(run_id, step, exc.status_state, exc.reason, exc.outcome)
            return
        except TaskStopped as exc:
            log.info("%s: step %s stopped: %s", run_id, step, exc.reason)
            writer.finish("stopped")
            self.reporter.status(run_id, step, "error", f"stopped: {exc.reason}", CANCELLED)
            return
        duration = round(time.monotonic() - started, 3)
        writer.finish("succeeded", exit_code)
        result = {"step": step, "status": "succeeded", "exit_code": exit_code}
        result |= {"duration_seconds": duration, "log": writer.log_id}
        log.info("%s: step %s succeeded in %.1fs", run_id, step, duration)
        answered = self.reporter.succeed(run_id, received.token, result)
        self._stamp(task, verdict, TASK_ANSWERED)
        if answered:
            if verdict.verified:  # only a run the service vouches for can be re-run from its results
                self._record(received, task, result)
            self.reporter.status(run_id, step, "success", f"passed in {duration:.0f}s", PASSED)
        else:  # the execution stopped or the task timed out meanwhile: the run did not take the success
            self.reporter.status(
                run_id, step, "error", "passed, but the run no longer waited for it", CANCELLED
            )

    def _run(
        self,
        task: StepTask,
        writer: StepLogWriter,
        cancellation: Cancellation,
        received: Received,
        verdict: Verdict,
    ) -> int:
        places = self.workspace.create(without_ticket(task.run))
        try:
            source = task.source
            worker = received.worker_name
            writer.write_line(f"[stepline] {worker}: checking out {source.repository} at {source.sha}")
            writer.flush()  # the live view shows it at once: a cold clone may take minutes
            began = time.monotonic()
            try:
                how = self.mirrors.checkout(source, places.source, cancellation)
            except CheckoutFailed as exc:
                writer.write_line(f"[stepline] checkout failed: {exc.cause}")
                raise_if_cancelled(cancellation)
                raise
            raise_if_cancelled(cancellation)
            writer.write_line(f"[stepline] checked out in {time.monotonic() - began:.1f}s ({how} mirror)")
            self._stamp(task, verdict, CHECKOUT_DONE)
            trusted = received.trusted
            # a repository's own secrets only for a run the service vouches for (run_claims)
            repository = source.repository if verdict.verified else None
            secrets = self.config.secrets.for_step(repository, received.base_pool) if trusted else {}
            mirror = self.mirrors.path(source)
            self.outputs.restore_needs(task, trusted, verdict.verified, places.source, writer, cancellation)
            raise_if_cancelled(cancellation)
            sandbox = self.sandbox
            sandbox.prepare([places.source, places.home, places.tmp], mirror)
            seen = sandbox.paths(places.source, places.home, places.tmp, places.event_file)
            extra = {"STEPLINE_ATTEMPT": str(writer.attempt), "STEPLINE_LOG_ID": writer.log_id}
            env = build_environment(task, seen, self.config.step_path, secrets, extra, trusted)
            masked = [*secrets.values(), self.config.git_token, str(task.run.get(TICKET) or "")]
            timeout = task.timeout_seconds or self.config.step_timeout_seconds
            marker = f"STEPLINE_LOG_ID={writer.log_id}"

            def wrap(args: list[str], env: Mapping[str, str]) -> tuple[list[str], Mapping[str, str]]:
                # an untrusted step gets no network at all: nothing of this machine is within its reach
                where = (places.source, places.home, places.tmp, places.event_file, mirror)
                return sandbox.wrap(args, *where, network=trusted, env=env)

            runner = StepRunner(
                writer, cancellation, masked, lambda pgid: places.record_group(pgid, marker), wrap=wrap
            )
            base = seen.source.parent  # the task directory as the step sees it: src/ and home/ in it
            cache = self.outputs.restore_cache(
                task, trusted, verdict.verified, places, base, wrap, env, writer, cancellation
            )
            raise_if_cancelled(cancellation)
            self._stamp(task, verdict, FIRST_COMMAND_STARTED)
            try:
                runner.run(task.commands, places.source, env, timeout)
            except (StepFailed, StepTimedOut):  # `artifacts_when`: a failed step's test reports
                self.outputs.keep_artifacts(
                    task, trusted, verdict.verified, places.source, writer, cancellation, passed=False
                )
                raise
            finally:
                self._stamp(task, verdict, LAST_COMMAND_ENDED)
            self.outputs.save_cache(cache, task, places, base, wrap, env, writer, cancellation)
            raise_if_cancelled(cancellation)
            self.outputs.keep_artifacts(task, trusted, verdict.verified, places.source, writer, cancellation)
            raise_if_cancelled(cancellation)
            return 0
        finally:
            self.workspace.remove(places)

    def _report_invalid(self, received: Received, exc: ContractError) -> None:
        run_id, step = _identify(received.input)
        error = InvalidTaskInput(f"invalid task input: {exc.reason}", exc.reason)
        log.warning("%s: invalid task input for step %s: %s", run_id or "-", step or "-", exc.reason)
        self.reporter.fail(run_id, received.token, error.error_name, error.cause)
        if run_id and STEP_NAME.match(step):
            self.reporter.status(run_id, step, error.status_state, error.reason, error.outcome)


def raise_if_cancelled(cancellation: Cancellation) -> None:
    if cancellation.reason == SHUTDOWN:
        raise WorkerShutdown("the worker shut down", "the worker was stopped while the step ran")
    if cancellation.is_set:
        raise TaskStopped()


def _identify(text: str) -> tuple[str, str]:
    """The run id and step name of a task input, as far as they can be read (for logs and statuses)."""
    try:
        data = json.loads(text)
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    run = data.get("run")
    run_id = run.get("run_id") if isinstance(run, dict) else None
    step = data.get("step")
    return (run_id if isinstance(run_id, str) else ""), (step if isinstance(step, str) else "")
