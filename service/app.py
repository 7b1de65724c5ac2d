"""The Flask application factory of the web process."""

from __future__ import annotations

import redis
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service.config import ServiceConfig
from service.dashboard import auth, extensions, pages
from service.dashboard.api import api
from service.dashboard.artifact_views import artifacts
from service.dashboard.badges import badges
from service.dashboard.metrics import metrics
from service.dashboard.new_runs import create_run  # noqa: F401 (adds the New run routes to dashboard and api)
from service.health import health
from service.webhooks import webhooks
from statemachines.blob_store import open_blob_store
from statemachines.log_archive import use_blob_store


def create_app(config: ServiceConfig | None = None) -> Flask:
    """Build the web app; tests pass a config, the web process reads it from the environment."""
    config = config or ServiceConfig.from_env()
    app = Flask(__name__, template_folder="dashboard/templates", static_folder="dashboard/static")
    app.config["STEPLINE"] = config
    app.extensions["redis"] = redis.Redis.from_url(
        config.redis_url, socket_timeout=5, socket_connect_timeout=2
    )
    use_blob_store(open_blob_store(config.blob))  # finished step logs: every StepLogReader reads there
    extensions.init_app(app, config)
    auth.init_app(app, config)
    pages.init_app(app)
    for blueprint in (health, webhooks, auth.auth, pages.dashboard, api, badges, metrics, artifacts):
        app.register_blueprint(blueprint)
    if config.proxy_hops:  # the client's address, not the proxy's: sign-in throttling counts per address
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops
        )
    return app
