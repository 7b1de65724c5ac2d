"""What a local run deploys: the working copy's pipeline, found and checked by the server's own code.

`service/pipeline_source.py` reads `.stepline/pipeline.asl.{json,yaml}` at the snapshot commit (else
the default pipeline), fills the build-step defaults and runs the contract and ASL checks; an
untrusted run also gets the untrusted-pipeline check with the server's default pools. `--only`
is applied after those checks, and the changed definition is validated again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from service.config import ServiceConfig
from service.errors import InvalidPipelineError, PipelineSourceError, UntrustedPipelineError
from service.pipeline_source import check_untrusted, load_pipeline, parse_pipeline
from service.run_record import RunRecord
from statemachines.contract import APPROVAL_POOL, UNTRUSTED, activity_pools, pipeline_steps
from stepline.errors import LocalRunError
from stepline.only_step import find_step, only_step
from stepline.snapshot import Snapshot

WHY_UNTRUSTED = "a local run with --untrusted, as a fork's pull request"


@dataclass(frozen=True)
class PipelinePlan:
    """The pipeline to deploy and what the worker must serve for it; `invalid` says why it cannot run."""

    name: str
    path: str
    definition: dict[str, Any]
    steps: list[str]  # the pipeline's steps in definition order (the summary's rows)
    skipped: list[str] = field(default_factory=list)  # steps --only turned into Pass states
    worker_pools: list[str] = field(default_factory=list)
    approvals: bool = False  # whether an approval step may run (the run answers it itself)
    warnings: tuple[str, ...] = ()
    invalid: str = ""


def plan_pipeline(
    redis_url: str, snapshot: Snapshot, execution_input: dict[str, Any], trusted: bool, only: str | None
) -> PipelinePlan:
    """The plan of a run of `snapshot`; raises UnknownStep when --only names no step of the pipeline."""
    # the server's reader, pointed at the snapshot repository as at any file:// repository
    config = ServiceConfig(redis_url=redis_url, allow_local_repositories=True)
    run: RunRecord = {
        "repository": snapshot.repository, "clone_url": snapshot.clone_url, "sha": snapshot.sha,
        "execution_input": execution_input,
    }  # fmt: skip
    try:
        pipeline = load_pipeline(config, run)
        if not trusted:
            check_untrusted(pipeline, config.untrusted_pools, WHY_UNTRUSTED)
    except InvalidPipelineError as exc:
        return PipelinePlan("ci", exc.path, {}, [], invalid=_describe(exc))
    except PipelineSourceError as exc:  # the snapshot commit was just written: a bug or a broken cache
        raise LocalRunError(f"cannot read the pipeline of the snapshot: {exc}") from exc
    definition, skipped = pipeline.definition, []
    steps = [spec.step for spec in pipeline_steps(definition)]
    if only is not None:
        keep = find_step(definition, only)
        skipped = [spec.step for spec in pipeline_steps(definition, True) if spec.step != keep.step]
        try:
            definition = parse_pipeline(pipeline.path, json.dumps(only_step(definition, keep))).definition
        except InvalidPipelineError as exc:  # a flow that needs a skipped Task's Catch, say
            return PipelinePlan("ci", exc.path, {}, steps, invalid=f"--only {only}: {_describe(exc)}")
    pools = sorted(activity_pools(definition) - {APPROVAL_POOL}) or ["build"]
    return PipelinePlan(
        pipeline.name,
        pipeline.path,
        definition,
        steps,
        skipped,
        pools if trusted else [f"{UNTRUSTED}-{pool}" for pool in pools],
        APPROVAL_POOL in activity_pools(definition),
        pipeline.warnings,
    )


def _describe(exc: InvalidPipelineError) -> str:
    why = f" for {exc.why_untrusted}" if isinstance(exc, UntrustedPipelineError) else ""
    lines = [f"invalid pipeline {exc.path}{why}:"]
    lines += [f"  {d.get('location') or '/'}: {d.get('message')}" for d in exc.diagnostics]
    return "\n".join(lines)
