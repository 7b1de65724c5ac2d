"""The Flask application factory of the web process."""

from __future__ import annotations

import redis
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service.config import ServiceConfig
from service.dashboard import pages as dashboard
from service.health import health
from service.webhooks import webhooks


def create_app(config: ServiceConfig | None = None) -> Flask:
    """Build the web app; tests pass a config, the web process reads it from the environment."""
    config = config or ServiceConfig.from_env()
    app = Flask(__name__, template_folder="dashboard/templates", static_folder="dashboard/static")
    app.config["STEPLINE"] = config
    app.extensions["redis"] = redis.Redis.from_url(
        config.redis_url, socket_timeout=5, socket_connect_timeout=2
    )
    app.register_blueprint(health)
    app.register_blueprint(webhooks)
    dashboard.init_app(app, config)  # pages, JSON API, badges, sign-in
    if config.proxy_hops:  # the client's address, not the proxy's: sign-in throttling counts per address
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops
        )
    return app
