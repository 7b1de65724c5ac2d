"""Entry point of the web process: validate settings, then serve the Flask app with gunicorn."""

from __future__ import annotations

import logging
import sys

from gunicorn.app.base import BaseApplication

from service.app import create_app
from service.config import ServiceConfig
from statemachines.errors import ConfigError


class WebServer(BaseApplication):
    """gunicorn embedded, so settings are validated once, before any worker forks."""

    def __init__(self, config: ServiceConfig) -> None:
        self.service_config = config
        super().__init__()

    def load_config(self) -> None:
        c = self.service_config
        self.cfg.set("bind", f"{c.host}:{c.port}")
        self.cfg.set("workers", c.web_workers)
        self.cfg.set("threads", c.web_threads)
        # gthread, not sync, though sync measured better on 2 cores (bench/webhook_bench.py: ~10% less CPU per
        # webhook, and no keep-alive client pinned to one worker): a sync worker is held by each slow client
        # and each dashboard request waiting on Step Functions (10 s reads), so two of them would stall
        # webhook ingest past GitHub's 10 s. 1 to 8 threads measured alike: idle threads cost nothing.
        # gthread's own (service/web_worker.py): a thread takes a request only once all of it is in, so
        # clients sending slowly hold sockets, never threads (20 of them had stopped every webhook)
        self.cfg.set("worker_class", "service.web_worker.BufferingThreadWorker")
        # an access line is INFO; gunicorn would log it at any level. At WARNING it cost a quarter of
        # /healthz's CPU and a tenth of a webhook's.
        self.cfg.set("accesslog", "-" if c.log_level in ("DEBUG", "INFO") else None)
        self.cfg.set("loglevel", c.log_level.lower())
        # gunicorn's control socket lives at one path per user: several web processes on a machine
        # (tests, a second Stepline) would take it from each other, and we do not use it
        self.cfg.set("control_socket_disable", True)

    def load(self):
        return create_app(self.service_config)


def run() -> int:
    try:
        config = ServiceConfig.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    WebServer(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(run())
