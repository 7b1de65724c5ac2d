"""`python -m statemachines.engine`: the local Step Functions service."""

from __future__ import annotations

import argparse
import logging
import sys

from statemachines.errors import ConfigError
from statemachines.settings import redact_url, redis_problem

from .config import EngineConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statemachines.engine", description=__doc__)
    parser.add_argument("--check-config", action="store_true", help="validate the environment and exit")
    args = parser.parse_args(argv)
    try:
        config = EngineConfig.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    unreachable = redis_problem(config.redis_url)
    if unreachable:
        print(
            f"invalid engine configuration: REDIS_URL={redact_url(config.redis_url)} {unreachable}",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.check_config:
        return 0
    from .server import run

    try:
        return run(config)
    except OSError as exc:  # the port is taken or the address is not ours: say so, not a traceback
        print(f"engine: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
