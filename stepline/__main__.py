"""`stepline run [DIR]`: run a repository's pipeline on its working copy, on this machine, as the server would."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from stepline.config import CliConfig, forget_repository_variables
from stepline.errors import LocalRunError
from stepline.local_run import RunOptions, run_local

EXIT_USAGE = 2


def parse_args(config: CliConfig, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stepline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run DIR's pipeline on its working copy, uncommitted changes included",
        description="Run DIR's pipeline (.stepline/pipeline.asl.json or .yaml, else the default pipeline) "
        "on its working copy, uncommitted changes included, with a private Redis, engine and worker. "
        "Exit status 0 only when the run succeeded.",
    )
    run.add_argument("directory", nargs="?", default=".", metavar="DIR", help="the working copy (default: .)")
    run.add_argument("--branch", help="the branch the run is for (default: the checked-out branch)")
    run.add_argument("--event", choices=("push", "pull_request"), default="push", help="default: push")
    run.add_argument("--base", default="main", help="the pull request's base branch (default: main)")
    run.add_argument("--only", metavar="STEP", help="run only this step; the others pass without running")
    run.add_argument(
        "--untrusted",
        action="store_true",
        help="run as a fork's pull request: untrusted activities, no network, the untrusted-pipeline check",
    )
    run.add_argument("--approve", action="store_true", help="approve approval steps (default: reject them)")
    run.add_argument("--slots", type=int, default=4, help="steps the worker runs at once (default: 4)")
    run.add_argument(
        "--cache-dir",
        type=Path,
        default=config.cache_dir,
        help=f"snapshot repositories and the worker's mirrors (default: {config.cache_dir})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    config = CliConfig.from_env()
    forget_repository_variables()
    args = parse_args(config, argv)
    logging.basicConfig(level=logging.WARNING, format="stepline: %(levelname)s %(name)s: %(message)s")
    if not 1 <= args.slots <= 64:
        print("stepline run: --slots must be from 1 to 64", file=sys.stderr)
        return EXIT_USAGE
    # SIGTERM ends a run as Ctrl-C does: its processes are stopped, nothing is left behind
    signal.signal(signal.SIGTERM, _interrupt)
    options = RunOptions(
        directory=Path(args.directory).absolute(),
        cache=args.cache_dir.absolute(),
        path=config.path,
        git_environment=config.git_environment,
        branch=args.branch,
        event=args.event,
        base=args.base,
        only=args.only,
        untrusted=args.untrusted,
        approve=args.approve,
        slots=args.slots,
    )
    try:
        return run_local(options)
    except LocalRunError as exc:
        print(f"stepline run: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE


def _interrupt(_number: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
