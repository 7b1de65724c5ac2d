"""Entry point of the worker process: `python -m workers [--pools build,build-large] [--slots N]`."""

from __future__ import annotations

import argparse
import logging
import sys

from statemachines.errors import ConfigError
from workers.config import WorkerConfig
from workers.worker import run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers", description="Stepline build worker")
    parser.add_argument("--pools", help="comma-separated pools to serve (overrides WORKER_POOLS)")
    parser.add_argument("--slots", help="build slots: steps run at once (overrides WORKER_SLOTS)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # command-line values go through the same checks as the environment's
    overrides = {"WORKER_POOLS": args.pools, "WORKER_SLOTS": args.slots}
    try:
        config = WorkerConfig.from_env(overrides={k: v for k, v in overrides.items() if v})
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
