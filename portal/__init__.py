"""The merchant key portal: create_app() builds the Flask application."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from portal import lean, proxy, versions
from portal.config import load_config
from portal.extensions import csrf, db, limiter, migrate
from portal.routing import register_converters

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the portal application; `config` overrides settings read from the environment."""
    instance_path = Path(os.environ.get("PORTAL_INSTANCE_PATH", ROOT / "instance"))
    app = lean.PortalFlask(
        __name__,
        instance_path=str(instance_path),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(instance_path))
    if config:
        app.config.update(config)
    proxy.init_app(app)
    register_extensions(app)
    register_converters(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    return app


def register_template_helpers(app: Flask) -> None:
    """Make the UI macros available to every template as `ui`."""

    @app.context_processor
    def inject_ui() -> dict[str, Any]:
        return {"ui": app.jinja_env.get_template("_macros.html").module}


def register_extensions(app: Flask) -> None:
    """Bind the extension objects to the app."""
    import portal.models  # noqa: F401 - registers every table with the metadata
    from portal import tasks
    from portal.database import tune_sqlite

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    lean.init_app(app)
    with lean.portal_only_hooks(app):  # the API and /healthz need neither
        csrf.init_app(app)
        limiter.init_app(app)
    tasks.init_app(app)
    versions.init_app(app)
    with app.app_context():
        tune_sqlite(db.engine)


def register_blueprints(app: Flask) -> None:
    """Mount the portal's blueprints."""
    from portal.accounts.views import bp as accounts_bp
    from portal.api import register_api
    from portal.customers.views import bp as customers_bp
    from portal.keys.views import bp as keys_bp
    from portal.members.views import bp as members_bp
    from portal.settings.views import bp as settings_bp
    from portal.twofactor.views import bp as twofactor_bp
    from portal.usage import recording
    from portal.usage.views import bp as usage_bp
    from portal.web import bp as web_bp
    from portal.webhooks.views import bp as webhooks_bp

    app.register_blueprint(web_bp)  # its security headers are for every response
    # The pages' app-wide hooks (signed-in user, membership, roles, re-authentication) are not
    # even called for the API and /healthz, which authenticate by key or not at all (g.user and
    # g.membership stay unset there: read them with g.get).
    with lean.portal_only_hooks(app):
        app.register_blueprint(accounts_bp)
        # Right after the role check: a store's two-factor requirement comes before re-auth.
        app.register_blueprint(twofactor_bp)
        app.register_blueprint(keys_bp)
        app.register_blueprint(usage_bp)
        app.register_blueprint(customers_bp)
        app.register_blueprint(members_bp)
        app.register_blueprint(settings_bp)
        app.register_blueprint(webhooks_bp)
    with lean.api_only_hooks(app):  # usage, CORS, rate-limit and legacy headers, API 404s
        recording.init_app(app)
        register_api(app)


def register_errorhandlers(app: Flask) -> None:
    """Render HTML error pages for the portal."""
    from portal.web import register_error_pages

    register_error_pages(app)


def register_commands(app: Flask) -> None:
    """Add the operator commands to `flask`."""
    from portal.commands import register

    register(app)
