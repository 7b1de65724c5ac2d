"""`python -m statemachines`: `check` pipeline files offline; `deploy` Stepline's activities and pipelines to Step Functions."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from statemachines.catalog import DEFAULT_PIPELINE, load_pipeline, shipped_pipelines
from statemachines.config import DeployConfig
from statemachines.deploy import DEFAULT_UNTRUSTED_POOLS, NEVER_UNTRUSTED_POOLS, untrusted_pool_problems
from statemachines.errors import DeployError, PipelineError, SteplineError
from statemachines.pipeline_check import check_definition, check_file

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m statemachines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser(
        "check", help="print every problem of pipeline files, offline (no credentials, engine or network)"
    )
    checking.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="a pipeline (.asl.json or .asl.yaml)"
    )
    deploy = commands.add_parser("deploy", help="create or update activities and state machines (idempotent)")
    which = deploy.add_mutually_exclusive_group()
    which.add_argument(
        "--pipeline",
        action="append",
        metavar="NAME|PATH",
        help=f"a shipped pipeline ({', '.join(shipped_pipelines())}) or a pipeline file; repeatable "
        f"(default: {DEFAULT_PIPELINE})",
    )
    which.add_argument("--all", action="store_true", help="every shipped pipeline")
    deploy.add_argument("--region", help="AWS region (default: AWS_REGION)")
    deploy.add_argument("--prefix", help="name prefix of activities and state machines (default: stepline)")
    deploy.add_argument(
        "--role-arn", help="the state machines' execution role (default: STEPLINE_SFN_ROLE_ARN)"
    )
    deploy.add_argument(
        "--endpoint-url", help="a Step Functions endpoint other than AWS (default: SFN_ENDPOINT_URL)"
    )
    deploy.add_argument(
        "--untrusted-pools",
        type=_pools,
        default=DEFAULT_UNTRUSTED_POOLS,
        metavar="POOL,...",
        help="pools whose untrusted activities (<prefix>-untrusted-<pool>) to create, as the jobs process's "
        f"STEPLINE_UNTRUSTED_POOLS (default: {','.join(DEFAULT_UNTRUSTED_POOLS)}; never "
        f"{' or '.join(NEVER_UNTRUSTED_POOLS)}; empty: none)",
    )
    deploy.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would change; change nothing (without AWS credentials: what an empty account would get)",
    )
    return parser


def _pools(text: str) -> tuple[str, ...]:
    pools = tuple(item.strip() for item in text.split(",") if item.strip())
    if problems := untrusted_pool_problems(pools):
        raise argparse.ArgumentTypeError("; ".join(problems))
    return pools


def check(files: list[Path]) -> int:
    """Print every problem of each file, `FILE:LOCATION: severity: message`; 1 when any is an error."""
    failed = False
    for path in files:
        problems = check_file(path)
        for problem in problems:
            print(f"{path}:{problem}")
        errors = sum(problem.severity == "ERROR" for problem in problems)
        failed = failed or errors > 0
        print(f"{path}: {'OK' if not errors else f'{errors} error(s)'}", file=sys.stderr)
    return 1 if failed else 0


def run(args: argparse.Namespace, config: DeployConfig) -> int:
    """Deploy the chosen pipelines and print one line per resource."""
    import boto3

    from statemachines.aws_deploy import deploy_pipelines, plan_pipelines
    from statemachines.deploy import LOCAL_ROLE_ARN
    from statemachines.sfn_client import make_sfn_client

    names = list(shipped_pipelines()) if args.all else args.pipeline or [DEFAULT_PIPELINE]
    pipelines = dict(load_pipeline(name) for name in names)
    for name, definition in pipelines.items():
        if errors := [str(p) for p in check_definition(definition) if p.severity == "ERROR"]:
            raise PipelineError(name, errors)
    # boto3's standard credential chain: environment, shared config/SSO profile, instance or task role
    session = boto3.session.Session(region_name=config.region)
    offline = not config.sfn_endpoint_url and session.get_credentials() is None
    if offline and not args.dry_run:
        raise DeployError(
            f"Step Functions in {config.region}",
            "no AWS credentials (boto3 looks for AWS_PROFILE or SSO, AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, ~/.aws, an instance or task role); --dry-run shows the plan without them",
        )
    if offline:
        # nothing to compare with: checked offline, shown as an account without Stepline would get it
        print(
            "no AWS credentials: showing what an account without these resources would get", file=sys.stderr
        )
        actions = plan_pipelines(pipelines, config.prefix, config.region, args.untrusted_pools)
    else:
        sfn = make_sfn_client(config.region, config.sfn_endpoint_url, read_timeout=60)
        # the local engine checks only a role ARN's shape (as the service does there); AWS needs the real one
        role_arn = config.role_arn or (LOCAL_ROLE_ARN if config.sfn_endpoint_url else "")
        actions = deploy_pipelines(
            sfn,
            pipelines,
            config.prefix,
            role_arn,
            dry_run=args.dry_run,
            untrusted_pools=args.untrusted_pools,
        )
    verb = "would be " if args.dry_run else ""
    for action in actions:
        print(f"{action.kind} {action.name}: {verb}{action.action} {action.arn}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return check(args.files)
    try:
        config = DeployConfig.from_env()
    except SteplineError as exc:
        print(exc, file=sys.stderr)
        return 2
    overrides = {"region": args.region, "prefix": args.prefix, "role_arn": args.role_arn}
    overrides["sfn_endpoint_url"] = args.endpoint_url
    config = replace(config, **{key: value for key, value in overrides.items() if value is not None})
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args, config)
    except SteplineError as exc:
        log.error("deploy failed: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
