"""Readership web application: `create_app()` is the one composition root (its feature
half, every feature's `init_app` and the signals between features, is `webapp.features`)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from webapp import db, i18n
from webapp.config import load_config
from webapp.core import clock, security
from webapp.core.limits import init_body_limits, limiter
from webapp.core.wsgi import CleanQueryString

csrf = CSRFProtect()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application: configuration, database, gateways, blueprints, CLI, and the
    signals through which features react to each other."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(app.instance_path, config))
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))

    db.init_app(app)
    clock.init_app(app, app.config.get("CLOCK"))
    i18n.init_app(app)
    security.init_app(app)
    # Before CSRF (or anything) reads a form: the view's own body limit, if it has one.
    init_body_limits(app)
    csrf.init_app(app)
    limiter.init_app(app)
    _register_features(app)
    app.before_request(security.refuse_nul_in_path)
    _register_errors(app)
    app.wsgi_app = CleanQueryString(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _instance_secret(instance: Path) -> str:
    """A random secret kept in the instance folder, so a fresh clone just works."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _register_features(app: Flask) -> None:
    # Imported here so importing `webapp` has no side effects and features stay optional.
    from webapp import models  # noqa: F401  (every model registered on Base.metadata)
    from webapp.features import register_features

    register_features(app, csrf)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_template("errors/error.html", status=400, reason="csrf"), 400

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Any:
        if error.code is None or error.code < 400:
            return error
        return render_template("errors/error.html", status=error.code, reason=None), error.code
